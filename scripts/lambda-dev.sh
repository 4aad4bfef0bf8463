#!/usr/bin/env bash
# The Lambda dev loop for one function of template.yaml, by its logical id:
#
#   scripts/lambda-dev.sh OrderSweepFunction
#   # then, in another shell (the line this prints at start):
#   .venv/bin/cargo-lambda lambda invoke order --data-file events/order-sweep.json
#
# Installs cargo-lambda (scripts/install-tools.sh --lambda), starts LocalStack on
# 127.0.0.1:4566 unless AWS_ENDPOINT_URL names an endpoint already, provisions the topology
# there (shop-local --function-env: tables, topics, queues, subscriptions under
# STACK_PREFIX, development signing keys in SSM), writes the function's environment from
# the template to .cache/lambda-dev/<FunctionId>.env, and runs `cargo lambda watch` with
# it: the function's binary, rebuilt on every change, its HANDLER choosing its code, behind
# a local Lambda runtime API. For UserAuthorizerFunction it also writes a sample event with
# a token valid for an hour (.cache/lambda-dev/user-authorizer-valid-token.json).
# Ctrl-C stops the watch and the LocalStack it started.
set -euo pipefail
cd "$(dirname "$0")/.."
function_id="${1:-}"
if [ -z "$function_id" ] || [ "$#" -ne 1 ]; then
  echo "usage: scripts/lambda-dev.sh <FunctionId from template.yaml, e.g. OrderSweepFunction>" >&2
  exit 2
fi
scripts/install-tools.sh --lambda >&2
export AWS_REGION="${AWS_REGION:-us-east-1}"
if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  port=4566
  infra/localstack/run "$port" > .cache/lambda-dev-localstack.log 2>&1 &
  localstack=$!
  trap 'kill "$localstack" 2>/dev/null || true; wait "$localstack" 2>/dev/null || true' EXIT
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  echo "starting LocalStack on $AWS_ENDPOINT_URL (log: .cache/lambda-dev-localstack.log)" >&2
  for _ in $(seq 1 120); do
    if curl -fsS "$AWS_ENDPOINT_URL/_localstack/health" > /dev/null 2>&1; then break; fi
    if ! kill -0 "$localstack" 2>/dev/null; then
      echo "LocalStack stopped; see .cache/lambda-dev-localstack.log" >&2
      exit 1
    fi
    sleep 1
  done
  curl -fsS "$AWS_ENDPOINT_URL/_localstack/health" > /dev/null ||
    { echo "LocalStack did not answer within 120 s" >&2; exit 1; }
fi
mkdir -p .cache/lambda-dev
env_file=".cache/lambda-dev/$function_id.env"
cargo run -q -p local --bin shop-local -- --function-env "$function_id" > "$env_file"
echo "the function's environment: $env_file" >&2
# On loopback only, where `cargo lambda invoke` looks by default.
PATH="$PWD/.venv/bin:$PATH" cargo lambda watch --invoke-address ::1 --env-file "$env_file"
