"""Runs the moto AWS emulator (DynamoDB, SNS, SQS) on 127.0.0.1 for the tests.

Binds a free port, prints one line `listening http://127.0.0.1:PORT`, and serves until its
standard input closes - which happens when the process that started it exits, however it
exits - so no emulator outlives its test run.

moto applies a TransactWriteItems one item at a time and, when a condition fails, restores
a snapshot of the tables taken before it started. With requests served on parallel threads
that restore can undo other requests' writes, and two transactions can both pass one
version check - which real DynamoDB never allows. So every request runs under one lock:
each API call is applied atomically, as DynamoDB applies it, while the sockets stay
threaded.
"""

import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import StreamShard
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


def keep_streams_through_rollbacks():
    """moto backs up a TransactWriteItems by deep-copying each table it touches, stream
    records included, and restores the copies when the transaction is cancelled. That makes
    every transaction slower the longer the table's stream is (seconds per transaction after a
    few hundred orders), and swaps the stream for a copy that open shard iterators never see
    again. Here the copies share the one stream, and a cancelled transaction's records are
    cut off it instead: the same outcome, without either effect."""

    StreamShard.__deepcopy__ = lambda self, memo: self
    transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self, *args, **kwargs):
        shards = [t.stream_shard for t in self.tables.values() if t.stream_shard is not None]
        lengths = [(shard, len(shard.items)) for shard in shards]
        try:
            return transact(self, *args, **kwargs)
        except Exception:
            for shard, length in lengths:
                del shard.items[length:]
            raise

    DynamoDBBackend.transact_write_items = transact_write_items


class OneAtATime:
    """A WSGI application that runs the wrapped one for one request at a time."""

    def __init__(self, app):
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            # Drain the body inside the lock: moto does its work while producing it.
            return list(self._app(environ, start_response))


def main() -> int:
    keep_streams_through_rollbacks()
    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    host, port = server.server_address[:2]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"listening http://{host}:{port}", flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
