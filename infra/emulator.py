"""Runs the moto AWS emulator (DynamoDB, SNS, SQS) on 127.0.0.1 for the tests.

Binds a free port, prints one line `listening http://127.0.0.1:PORT`, and serves until its
standard input closes - which happens when the process that started it exits, however it
exits - so no emulator outlives its test run.
"""

import sys

from moto.server import ThreadedMotoServer


def main() -> int:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"listening http://{host}:{port}", flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
