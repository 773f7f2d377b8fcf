#!/usr/bin/env bash
# The development environment, sourced by test.sh, demo.sh and bench.sh (or run on its own):
# uv (pinned), a Python 3.13 interpreter for uv to check and make locks of the 3.13 example
# services, a lock made here (locks are not committed, see README "Lock files"), and .venv with
# crossdock and its exact-pinned development tools. Idempotent.
set -euo pipefail
_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
UV_VERSION=0.13.9

if ! command -v uv >/dev/null 2>&1 || [ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]; then
  echo "dev-env: installing uv $UV_VERSION" >&2
  python3 -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

# uv checks a project's lock with an interpreter that satisfies its requires-python (>=3.13 for
# the example services). uv would download one, but its download host is not reachable from
# these machines, so use one that is installed: python3.13 on PATH, or pyenv's.
_find_python313() {
  local candidate
  for candidate in "$(command -v python3.13 2>/dev/null || true)" /root/.pyenv/versions/3.13*/bin/python3.13 \
                   /usr/local/bin/python3.13 /usr/bin/python3.13; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}
if [ -z "${UV_PYTHON:-}" ]; then
  if ! UV_PYTHON=$(_find_python313); then
    echo "dev-env: no Python 3.13 interpreter found (python3.13 on PATH or pyenv's); install one" >&2
    exit 1
  fi
fi
export UV_PYTHON
# The same interpreter runs crossdock's own development environment, so that every uv call in
# the scripts and tests agrees on it (crossdock itself supports Python 3.11+; mypy checks 3.11).
export UV_PYTHON_DOWNLOADS=never

(
  cd "$_repo"
  uv lock --quiet  # a no-op when the lock matches pyproject.toml; locks are not committed
  # Bytecode ahead of time: these machines set PYTHONDONTWRITEBYTECODE=1, so without it every
  # `crossdock` start would compile its imports again (seconds, and noise in the benchmark).
  uv sync --quiet --locked --compile-bytecode
  .venv/bin/python -m compileall -q src >/dev/null || true
)
