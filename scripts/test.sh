#!/usr/bin/env bash
# Runs every test: installs the emulator if needed, then the whole workspace's tests.
# Tests that need the emulator start it on a free port on 127.0.0.1 and stop it afterwards;
# with AWS_ENDPOINT_URL set (e.g. LocalStack) they use that endpoint instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-emulator.sh
cargo test --workspace --all-targets "$@"
