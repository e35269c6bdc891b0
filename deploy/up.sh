#!/usr/bin/env bash
# Start a one-host kran cluster in the background: a local registry (Debian's
# docker-registry), kran-controller (with its embedded etcd) and one
# kran-agent that takes docker.io images from that registry (its mirror); put
# busybox and hello-world in the registry, and run hello-world, pulled from
# it when the node does not have it. Run through `make up`, which installs
# everything first. Running it again while the cluster is up starts nothing new.
#
# Environment (set by the Makefile):
#   KRAN_VENV           the virtualenv kran is installed in
#   KRAN_IMAGES_DIR     where busybox.tar and hello-world.tar were built
# and, optionally:
#   KRAN_REGISTRY_ADDR  where the registry listens (default 127.0.0.1:5000)
set -euo pipefail

venv=${KRAN_VENV:?KRAN_VENV is not set; run make up}
images_dir=${KRAN_IMAGES_DIR:?KRAN_IMAGES_DIR is not set; run make up}
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
controller_metrics=127.0.0.1:9640
agent_addr=127.0.0.1:7641
agent_metrics=127.0.0.1:9641
ready_timeout=${KRAN_READY_TIMEOUT:-60}
kran=$venv/bin/kran
export KRAN_HOST=$controller_addr

if [ "$(id -u)" != 0 ]; then
    echo "make up must run as root: the agent mounts layers and, later, runs containers" >&2
    exit 1
fi
mkdir -p "$state_dir" "$run_dir" "$log_dir" "$registry_dir"

# start NAME PROGRAM ARGS...: start PROGRAM detached (own session, so it
# outlives make and a Ctrl-C), logging to $log_dir/NAME.log, its pid in
# $run_dir/NAME.pid.
start() {
    local name=$1 path=$2
    shift 2
    if running "$name"; then
        echo "$(program "$name") is already running (pid $(cat "$run_dir/$name.pid"))"
        return
    fi
    echo "starting $(program "$name") (log $log_dir/$name.log)"
    # A background job of a non-interactive shell is not a group leader, so
    # setsid execs in place and $! is the program's own pid.
    setsid "$path" "$@" >>"$log_dir/$name.log" 2>&1 </dev/null &
    echo $! >"$run_dir/$name.pid"
}

fail() {
    echo "make up: $*" >&2
    for name in registry controller agent; do
        echo "--- last lines of $log_dir/$name.log ---" >&2
        tail -n 20 "$log_dir/$name.log" >&2 2>/dev/null || true
    done
    echo "(run 'make down' to stop what was started)" >&2
    exit 1
}

# The registry keeps its repositories under $registry_dir/docker; its config
# is written anew at each start, from KRAN_REGISTRY_ADDR.
registry_config=$registry_dir/config.yml
registry_url=http://$registry_addr
manifest_types="application/vnd.oci.image.manifest.v1+json"
manifest_types+=",application/vnd.docker.distribution.manifest.v2+json"

registry_answers() {
    curl -fsS -o /dev/null --max-time 2 "$registry_url/v2/" 2>/dev/null
}

if ! running registry; then
    if (exec 3<>"/dev/tcp/${registry_addr%:*}/${registry_addr##*:}") 2>/dev/null; then
        fail "$registry_addr is in use by another program; free it, or choose another" \
            "address: KRAN_REGISTRY_ADDR=HOST:PORT make up"
    fi
    cat >"$registry_config" <<EOF
# Written by make up (deploy/up.sh) at each start; KRAN_REGISTRY_ADDR sets the address.
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $registry_dir
  delete:
    enabled: true
http:
  addr: $registry_addr
  headers:
    X-Content-Type-Options: [nosniff]
EOF
fi
start registry "$(command -v docker-registry)" serve "$registry_config"
start controller "$venv/bin/kran-controller" --listen "$controller_addr" \
    --metrics-addr "$controller_metrics" --state-dir "$state_dir"
start agent "$venv/bin/kran-agent" --controller "$controller_addr" --listen "$agent_addr" \
    --advertise-addr "$agent_addr" --metrics-addr "$agent_metrics" --state-dir "$state_dir" \
    --registry-mirror "$registry_url" --insecure-registry "$registry_addr"

echo -n "waiting for the registry at $registry_addr"
deadline=$((SECONDS + ready_timeout))
until registry_answers; do
    running registry || { echo; fail "docker-registry exited"; }
    [ "$SECONDS" -lt "$deadline" ] || { echo; fail "the registry does not answer after ${ready_timeout}s"; }
    echo -n .
    sleep 0.5
done
echo " ok"

echo -n "waiting for the node to be Ready"
deadline=$((SECONDS + ready_timeout))
node_ready() {
    local nodes
    nodes=$("$kran" node ls 2>/dev/null) && grep -qw Ready <<<"$nodes"
}
until node_ready; do
    for name in controller agent; do
        running "$name" || { echo; fail "$(program "$name") exited"; }
    done
    [ "$SECONDS" -lt "$deadline" ] || { echo; fail "the node is not Ready after ${ready_timeout}s"; }
    echo -n .
    sleep 1
done
echo " ok"

# seed NAME TARBALL CMD: put NAME:latest in the registry as library/NAME,
# where docker.io's official images live, so that the mirror serves it as
# docker.io/library/NAME. It goes up from the node's NAME:latest if there is
# one, else from the tarball; the registry's name is dropped from the node
# again afterwards. A registry that has it already is left as it is.
seed() {
    local name=$1 target=$registry_addr/library/$1:latest
    if curl -fsS -o /dev/null -I -H "Accept: $manifest_types" \
            "$registry_url/v2/library/$name/manifests/latest" 2>/dev/null; then
        echo "$name is in the registry (library/$name:latest)"
        return
    fi
    if "$kran" image inspect "$name:latest" >/dev/null 2>&1; then
        "$kran" tag "$name:latest" "$target" || fail "tagging $name failed"
    else
        "$kran" import "$2" "$target" -c "CMD $3" >/dev/null || fail "importing $name failed"
    fi
    echo "\$ kran push $target"
    "$kran" push "$target" || fail "pushing $name to the registry failed"
    "$kran" rmi "$target" >/dev/null || fail "removing $target failed"
}
seed busybox "$images_dir/busybox.tar" '["sh"]'
seed hello-world "$images_dir/hello-world.tar" '["/hello"]'

if ! "$kran" image inspect busybox:latest >/dev/null 2>&1; then
    echo "\$ kran pull busybox"
    "$kran" pull busybox || fail "pulling busybox from the registry failed"
fi

# Put kran on PATH through a symlink, unless something else already owns the name.
link=/usr/local/bin/kran
if [ ! -e "$link" ] || [ "$(readlink -f "$link")" = "$(readlink -f "$kran")" ]; then
    ln -sfn "$kran" "$link"
    path_note="kran is on your PATH: $link -> $kran"
else
    path_note="$link belongs to something else; put kran on your PATH with:
    export PATH=$venv/bin:\$PATH"
fi

# Proof of life: one container through the whole path, CLI -> controller ->
# agent -> runtime, its output streamed back (it stays in `kran ps -a`). On a
# node without hello-world it is first pulled from the mirror, with
# docker's "Unable to find image 'hello-world:latest' locally" and progress.
echo
echo "\$ kran run hello-world"
"$kran" run hello-world || fail "kran run hello-world failed"

cat <<EOF

kran is up: controller $controller_addr (metrics $controller_metrics),
agent $agent_addr (metrics $agent_metrics), state in $state_dir,
registry $registry_addr (docker.io's mirror; data in $registry_dir),
logs in $log_dir/{registry,controller,agent}.log, pid files in $run_dir.
$path_note

Try:
    kran run busybox echo "hello from busybox"
    kran run -it busybox sh
    kran ps -a
    kran images
    kran node ls
    kran pull hello-world                      # docker.io's, from the registry
    kran tag busybox $registry_addr/mybox:1 && kran push $registry_addr/mybox:1

Stop it all with 'make down' (images and the registry's data stay in $state_dir).
EOF
