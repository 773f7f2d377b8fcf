#!/usr/bin/env bash
# The main job, end to end, on a fresh machine of this kind (run as root):
# set up the local stage, build the example backend's `api` service for linux/arm64 and
# linux/amd64 with crossdock (no Docker daemon, no emulation), verify it, push it to the local
# registry, then run each platform's image with docker (arm64 through QEMU) and call it.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "development environment and local stage (registry, base images, dockerd, binfmt)"
source scripts/dev-env.sh
bash stage/stage.sh up
bash stage/stage.sh docker
eval "$(bash stage/stage.sh env)"

say "lock the example service (locks are made here, not committed)"
(cd example/backend/api && uv lock --quiet)

image="$CROSSDOCK_STAGE_REGISTRY/demo/api:latest"
say "crossdock build: linux/arm64 + linux/amd64 -> $image"
start=$(date +%s)
uv run --locked crossdock build -C example --service api \
  --platform linux/arm64,linux/amd64 --push "$image"
echo "build + verify + push took $(( $(date +%s) - start )) s (wall clock, cold or warm cache)"

say "what the registry holds (skopeo, an independent client)"
skopeo inspect --raw --tls-verify=false "docker://$image" | python3 -m json.tool

say "crossdock verify: every ELF file against its platform, glibc and Python"
uv run --locked crossdock verify "$image"

port=18080
for arch in arm64 amd64; do
  say "run the linux/$arch image with docker and call it on 127.0.0.1:$port"
  docker pull --quiet --platform "linux/$arch" "$image" >/dev/null
  cid=$(docker run -d --rm --network host --platform "linux/$arch" -e PORT=$port "$image" \
        python3 -m uvicorn app.main:app --host 127.0.0.1 --port $port)
  trap 'docker rm -f "$cid" >/dev/null 2>&1 || true' EXIT
  for _ in $(seq 1 300); do  # arm64 runs under QEMU: allow minutes on a loaded machine
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 1
  done
  echo "GET /health  -> $(curl -fsS "http://127.0.0.1:$port/health")"
  echo "GET /compute -> $(curl -fsS "http://127.0.0.1:$port/compute?n=5")"
  docker rm -f "$cid" >/dev/null
  trap - EXIT
done
say "done: $image"
