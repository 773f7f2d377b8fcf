# shellcheck shell=bash
# The stage's real-registry path, sourced by stage/stage.sh: what users meet on Docker Hub, ECR or
# GHCR and the plain-HTTP loopback registry never shows.
#
#   https://registry.crossdock.test:5556  HTTPS front (stage/blob_front.py) of a distribution 2.8
#                                         registry with token auth (internal, 127.0.0.1:5557);
#                                         blob GETs answer 307 to the storage origin
#   https://auth.crossdock.test:5559      its token realm on another host (stage/token_server.py):
#                                         anonymous pull tokens, push for one user
#   https://storage.crossdock.test:5558   the storage origin blobs are redirected to (signed URLs;
#                                         refuses and records requests carrying Authorization)
#
# The host names are /etc/hosts entries for 127.0.0.1 under .test (RFC 6761: never public). The
# certificates come from a CA the stage makes with openssl, name-constrained to crossdock.test, so
# trusting it (SSL_CERT_FILE=$HTTPS_DIR/tls/bundle.pem: the system bundle plus that CA) trusts
# nothing else. Every published base is copied there with its digests.

HTTPS_DOMAIN=crossdock.test
HTTPS_REGISTRY_NAME=registry.$HTTPS_DOMAIN
HTTPS_AUTH_NAME=auth.$HTTPS_DOMAIN
HTTPS_STORAGE_NAME=storage.$HTTPS_DOMAIN
HTTPS_FRONT_PORT=${CROSSDOCK_STAGE_HTTPS_PORT:-5556}
HTTPS_INTERNAL_PORT=5557
HTTPS_STORAGE_PORT=5558
HTTPS_AUTH_PORT=5559
HTTPS_REGISTRY=$HTTPS_REGISTRY_NAME:$HTTPS_FRONT_PORT
HTTPS_USER=pusher
HTTPS_DIR=$CACHE/https
HTTPS_TLS=$HTTPS_DIR/tls
# Installed by stage.sh's ensure_packages with the rest.
APT_PACKAGES+=(openssl python3-cryptography ca-certificates)
# The stage's daemons run on Debian's python3 (python3-cryptography signs the tokens).
HTTPS_PYTHON=/usr/bin/python3
HTTPS_HOSTS_MARK="# crossdock stage (stage/https.sh)"

ensure_hosts_entries() {
  local line="127.0.0.1 $HTTPS_REGISTRY_NAME $HTTPS_AUTH_NAME $HTTPS_STORAGE_NAME $HTTPS_HOSTS_MARK"
  grep -qxF "$line" /etc/hosts && return 0
  say "adding $HTTPS_REGISTRY_NAME, $HTTPS_AUTH_NAME, $HTTPS_STORAGE_NAME to /etc/hosts"
  if grep -qF "$HTTPS_HOSTS_MARK" /etc/hosts; then
    # An older stage line: rewrite in place (the file may be a bind mount: no rename).
    local kept
    kept=$(grep -vF "$HTTPS_HOSTS_MARK" /etc/hosts || true)
    printf '%s\n%s\n' "$kept" "$line" >/etc/hosts
  else
    printf '%s\n' "$line" >>/etc/hosts
  fi
}

# ensure_ca TLS_DIR CA_NAME NAME_CONSTRAINTS HOST...: a CA in TLS_DIR (ca.pem, ca.key) limited
# by NAME_CONSTRAINTS (openssl's syntax), a server certificate it signs for every HOST
# (server.pem, server.key; reissued a day before it expires), and bundle.pem: the system's CAs
# (a proxy's CA included) plus this CA, what tests and tools trust through SSL_CERT_FILE.
ensure_ca() {
  local tls=$1 ca_name=$2 constraints=$3
  shift 3
  local sans
  sans=$(printf 'DNS:%s,' "$@")
  mkdir -p "$tls"
  if [[ ! -s $tls/ca.pem || ! -s $tls/ca.key ]]; then
    say "making $ca_name ($tls/ca.pem, $constraints)"
    (umask 077 && openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 3650 -subj "/CN=$ca_name" \
      -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -addext "nameConstraints=critical,$constraints" 2>/dev/null)
    rm -f "$tls/server.pem"
  fi
  if [[ ! -s $tls/server.pem ]] || ! openssl x509 -checkend 86400 -noout -in "$tls/server.pem" >/dev/null; then
    say "issuing the server certificate of $ca_name for $*"
    (umask 077 && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$tls/server.key" -out "$tls/server.csr" -subj "/CN=$1" 2>/dev/null)
    printf '%s\n' "subjectAltName=${sans%,}" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$tls/server.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
      -CAcreateserial -days 825 -sha256 -extfile "$tls/server.ext" -out "$tls/server.pem" 2>/dev/null
  fi
  cat /etc/ssl/certs/ca-certificates.crt "$tls/ca.pem" >"$tls/bundle.pem.tmp"
  mv "$tls/bundle.pem.tmp" "$tls/bundle.pem"
}

# ensure_password FILE: a random password, made once.
ensure_password() {
  [[ -s $1 ]] || (umask 077 && openssl rand -hex 16 >"$1")
}

ensure_stage_ca() {
  ensure_ca "$HTTPS_TLS" "crossdock stage CA" "permitted;DNS:$HTTPS_DOMAIN" \
    "$HTTPS_REGISTRY_NAME" "$HTTPS_AUTH_NAME" "$HTTPS_STORAGE_NAME"
  # skopeo --cert-dir / docker certs.d layout.
  mkdir -p "$HTTPS_TLS/certs.d"
  cp "$HTTPS_TLS/ca.pem" "$HTTPS_TLS/certs.d/ca.crt"
  ensure_password "$HTTPS_DIR/password"
}

https_curl() { curl -sS --noproxy '*' -m 3 --cacert "$HTTPS_TLS/ca.pem" "$@"; }

token_server_answers() {
  https_curl -o /dev/null -w '%{http_code}' \
    "https://$HTTPS_AUTH_NAME:$HTTPS_AUTH_PORT/token?service=crossdock-test-registry" 2>/dev/null |
    grep -qx 200
}

https_registry_answers() {
  curl -sS --noproxy '*' -m 3 -o /dev/null -D - "http://127.0.0.1:$HTTPS_INTERNAL_PORT/v2/" 2>/dev/null |
    grep -qi '^docker-distribution-api-version: registry/2.0'
}

blob_front_answers() {
  https_curl -o /dev/null -D - "https://$HTTPS_REGISTRY/v2/" 2>/dev/null |
    grep -qi '^www-authenticate: bearer realm="https://'"$HTTPS_AUTH_NAME"
}

write_https_registry_config() {
  mkdir -p "$HTTPS_DIR/registry"
  cat >"$HTTPS_DIR/registry.yml" <<EOF
# Written by stage/https.sh: the registry behind $HTTPS_REGISTRY, token auth, loopback only.
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $HTTPS_DIR/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$HTTPS_INTERNAL_PORT
auth:
  token:
    realm: https://$HTTPS_AUTH_NAME:$HTTPS_AUTH_PORT/token
    service: crossdock-test-registry
    issuer: crossdock-test-issuer
    rootcertbundle: $HTTPS_DIR/token/cert.pem
EOF
}

ensure_https_daemons() {
  mkdir -p "$RUN" "$HTTPS_DIR/token"
  start_daemon https-token token_server.py token_server_answers \
    "$HTTPS_PYTHON" "$STAGE_DIR/token_server.py" --port "$HTTPS_AUTH_PORT" \
    --folder "$HTTPS_DIR/token" --user "$HTTPS_USER" --password-file "$HTTPS_DIR/password" \
    --anonymous-pull --tls-cert "$HTTPS_TLS/server.pem" --tls-key "$HTTPS_TLS/server.key"
  write_https_registry_config
  start_daemon https-registry "$HTTPS_DIR/registry.yml" https_registry_answers \
    docker-registry serve "$HTTPS_DIR/registry.yml"
  start_daemon https-front blob_front.py blob_front_answers \
    "$HTTPS_PYTHON" "$STAGE_DIR/blob_front.py" --front-port "$HTTPS_FRONT_PORT" \
    --upstream "127.0.0.1:$HTTPS_INTERNAL_PORT" --storage-port "$HTTPS_STORAGE_PORT" \
    --storage-host "$HTTPS_STORAGE_NAME" --registry-root "$HTTPS_DIR/registry" \
    --tls-cert "$HTTPS_TLS/server.pem" --tls-key "$HTTPS_TLS/server.key" \
    --log "$RUN/storage-requests.jsonl"
}

# Every base published on the plain registry, copied with its digests (skopeo, the push user).
publish_https_bases() {
  local py=$1 auth=$HTTPS_DIR/auth.json source digest target
  (umask 077 && printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$HTTPS_REGISTRY" \
    "$(printf '%s:%s' "$HTTPS_USER" "$(<"$HTTPS_DIR/password")" | base64 -w0)" >"$auth")
  while read -r source digest; do
    target=$HTTPS_REGISTRY/${source#*/}
    if [[ $(SSL_CERT_FILE=$HTTPS_TLS/bundle.pem skopeo inspect --raw --authfile "$auth" \
      "docker://$target" 2>/dev/null | sha256sum | cut -d' ' -f1) == "${digest#sha256:}" ]]; then
      continue
    fi
    say "copying $source to $target"
    SSL_CERT_FILE=$HTTPS_TLS/bundle.pem skopeo copy -q --all --preserve-digests \
      --src-tls-verify=false --dest-authfile "$auth" "docker://$source" "docker://$target" >&2
  done < <("$py" -c '
import json, sys
for image in json.load(open(sys.argv[1]))["images"]:
    for ref in image["refs"]:
        print(ref, image["index_digest"])
' "$CACHE/published.json")
}

# ensure_https_stage PYTHON: the whole real-registry path, idempotent.
ensure_https_stage() {
  ensure_hosts_entries
  ensure_stage_ca
  ensure_https_daemons
  publish_https_bases "$1"
}

https_env() {
  cat <<EOF
export CROSSDOCK_STAGE_HTTPS_REGISTRY=$HTTPS_REGISTRY
export CROSSDOCK_STAGE_HTTPS_USER=$HTTPS_USER
export CROSSDOCK_STAGE_HTTPS_PASSWORD_FILE=$HTTPS_DIR/password
export CROSSDOCK_STAGE_CA_BUNDLE=$HTTPS_TLS/bundle.pem
export CROSSDOCK_STAGE_STORAGE_LOG=$RUN/storage-requests.jsonl
EOF
}

# daemons_status NAME...: whether each daemon of $RUN/NAME.pid runs.
daemons_status() {
  local name
  for name in "$@"; do
    if [[ -s $RUN/$name.pid ]] && [[ -e /proc/$(<"$RUN/$name.pid") ]]; then
      echo "$name: running (pid $(<"$RUN/$name.pid"))"
    else
      echo "$name: not running"
    fi
  done
}

https_status() {
  daemons_status https-token https-registry https-front
  echo "https registry: $HTTPS_REGISTRY (token realm https://$HTTPS_AUTH_NAME:$HTTPS_AUTH_PORT," \
    "blobs from https://$HTTPS_STORAGE_NAME:$HTTPS_STORAGE_PORT)"
}

https_down() {
  stop_pidfile https-front blob_front.py
  stop_pidfile https-registry "$HTTPS_DIR/registry.yml"
  stop_pidfile https-token token_server.py
}
