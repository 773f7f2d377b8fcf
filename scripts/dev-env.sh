#!/usr/bin/env bash
# Make the development environment: uv (pinned), a lock made here (locks are not committed, see
# README "Lock files"), and .venv with crossdock and its exact-pinned development tools.
# Idempotent; sourced or run by test.sh, demo.sh and bench.sh.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
UV_VERSION=0.13.9

if ! command -v uv >/dev/null 2>&1 || [ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]; then
  echo "dev-env: installing uv $UV_VERSION" >&2
  python3 -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
cd "$repo"
# uv reads the proxy's CA from SSL_CERT_FILE; --native-tls makes it use the system store too.
export UV_NATIVE_TLS=1
[ -f uv.lock ] || uv lock --quiet
uv sync --quiet --locked
