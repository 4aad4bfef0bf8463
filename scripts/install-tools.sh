#!/usr/bin/env bash
# Installs the test tools, once: the CloudFormation linter (cfn-lint) and the SAM CLI (for
# `sam validate --lint`) into .venv, and LocalStack into .cache/localstack
# (scripts/install-localstack.sh). The integration suite starts LocalStack itself.
set -euo pipefail
cd "$(dirname "$0")/.."
CFN_LINT_VERSION=1.58.0
SAM_CLI_VERSION=1.170.0
marker=".venv/.tools-cfn-lint-$CFN_LINT_VERSION-sam-$SAM_CLI_VERSION"
if [ ! -f "$marker" ]; then
  echo "installing cfn-lint==$CFN_LINT_VERSION and aws-sam-cli==$SAM_CLI_VERSION into .venv (once)"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_CLI_VERSION"
  touch "$marker"
fi
scripts/install-localstack.sh
