#!/usr/bin/env bash
# The whole test suite on a fresh machine of this kind: the development environment, the local
# stage (registry, base images, dockerd, binfmt), the quality gates, then unit and integration
# tests with branch coverage. Run as root (it installs Debian packages and starts daemons).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
started=$(date +%s)
step() { printf '\n=== %s (%ss)\n' "$1" "$(( $(date +%s) - started ))"; }

step "development environment"
source scripts/dev-env.sh

step "local stage"
bash stage/stage.sh up
bash stage/stage.sh docker
eval "$(bash stage/stage.sh env)"

step "quality gates: ruff, mypy --strict, import-linter"
# The whole repository: the package, its tests, the stage, the scripts and the example service.
uv run --locked ruff check .
uv run --locked ruff format --check .
uv run --locked mypy  # src, tests, stage and scripts ([tool.mypy] files)
uv run --locked lint-imports

step "tests (unit + integration) with branch coverage"
# Everything the tests need is installed above, so a skipped test is a failure here.
CROSSDOCK_FAIL_ON_SKIP=1 uv run --locked pytest --cov --cov-report=term "$@"
step "done"
