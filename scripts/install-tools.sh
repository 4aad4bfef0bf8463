#!/usr/bin/env bash
# Installs the test tools, once: the CloudFormation linter (cfn-lint) and the SAM CLI (for
# `sam validate --lint`) into .venv, the OpenAPI fuzzer schemathesis into .cache/schemathesis
# (its own environment: its pins and the SAM CLI's need not agree), and LocalStack into
# .cache/localstack (scripts/install-localstack.sh). The integration suite starts LocalStack
# itself.
# With --lambda, also cargo-lambda and zig into .venv and the arm64 Rust target, for
# `cargo lambda build --release --arm64` (`bench size`, `sam build`).
set -euo pipefail
cd "$(dirname "$0")/.."
lambda=false
for arg in "$@"; do
  case "$arg" in
    --lambda) lambda=true ;;
    *) echo "usage: scripts/install-tools.sh [--lambda]" >&2; exit 2 ;;
  esac
done
CFN_LINT_VERSION=1.58.0
SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2
ZIG_VERSION=0.17.1
SCHEMATHESIS_VERSION=4.32.5
marker=".venv/.tools-cfn-lint-$CFN_LINT_VERSION-sam-$SAM_CLI_VERSION"
if [ ! -f "$marker" ]; then
  echo "installing cfn-lint==$CFN_LINT_VERSION and aws-sam-cli==$SAM_CLI_VERSION into .venv (once)"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_CLI_VERSION"
  touch "$marker"
fi
fuzzer=".cache/schemathesis"
# Python 3.12 where there is one: 3.11's compiler fails on the deep expressions hypothesis
# builds for some schemas ("AST constructor recursion depth mismatch").
fuzzer_python=python3
for candidate in python3.12 "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12; do
  if "$candidate" -c "" 2>/dev/null; then
    fuzzer_python=$candidate
    break
  fi
done
if [ ! -f "$fuzzer/.installed-$SCHEMATHESIS_VERSION" ]; then
  echo "installing schemathesis==$SCHEMATHESIS_VERSION into $fuzzer with $fuzzer_python (once)"
  rm -rf "$fuzzer"
  "$fuzzer_python" -m venv "$fuzzer"
  "$fuzzer/bin/python" -m pip install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION"
  touch "$fuzzer/.installed-$SCHEMATHESIS_VERSION"
fi
scripts/install-localstack.sh
if $lambda; then
  if [ ! -f ".venv/.tools-cargo-lambda-$CARGO_LAMBDA_VERSION-zig-$ZIG_VERSION" ]; then
    echo "installing cargo-lambda==$CARGO_LAMBDA_VERSION and ziglang==$ZIG_VERSION into .venv (once)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
      "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIG_VERSION"
    touch ".venv/.tools-cargo-lambda-$CARGO_LAMBDA_VERSION-zig-$ZIG_VERSION"
  fi
  rustup target add aarch64-unknown-linux-gnu
  echo "cargo-lambda is .venv/bin/cargo-lambda: PATH=\"\$PWD/.venv/bin:\$PATH\" cargo lambda build --release --arm64"
fi
