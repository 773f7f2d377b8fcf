#!/usr/bin/env bash
# The seed's push script: build linux/arm64 (production is always arm64) and push it to the
# environment's repository with the seed's six tags:
#   ENV-TIMESTAMP  ENV-TIMESTAMP-arm64  ENV-arm64-latest  ENV-latest  SHA-arm64  SHA
# A thin wrapper: crossdock builds, verifies the binaries, and pushes (all or nothing).
#
# Usage: scripts/docker-push.sh ENV SERVICE [DOCKERFILE]
#   ENV         dev or prod ([environments.ENV] repository in crossdock.toml)
#   SERVICE     folder under backend/ (the seed's SERVICE_FOLDER)
#   DOCKERFILE  Dockerfile.lambda (default), Dockerfile.apprunner or Dockerfile.eks: the target
# Environment: CROSSDOCK (command, default crossdock), BACKEND (native, default, or buildx:
# the Dockerfile built by docker buildx, verified, then given the same six tags).
set -euo pipefail

usage() { echo "usage: $0 dev|prod SERVICE [Dockerfile.lambda|Dockerfile.apprunner|Dockerfile.eks]" >&2; exit 2; }
[[ $# -ge 2 && $# -le 3 ]] || usage
env_name=$1 service=$2 dockerfile=${3:-Dockerfile.lambda}
case $env_name in dev | prod) ;; *) usage ;; esac
case $dockerfile in Dockerfile.lambda | Dockerfile.apprunner | Dockerfile.eks) ;; *) usage ;; esac
target=${dockerfile#Dockerfile.}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ -d backend/$service ]] || { echo "error: no service folder backend/$service" >&2; exit 2; }

backend_args=()
if [[ ${BACKEND:-native} == buildx ]]; then
  backend_args=(--backend buildx --dockerfile "backend/$dockerfile")
fi

# shellcheck disable=SC2086 # CROSSDOCK may be a command with arguments ("uv run crossdock")
exec ${CROSSDOCK:-crossdock} build --project . --service "$service" --target "$target" \
  --platform linux/arm64 --env "$env_name" "${backend_args[@]}"
