#!/usr/bin/env bash
# Runs every test: installs the tools if needed, lints template.yaml, then runs the whole
# workspace's tests. Tests that need the emulator start it on a free port on 127.0.0.1 and
# stop it afterwards; with AWS_ENDPOINT_URL set (e.g. LocalStack) they use that instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh
.venv/bin/cfn-lint template.yaml
cargo test --workspace --all-targets "$@"
