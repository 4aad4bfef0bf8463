#!/usr/bin/env bash
# Runs every test: installs the tools if needed (cfn-lint and the SAM CLI into .venv,
# LocalStack into .cache/localstack), validates template.yaml, then runs the whole workspace's
# tests. The integration suite (tests/) starts LocalStack on a free port on 127.0.0.1 and
# stops it when it ends; with AWS_ENDPOINT_URL set it uses that endpoint instead. Every other
# test ignores AWS_ENDPOINT_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh
# The template: SAM's own validation with its linter (no AWS call; telemetry off).
SAM_CLI_TELEMETRY=0 .venv/bin/sam validate --lint --template template.yaml --region us-east-1
cargo test --workspace --all-targets "$@"
# Every service's domain, app and API build and pass their tests on the core platform alone,
# without any AWS SDK or Lambda runtime (their `lambda` feature off).
services=(-p user-service -p balance-service -p product-service -p coupon-source-service
  -p coupon-service -p order-service -p payment-service)
if cargo tree "${services[@]}" --no-default-features -e normal,dev --prefix none |
  grep -E '^(aws-sdk-|aws-config|lambda_runtime|lambda_http) '; then
  echo "a service's core build pulls in the AWS crates above" >&2
  exit 1
fi
cargo test "${services[@]}" --no-default-features --lib --tests "$@"
