#!/usr/bin/env bash
# The local stage: real components on this machine (ARCHITECTURE.md section 7).
#
# No container registry is reachable from here, so this script builds the stand-ins the
# integration tests, the demo and the benchmark need: a registry on loopback, multi-arch
# python:3.13-slim and lambda/python:3.13 stand-ins in it, QEMU through binfmt_misc to *run*
# arm64 images (never to build them), and dockerd + buildx to check images with a second,
# independent tool. Everything is installed from Debian's archive and PyPI; every step skips
# what is already there, so a second `up` takes seconds.
#
# Usage: stage/stage.sh up | docker [--reprobe] | env | status | down | binfmt on|off
#        stage/stage.sh hub-run CMD...   (CMD where Docker Hub's names are the stage's)
#
# Environment:
#   CROSSDOCK_STAGE_PORT  registry port on 127.0.0.1 (default 5555)
#   CROSSDOCK_STAGE_HTTPS_PORT  port of the HTTPS registry front (default 5556; stage/https.sh)
#   CROSSDOCK_CACHE_DIR   cache root (default ~/.cache/crossdock); the stage uses .../stage
set -euo pipefail

STAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PORT=${CROSSDOCK_STAGE_PORT:-5555}
CACHE_ROOT=${CROSSDOCK_CACHE_DIR:-$HOME/.cache/crossdock}
CACHE=$CACHE_ROOT/stage
RUN=$CACHE/run
REGISTRY=127.0.0.1:$PORT
UV_VERSION=0.13.9
# libc6/libstdc++6-arm64-cross: real arm64 C libraries for the unit tests' small arm64 images.
APT_PACKAGES=(docker-registry skopeo qemu-user-static binfmt-support mmdebstrap docker.io
  apache2-utils iproute2 procps curl git libc6-arm64-cross libstdc++6-arm64-cross)
BINFMT_ENTRY=/proc/sys/fs/binfmt_misc/qemu-aarch64
BUILDX_PLUGIN=/usr/local/lib/docker/cli-plugins/docker-buildx
# Debian 12's debian-archive-keyring 2023.3+deb12u2 carries trixie's archive key.
TRIXIE_ARCHIVE_KEY=04B54C3CDCA79751B16BC6B5225629DF75B188BD

say() { printf 'stage: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }

# ---------------------------------------------------------------------------------------------
# Packages, binfmt, uv
# ---------------------------------------------------------------------------------------------

ensure_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  say "installing: ${missing[*]}"
  apt-get update -qq
  # No recommends: docker.io would bring apparmor and needrestart, useless here.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

binfmt_state() {
  # "enabled", "disabled" (registered but off) or "absent"
  if [[ -r $BINFMT_ENTRY ]]; then head -n1 "$BINFMT_ENTRY"; else echo absent; fi
}

binfmt_has_fix_binary() {
  # F (fix binary): the kernel opens the interpreter at registration time, so arm64 binaries
  # run inside containers, whose root filesystem has no /usr/libexec/qemu-binfmt.
  grep -Eq '^flags: .*F' "$BINFMT_ENTRY"
}

ensure_binfmt_mount() {
  if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
}

binfmt_on() {
  ensure_binfmt_mount
  if [[ $(binfmt_state) != enabled ]]; then
    update-binfmts --enable qemu-aarch64
  fi
  if ! binfmt_has_fix_binary; then
    # Registered by something else without F: register binfmt-support's entry instead.
    say "qemu-aarch64 lacks the F flag; re-registering it"
    update-binfmts --disable qemu-aarch64 || true
    update-binfmts --enable qemu-aarch64
  fi
  [[ $(binfmt_state) == enabled ]] || die "qemu-aarch64 is not enabled in $BINFMT_ENTRY"
  binfmt_has_fix_binary || die "qemu-aarch64 has no F flag: $(grep flags "$BINFMT_ENTRY")"
}

binfmt_off() {
  ensure_binfmt_mount
  if [[ $(binfmt_state) != absent ]]; then
    update-binfmts --disable qemu-aarch64
  fi
}

find_uv() {
  # pyenv shims exist for every installed version's scripts: check that uv really runs.
  if uv --version >/dev/null 2>&1; then
    command -v uv
    return
  fi
  say "installing uv==$UV_VERSION"
  python3 -m pip install --quiet "uv==$UV_VERSION" >&2
  python3 -c 'import uv; print(uv.find_uv_bin())'
}

find_python() {
  # make_bases.py needs tomllib (3.11+); Debian 12's /usr/bin/python3 is 3.11.
  local py
  for py in python3 /usr/bin/python3; do
    if "$py" -c 'import sys, tomllib; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$py"
      return
    fi
  done
  die "need Python 3.11+ for stage/make_bases.py"
}

# ---------------------------------------------------------------------------------------------
# Daemons we start: pidfile in $RUN, log beside it. `down` stops only these.
# ---------------------------------------------------------------------------------------------

# start_daemon NAME MATCH CHECK COMMAND...: start COMMAND unless the function CHECK succeeds,
# then wait until it does. MATCH is in the command line of the daemon this stage started (the
# pidfile's process is stopped first only if it is that daemon).
#
# Whether the daemon still runs is judged by its pid existing, never by its command line while it
# starts: between fork and exec the child's command line is still this script's, and on a busy
# machine the first check can come before the exec (CI once gave up on a registry that was
# listening a moment later). Only a daemon whose process is gone and whose MATCH no process runs
# is given up on before the deadline.
start_daemon() {
  local name=$1 match=$2 check=$3 pid i
  shift 3
  "$check" && return 0
  stop_pidfile "$name" "$match"
  mkdir -p "$RUN"
  say "starting $name (log: $RUN/$name.log)"
  # setsid: the daemon outlives this script and its terminal; its output goes to the log and it
  # must not inherit fd 9, the lock of with_lock (it would hold it for ever).
  setsid "$@" </dev/null >>"$RUN/$name.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$RUN/$name.pid"
  for ((i = 0; i < 300; i++)); do
    if "$check"; then
      # setsid forks when it leads a process group: then the daemon is its child.
      [[ -e /proc/$pid ]] || pgrep -n -f -- "$match" >"$RUN/$name.pid" || true
      return 0
    fi
    if [[ ! -e /proc/$pid ]] && ! pgrep -f -- "$match" >/dev/null; then
      break
    fi
    sleep 0.1
  done
  tail -n 20 "$RUN/$name.log" >&2 || true
  die "$name did not come up within 30s (log: $RUN/$name.log)"
}

# pid_alive NAME EXE: the pid in $RUN/NAME.pid runs EXE (pids are reused: check the command).
pid_alive() {
  local pidfile=$RUN/$1.pid pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

stop_pidfile() {
  local name=$1 exe=$2 pid i
  if ! pid_alive "$name" "$exe"; then
    rm -f "$RUN/$name.pid"
    return 0
  fi
  pid=$(<"$RUN/$name.pid")
  say "stopping $name (pid $pid)"
  kill -TERM "$pid"
  for ((i = 0; i < 100; i++)); do
    [[ -e /proc/$pid ]] || break
    sleep 0.2
  done
  if [[ -e /proc/$pid ]]; then
    say "$name did not stop in 20s; killing it"
    kill -KILL "$pid" || true
  fi
  rm -f "$RUN/$name.pid"
}

# A registry answers GET /v2/ with this header (plain HTTP, loopback, no proxy).
registry_answers() {
  curl -sS --noproxy '*' -m 3 -o /dev/null -D - "http://$REGISTRY/v2/" 2>/dev/null |
    grep -qi '^docker-distribution-api-version: registry/2.0'
}

ensure_registry() {
  if registry_answers; then
    return 0
  fi
  if curl -s --noproxy '*' -m 3 -o /dev/null "http://$REGISTRY/" 2>/dev/null; then
    die "something that is not a registry answers on $REGISTRY; set CROSSDOCK_STAGE_PORT"
  fi
  mkdir -p "$RUN" "$CACHE/registry"
  # Our own minimal config: Debian's default one enables htpasswd auth and listens on :5000.
  cat >"$CACHE/registry.yml" <<EOF
# Written by stage/stage.sh: local stage registry, loopback only, no auth.
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $CACHE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
  start_daemon registry "$CACHE/registry.yml" registry_answers \
    env REGISTRY_HTTP_ADDR="$REGISTRY" REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$CACHE/registry" \
    docker-registry serve "$CACHE/registry.yml"
}

docker_ok() { docker info >/dev/null 2>&1; }

ensure_dockerd() {
  if docker_ok; then
    return 0
  fi
  if pid_alive dockerd dockerd; then
    say "our dockerd (pid $(<"$RUN/dockerd.pid")) runs but does not answer yet"
  else
    mkdir -p "$RUN"
    # A pidfile left by a dockerd that was killed names a pid some other process may have now:
    # dockerd would refuse to start ("pid file found, ensure docker is not running").
    rm -f "$RUN/dockerd.pid"
    say "starting dockerd (log: $RUN/dockerd.log)"
    # Not fd 9 (the lock): see ensure_registry.
    setsid dockerd --pidfile "$RUN/dockerd.pid" </dev/null >>"$RUN/dockerd.log" 2>&1 9>&- &
    # dockerd writes $RUN/dockerd.pid itself. Writing it here first would make dockerd 20.10
    # refuse to start ("pid file found, ensure docker is not running").
  fi
  local i
  for ((i = 0; i < 120; i++)); do
    docker_ok && return 0
    sleep 0.5
  done
  tail -n 30 "$RUN/dockerd.log" >&2 || true
  die "dockerd did not answer within 60s"
}

# ---------------------------------------------------------------------------------------------
# buildx from trixie's docker-buildx package, without touching the system's apt sources
# ---------------------------------------------------------------------------------------------

docker_clis() {
  # /usr/local/bin/docker (28.x) shadows Debian's /usr/bin/docker: both must find the plugin.
  local cli
  for cli in $(type -ap docker); do readlink -f "$cli"; done | awk '!seen[$0]++'
}

buildx_ok() {
  local cli
  [[ -x $BUILDX_PLUGIN ]] || return 1
  for cli in $(docker_clis); do
    "$cli" buildx version >/dev/null 2>&1 || return 1
  done
}

ensure_trixie_keyring() {
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  if command -v gpg >/dev/null &&
    gpg --batch --no-default-keyring --keyring "$keyring" --list-keys "$TRIXIE_ARCHIVE_KEY" \
      >/dev/null 2>&1; then
    return 0
  fi
  # Not there (or no gpg to tell): bookworm's newest debian-archive-keyring has it.
  say "updating debian-archive-keyring for trixie's release key"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debian-archive-keyring >/dev/null
}

# The Debian archive this machine's apt already uses (its first "URIs:" line, or the first "deb"
# line of sources.list): the stage fetches from where the machine is set up to fetch.
debian_mirror() {
  local uri
  uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)[[:space:]]*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  if [[ -z $uri ]]; then
    uri=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  fi
  if [[ -z $uri ]]; then
    die "no Debian archive found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
  fi
  printf '%s\n' "${uri%/}"
}

ensure_buildx() {
  if buildx_ok; then
    return 0
  fi
  local aptdir=$CACHE/apt-trixie deb tmp cli
  mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/debs"
  deb=$(find "$aptdir/debs" -name 'docker-buildx_*.deb' | sort | tail -n1)
  if [[ -z $deb ]]; then
    ensure_trixie_keyring
    local mirror
    mirror=$(debian_mirror)
    cat >"$aptdir/trixie.sources" <<EOF
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # Own sources, lists and package cache: the system's apt state stays bookworm-only.
    local apt_opts=(
      -o "Dir::Etc::sourcelist=$aptdir/trixie.sources"
      -o "Dir::Etc::sourceparts=-"
      -o "Dir::State::Lists=$aptdir/lists"
      -o "Dir::Cache=$aptdir/cache"
      -o "APT::Sandbox::User=root" # _apt cannot write into root's cache folder
    )
    say "fetching docker-buildx from trixie"
    apt-get "${apt_opts[@]}" update -qq
    (cd "$aptdir/debs" && apt-get "${apt_opts[@]}" download docker-buildx >/dev/null)
    deb=$(find "$aptdir/debs" -name 'docker-buildx_*.deb' | sort | tail -n1)
    [[ -n $deb ]] || die "apt-get download docker-buildx gave no .deb"
  fi
  tmp=$(mktemp -d)
  dpkg -x "$deb" "$tmp"
  install -D -m 0755 "$tmp/usr/libexec/docker/cli-plugins/docker-buildx" "$BUILDX_PLUGIN"
  rm -rf "$tmp"
  for cli in $(docker_clis); do
    "$cli" buildx version >/dev/null || die "$cli does not find $BUILDX_PLUGIN"
  done
  say "installed $BUILDX_PLUGIN from $(basename "$deb")"
}

# ---------------------------------------------------------------------------------------------
# Checks with docker: the stand-ins pull and run on both platforms
# ---------------------------------------------------------------------------------------------

# run_machine IMAGE PLATFORM: what platform.machine() says inside IMAGE run as PLATFORM.
run_machine() {
  docker pull -q --platform "$2" "$1" >/dev/null
  docker run --rm --network host --platform "$2" --entrypoint python3 "$1" \
    -c 'import platform; print(platform.machine())'
}

check_docker_runs() {
  local image plat want got
  for image in "$REGISTRY/library/python:3.13-slim" "$REGISTRY/lambda/python:3.13"; do
    for plat in linux/amd64:x86_64 linux/arm64:aarch64; do
      want=${plat#*:}
      got=$(run_machine "$image" "${plat%%:*}")
      [[ $got == "$want" ]] || die "$image as ${plat%%:*}: platform.machine() is '$got', want '$want'"
      say "ok: $image ${plat%%:*} runs: $got"
    done
  done
}

# Probes of what dockerd 20.10's BuildKit can do; results go to $CACHE/buildx-probe.txt.
# They are reported, not fatal: crossdock builds without docker. They take a minute under
# QEMU, so they rerun only when dockerd, buildx or the published bases change (or --reprobe).
probe_buildx() {
  local ctx=$CACHE/buildx-probe report=$CACHE/buildx-probe.txt out t0 key
  key=$(
    {
      docker version --format '{{.Server.Version}}'
      "$BUILDX_PLUGIN" version
      cat "$CACHE/published.json"
    } | sha256sum | cut -c1-16
  )
  if [[ ${1:-} != --reprobe && -s $report && $(cat "$CACHE/buildx-probe.key" 2>/dev/null) == "$key" ]]; then
    sed 's/^/stage: buildx probe (cached; --reprobe reruns): /' "$report" >&2
    return 0
  fi
  rm -f "$CACHE/buildx-probe.key"
  rm -rf "$ctx"
  mkdir -p "$ctx/plain" "$ctx/named"
  : >"$report"
  {
    echo "# buildx probe $(date -u +%FT%TZ)"
    for cli in $(docker_clis); do echo "$cli: $("$cli" version --format '{{.Client.Version}}' 2>/dev/null) / $("$cli" buildx version 2>&1)"; done
    echo "dockerd: $(docker version --format '{{.Server.Version}}' 2>&1)"
  } >>"$report"

  # 1. arm64 RUN step under QEMU, base pulled from the loopback registry.
  cat >"$ctx/plain/Dockerfile" <<EOF
FROM $REGISTRY/library/python:3.13-slim
RUN python3 -c "import platform; print(platform.machine())" > /machine && uname -m >> /machine
CMD ["cat", "/machine"]
EOF
  t0=$(now)
  if docker buildx build --progress=plain --platform linux/arm64 --network host --load --no-cache \
    -t crossdock-stage-probe:arm64 "$ctx/plain" >"$ctx/plain.log" 2>&1 &&
    out=$(docker run --rm --platform linux/arm64 crossdock-stage-probe:arm64 | tr '\n' ' ') &&
    [[ $out == "aarch64 aarch64 " ]]; then
    echo "PASS arm64 build with RUN under QEMU from $REGISTRY ($(since "$t0")): $out" >>"$report"
  else
    echo "FAIL arm64 build with RUN under QEMU (log: $ctx/plain.log): $(tail -n 3 "$ctx/plain.log" | tr '\n' ' ')" >>"$report"
  fi

  # 2. Named build context: map FROM public.ecr.aws/lambda/python:3.13 to the stage.
  cat >"$ctx/named/Dockerfile" <<'EOF'
FROM public.ecr.aws/lambda/python:3.13
RUN python3 -c "import platform; print(platform.machine())" > /machine
EOF
  if docker buildx build --progress=plain --platform linux/arm64 --network host --load \
    --build-context "public.ecr.aws/lambda/python:3.13=docker-image://$REGISTRY/lambda/python:3.13" \
    -t crossdock-stage-probe:named "$ctx/named" >"$ctx/named.log" 2>&1; then
    echo "PASS --build-context name=docker-image://... (named contexts work)" >>"$report"
  else
    echo "FAIL --build-context name=docker-image://... (log: $ctx/named.log): $(grep -iE 'error|not supported|unsupported' "$ctx/named.log" | tail -n 2 | tr '\n' ' ')" >>"$report"
  fi

  # 3. Without named contexts: tag the stand-in locally under the public name. BuildKit in
  #    dockerd uses a local image of the right platform before going to the registry. One
  #    platform at a time: the daemon's image store holds one platform per tag.
  docker pull -q --platform linux/arm64 "$REGISTRY/lambda/python:3.13" >/dev/null
  docker tag "$REGISTRY/lambda/python:3.13" public.ecr.aws/lambda/python:3.13
  t0=$(now)
  if docker buildx build --progress=plain --platform linux/arm64 --network host --load \
    -t crossdock-stage-probe:localtag "$ctx/named" >"$ctx/localtag.log" 2>&1 &&
    out=$(docker run --rm --platform linux/arm64 --entrypoint cat crossdock-stage-probe:localtag /machine) &&
    [[ $out == aarch64 ]]; then
    echo "PASS FROM public.ecr.aws/lambda/python:3.13 via a local 'docker tag' of the arm64 stand-in ($(since "$t0")): $out" >>"$report"
  else
    echo "FAIL FROM public.ecr.aws/lambda/python:3.13 via a local tag (log: $ctx/localtag.log): $(tail -n 3 "$ctx/localtag.log" | tr '\n' ' ')" >>"$report"
  fi
  docker image rm -f crossdock-stage-probe:arm64 crossdock-stage-probe:named \
    crossdock-stage-probe:localtag public.ecr.aws/lambda/python:3.13 >/dev/null 2>&1 || true
  sed 's/^/stage: buildx probe: /' "$report" >&2
  echo "$key" >"$CACHE/buildx-probe.key"
}

# The real-registry path (HTTPS, token realm on another host, redirected blobs): stage/https.sh.
# shellcheck source=stage/https.sh
source "$STAGE_DIR/https.sh"
# Docker Hub under its own names (registry-1.docker.io, auth.docker.io, its CDN host), on 443:
# stage/dockerhub.sh.
# shellcheck source=stage/dockerhub.sh
source "$STAGE_DIR/dockerhub.sh"

# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------

# A second version of each base (one more layer: a changed /etc/issue, same Python), under its
# own tag (library/python:3.13-slim-v2, lambda/python:3.13-v2): what `crossdock rebase` moves
# images onto. Built from make_bases.py's layout; pushed only when the registry lacks it.
publish_base_updates() {
  "$1" "$STAGE_DIR/base_updates.py" --cache "$CACHE" --registry "$REGISTRY"
}

cmd_up() {
  local t0 uv py
  t0=$(now)
  ensure_packages
  binfmt_on
  uv=$(find_uv)
  py=$(find_python)
  mkdir -p "$RUN"
  ensure_registry
  "$py" "$STAGE_DIR/make_bases.py" publish --cache "$CACHE" --registry "$REGISTRY" --uv "$uv"
  ensure_https_stage "$py"
  ensure_hub_stage "$py"
  publish_base_updates "$py"
  say "up in $(since "$t0"): registry $REGISTRY, bases in $CACHE/published.json, https registry $HTTPS_REGISTRY, docker hub stand-in (stage.sh hub-run)"
}

cmd_docker() {
  local t0
  t0=$(now)
  [[ $# -eq 0 || $1 == --reprobe ]] || die "usage: stage.sh docker [--reprobe]"
  registry_answers || die "no registry on $REGISTRY: run 'stage/stage.sh up' first"
  [[ -s $CACHE/published.json ]] || die "no bases published: run 'stage/stage.sh up' first"
  [[ $(binfmt_state) == enabled ]] || die "qemu-aarch64 is not enabled: run 'stage/stage.sh binfmt on'"
  ensure_dockerd
  ensure_buildx
  check_docker_runs
  probe_buildx "$@"
  say "docker ready in $(since "$t0")"
}

cmd_env() {
  # Public registry host -> mirror host; the repository path is kept.
  cat <<EOF
export CROSSDOCK_STAGE_REGISTRY=$REGISTRY
export CROSSDOCK_REGISTRY_MIRRORS='docker.io=$REGISTRY,public.ecr.aws=$REGISTRY'
export CROSSDOCK_CACHE_DIR=$CACHE_ROOT
EOF
  https_env
  hub_env
}

cmd_status() {
  local cli py
  echo "cache: $CACHE"
  if registry_answers; then
    if pid_alive registry docker-registry; then
      echo "registry: $REGISTRY answering (started by stage, pid $(<"$RUN/registry.pid"))"
    else
      echo "registry: $REGISTRY answering (not started by this stage)"
    fi
  else
    echo "registry: $REGISTRY not answering"
  fi
  echo "bases:"
  py=$(find_python)
  "$py" "$STAGE_DIR/make_bases.py" summary --cache "$CACHE" || true
  echo "binfmt qemu-aarch64: $(binfmt_state)$([[ -r $BINFMT_ENTRY ]] && echo " ($(grep '^flags' "$BINFMT_ENTRY"))")"
  if docker_ok; then
    if pid_alive dockerd dockerd; then
      echo "dockerd: $(docker version --format '{{.Server.Version}}') (started by stage, pid $(<"$RUN/dockerd.pid"))"
    else
      echo "dockerd: $(docker version --format '{{.Server.Version}}') (not started by this stage)"
    fi
  else
    echo "dockerd: not answering"
  fi
  for cli in $(docker_clis); do
    echo "buildx via $cli: $("$cli" buildx version 2>/dev/null || echo missing)"
  done
  [[ -s $CACHE/buildx-probe.txt ]] && sed 's/^/  /' "$CACHE/buildx-probe.txt"
  https_status
  hub_status
  return 0
}

cmd_down() {
  hub_down
  https_down
  stop_pidfile registry docker-registry
  stop_pidfile dockerd dockerd
}

# Several sessions (tests, demo, CI) may run `up` at once on the same cache: one at a time.
with_lock() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  if ! flock -n 9; then
    say "waiting for another stage.sh on $CACHE"
    flock 9
  fi
  "$@"
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
  up) with_lock cmd_up ;;
  docker) with_lock cmd_docker "$@" ;;
  env) cmd_env ;;
  status) cmd_status ;;
  down) cmd_down ;;
  hub-run)
    (($#)) || die "usage: stage.sh hub-run CMD..."
    # The stage's hosts file even when CMD runs with a cache folder of its own.
    HUB_HOSTS=${CROSSDOCK_STAGE_HUB_HOSTS:-$HUB_HOSTS}
    [[ -s $HUB_HOSTS ]] || die "no $HUB_HOSTS: run 'stage/stage.sh up' first"
    hub_run "$@"
    ;;
  binfmt)
    case ${1:-} in
    on) with_lock binfmt_on ;;
    off) with_lock binfmt_off ;;
    *) die "usage: stage.sh binfmt on|off" ;;
    esac
    echo "qemu-aarch64: $(binfmt_state)"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
  esac
}

main "$@"
