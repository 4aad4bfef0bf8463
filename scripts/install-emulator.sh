#!/usr/bin/env bash
# Installs the AWS emulator (moto server) into .venv, once. The tests start it themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
marker=".venv/.moto-$MOTO_VERSION"
if [ -f "$marker" ]; then
  exit 0
fi
echo "installing moto[server]==$MOTO_VERSION into .venv (once)"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
touch "$marker"
