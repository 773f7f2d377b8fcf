# shellcheck shell=bash
# Docker Hub under its own host names, sourced by stage/stage.sh: the path a user takes who
# writes `--base python:3.13-slim` and pushes to `docker.io/<user>/<repo>`, which a mirror
# setting (the rest of the stage's way to the bases) hides.
#
#   https://registry-1.docker.io             (127.0.10.1:443) HTTPS front (stage/blob_front.py) of
#                                            a distribution 2.8 registry with token auth (internal,
#                                            127.0.0.1:5560); blob GETs answer 307 to the CDN host
#   https://auth.docker.io/token             (127.0.10.2:443) the token realm
#                                            (stage/token_server.py), service registry.docker.io:
#                                            anonymous pull tokens; a user pushes only under its
#                                            own name: crossdocktest/..., and library/... for the
#                                            stage's publisher (user "library")
#   https://production.cloudflare.docker.com (127.0.10.3:443) the CDN host blobs are redirected to
#                                            (signed URLs; refuses and records requests carrying
#                                            Authorization)
#
# These are real public names, so the machine's /etc/hosts never maps them: the stage writes a
# hosts file of its own ($HUB_DIR/hosts: the machine's entries plus these), and
# `stage.sh hub-run CMD...` runs CMD in a mount namespace of its own where that file is
# /etc/hosts (unshare --mount + a bind mount; root only). docker.io and index.docker.io, which
# clients must never ask for the API, map there to 127.0.10.9, where nothing listens.
# The certificates come from a CA of their own, name-constrained to docker.io and docker.com and
# trusted only where SSL_CERT_FILE names $HUB_TLS/bundle.pem (the system's CAs plus that CA).
# library/python:3.13-slim is the stage's stand-in, copied with its digests.

HUB_DIR=$CACHE/dockerhub
HUB_TLS=$HUB_DIR/tls
HUB_REGISTRY_NAME=registry-1.docker.io
HUB_AUTH_NAME=auth.docker.io
HUB_CDN_NAME=production.cloudflare.docker.com
# A loopback address per host, as each has its own address on the internet; all of 127/8 is
# loopback on Linux, so binding them needs no interface configured.
HUB_REGISTRY_ADDRESS=127.0.10.1
HUB_AUTH_ADDRESS=127.0.10.2
HUB_CDN_ADDRESS=127.0.10.3
HUB_NOWHERE_ADDRESS=127.0.10.9
HUB_INTERNAL_PORT=5560
HUB_SERVICE=registry.docker.io
HUB_USER=crossdocktest
# Who publishes the official images' stand-ins (library/...): a user of that name, as the token
# server lets users push under their own name only.
HUB_PUBLISHER=library
HUB_HOSTS=$HUB_DIR/hosts
HUB_BASES=(library/python:3.13-slim)
APT_PACKAGES+=(util-linux mount)

ensure_hub_hosts_file() {
  mkdir -p "$HUB_DIR"
  {
    grep -vE '(^|[[:space:]])[^[:space:]#]*docker\.(io|com)([[:space:]]|$)' /etc/hosts || true
    echo "# crossdock stage (stage/dockerhub.sh): only inside 'stage.sh hub-run'"
    echo "$HUB_REGISTRY_ADDRESS $HUB_REGISTRY_NAME"
    echo "$HUB_AUTH_ADDRESS $HUB_AUTH_NAME"
    echo "$HUB_CDN_ADDRESS $HUB_CDN_NAME"
    echo "$HUB_NOWHERE_ADDRESS docker.io index.docker.io"
  } >"$HUB_HOSTS.tmp"
  mv "$HUB_HOSTS.tmp" "$HUB_HOSTS"
}

# hub_run CMD...: CMD where Docker Hub's names are the stage's (its own mount namespace).
hub_run() {
  unshare --mount -- sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$HUB_HOSTS" "$@"
}

ensure_hub_ca() {
  ensure_ca "$HUB_TLS" "crossdock stage Docker Hub CA" \
    "permitted;DNS:docker.io,permitted;DNS:docker.com" \
    "$HUB_REGISTRY_NAME" "$HUB_AUTH_NAME" "$HUB_CDN_NAME"
  ensure_password "$HUB_DIR/password"
  ensure_password "$HUB_DIR/publisher-password"
}

# hub_curl NAME ADDRESS ARGS...: curl to https://NAME on ADDRESS (no namespace needed).
hub_curl() {
  local name=$1 address=$2
  shift 2
  curl -sS --noproxy '*' -m 3 --cacert "$HUB_TLS/ca.pem" --resolve "$name:443:$address" "$@"
}

hub_token_answers() {
  hub_curl "$HUB_AUTH_NAME" "$HUB_AUTH_ADDRESS" -o /dev/null -w '%{http_code}' \
    -A crossdock-stage-check "https://$HUB_AUTH_NAME/token?service=$HUB_SERVICE" 2>/dev/null |
    grep -qx 200
}

hub_registry_answers() {
  curl -sS --noproxy '*' -m 3 -o /dev/null -D - "http://127.0.0.1:$HUB_INTERNAL_PORT/v2/" 2>/dev/null |
    grep -qi '^docker-distribution-api-version: registry/2.0'
}

hub_front_answers() {
  hub_curl "$HUB_REGISTRY_NAME" "$HUB_REGISTRY_ADDRESS" -o /dev/null -D - \
    -A crossdock-stage-check "https://$HUB_REGISTRY_NAME/v2/" 2>/dev/null |
    grep -qi '^www-authenticate: bearer realm="https://'"$HUB_AUTH_NAME/token"'",service="'"$HUB_SERVICE"'"'
}

write_hub_registry_config() {
  mkdir -p "$HUB_DIR/registry"
  cat >"$HUB_DIR/registry.yml" <<EOF
# Written by stage/dockerhub.sh: the registry behind $HUB_REGISTRY_NAME, token auth, loopback only.
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $HUB_DIR/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$HUB_INTERNAL_PORT
auth:
  token:
    realm: https://$HUB_AUTH_NAME/token
    service: $HUB_SERVICE
    issuer: $HUB_AUTH_NAME
    rootcertbundle: $HUB_DIR/token/cert.pem
EOF
}

ensure_hub_daemons() {
  mkdir -p "$RUN" "$HUB_DIR/token"
  start_daemon hub-token "$HUB_DIR/token" hub_token_answers \
    "$HTTPS_PYTHON" "$STAGE_DIR/token_server.py" --address "$HUB_AUTH_ADDRESS" --port 443 \
    --folder "$HUB_DIR/token" --user "$HUB_USER" --password-file "$HUB_DIR/password" \
    --user "$HUB_PUBLISHER" --password-file "$HUB_DIR/publisher-password" --namespaced \
    --anonymous-pull --service "$HUB_SERVICE" --issuer "$HUB_AUTH_NAME" \
    --tls-cert "$HUB_TLS/server.pem" --tls-key "$HUB_TLS/server.key" \
    --log "$RUN/hub-token-requests.jsonl"
  write_hub_registry_config
  start_daemon hub-registry "$HUB_DIR/registry.yml" hub_registry_answers \
    docker-registry serve "$HUB_DIR/registry.yml"
  start_daemon hub-front "--storage-host $HUB_CDN_NAME" hub_front_answers \
    "$HTTPS_PYTHON" "$STAGE_DIR/blob_front.py" --address "$HUB_REGISTRY_ADDRESS" --front-port 443 \
    --upstream "127.0.0.1:$HUB_INTERNAL_PORT" --storage-address "$HUB_CDN_ADDRESS" \
    --storage-port 443 --storage-host "$HUB_CDN_NAME" --registry-root "$HUB_DIR/registry" \
    --tls-cert "$HUB_TLS/server.pem" --tls-key "$HUB_TLS/server.key" \
    --log "$RUN/hub-cdn-requests.jsonl" --front-log "$RUN/hub-registry-requests.jsonl"
}

# The stand-ins of HUB_BASES, copied from the plain registry with their digests (skopeo, as the
# publisher, through the hub's own names).
publish_hub_bases() {
  local py=$1 auth=$HUB_DIR/auth.json name digest have
  (umask 077 && printf '{"auths": {"docker.io": {"auth": "%s"}}}\n' \
    "$(printf '%s:%s' "$HUB_PUBLISHER" "$(<"$HUB_DIR/publisher-password")" | base64 -w0)" >"$auth")
  for name in "${HUB_BASES[@]}"; do
    digest=$("$py" -c '
import json, sys
for image in json.load(open(sys.argv[1]))["images"]:
    if any(ref.endswith("/" + sys.argv[2]) for ref in image["refs"]):
        print(image["index_digest"])
' "$CACHE/published.json" "$name")
    [[ -n $digest ]] || die "$name is not in $CACHE/published.json"
    # Not there yet is a failed inspect: nothing to compare (pipefail would end the script).
    have=$({ SSL_CERT_FILE=$HUB_TLS/bundle.pem hub_run skopeo inspect --raw --authfile "$auth" \
      "docker://docker.io/$name" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)
    [[ $have == "${digest#sha256:}" ]] && continue
    say "copying $REGISTRY/$name to docker.io/$name (the Docker Hub stand-in)"
    SSL_CERT_FILE=$HUB_TLS/bundle.pem hub_run skopeo copy -q --all --preserve-digests \
      --src-tls-verify=false --dest-authfile "$auth" "docker://$REGISTRY/$name" \
      "docker://docker.io/$name" >&2
  done
}

# ensure_hub_stage PYTHON: Docker Hub's names on the stage, idempotent.
ensure_hub_stage() {
  ensure_hub_hosts_file
  ensure_hub_ca
  ensure_hub_daemons
  publish_hub_bases "$1"
}

hub_env() {
  cat <<EOF
export CROSSDOCK_STAGE_HUB_USER=$HUB_USER
export CROSSDOCK_STAGE_HUB_PASSWORD_FILE=$HUB_DIR/password
export CROSSDOCK_STAGE_HUB_CA_BUNDLE=$HUB_TLS/bundle.pem
export CROSSDOCK_STAGE_HUB_LOGS=$RUN
export CROSSDOCK_STAGE_HUB_HOSTS=$HUB_HOSTS
EOF
}

hub_status() {
  daemons_status hub-token hub-registry hub-front
  echo "docker hub stand-in: https://$HUB_REGISTRY_NAME ($HUB_REGISTRY_ADDRESS)," \
    "realm https://$HUB_AUTH_NAME/token ($HUB_AUTH_ADDRESS), blobs from" \
    "https://$HUB_CDN_NAME ($HUB_CDN_ADDRESS), names only inside 'stage.sh hub-run'"
}

hub_down() {
  stop_pidfile hub-front "--storage-host $HUB_CDN_NAME"
  stop_pidfile hub-registry "$HUB_DIR/registry.yml"
  stop_pidfile hub-token "$HUB_DIR/token"
}
