#!/usr/bin/env bash
# Installs the test tools into .venv, once: the AWS emulator (moto server) and the
# CloudFormation/SAM linter (cfn-lint). The tests start the emulator themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
CFN_LINT_VERSION=1.58.0
marker=".venv/.tools-moto-$MOTO_VERSION-cfn-lint-$CFN_LINT_VERSION"
if [ -f "$marker" ]; then
  exit 0
fi
echo "installing moto[server]==$MOTO_VERSION and cfn-lint==$CFN_LINT_VERSION into .venv (once)"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION"
touch "$marker"
