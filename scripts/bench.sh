#!/usr/bin/env bash
# The benchmark: crossdock's native build of the example `api` service next to the seed's
# `docker buildx` + QEMU recipe, in one run on this machine (see README "Benchmark").
#   ./scripts/bench.sh                 everything (the arm64 buildx build under QEMU takes minutes)
#   ./scripts/bench.sh --skip-buildx   crossdock only (about two minutes)
# Other options: --skip-uv-cold, --skip-big-deps, --json PATH, --keep (scripts/bench.py --help).
# Prints a table; writes every measurement as JSON (default: $CROSSDOCK_CACHE_DIR/bench/).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

source scripts/dev-env.sh
bash stage/stage.sh up
bash stage/stage.sh docker
eval "$(bash stage/stage.sh env)"
(cd example/backend/api && uv lock --quiet)

exec uv run --locked python scripts/bench.py "$@"
