#!/usr/bin/env bash
# Runs every test: installs the tools if needed, validates template.yaml, then runs the whole
# workspace's tests. Tests that need the emulator start it on a free port on 127.0.0.1 and
# stop it afterwards; with AWS_ENDPOINT_URL set (e.g. LocalStack) they use that instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh
# The template: SAM's own validation with its linter (no AWS call; telemetry off).
SAM_CLI_TELEMETRY=0 .venv/bin/sam validate --lint --template template.yaml --region us-east-1
cargo test --workspace --all-targets "$@"
