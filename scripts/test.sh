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
