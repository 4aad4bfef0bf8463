#!/usr/bin/env bash
# Installs the test tools into .venv, once: the AWS emulator (moto server), the
# CloudFormation linter (cfn-lint) and the SAM CLI (for `sam validate --lint`). The tests
# start the emulator themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
CFN_LINT_VERSION=1.58.0
SAM_CLI_VERSION=1.170.0
marker=".venv/.tools-moto-$MOTO_VERSION-cfn-lint-$CFN_LINT_VERSION-sam-$SAM_CLI_VERSION"
if [ -f "$marker" ]; then
  exit 0
fi
echo "installing moto[server]==$MOTO_VERSION, cfn-lint==$CFN_LINT_VERSION and aws-sam-cli==$SAM_CLI_VERSION into .venv (once)"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_CLI_VERSION"
touch "$marker"
