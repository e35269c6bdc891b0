#!/usr/bin/env bash
# Start a one-host kran cluster in the background: kran-controller (with its
# embedded etcd) and one kran-agent, then import the busybox and hello-world
# images. Run through `make up`, which installs everything first. Running it
# again while the cluster is up starts nothing new.
#
# Environment (set by the Makefile):
#   KRAN_VENV        the virtualenv kran is installed in
#   KRAN_IMAGES_DIR  where busybox.tar and hello-world.tar were built
set -euo pipefail

venv=${KRAN_VENV:?KRAN_VENV is not set; run make up}
images_dir=${KRAN_IMAGES_DIR:?KRAN_IMAGES_DIR is not set; run make up}
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# Loopback only: the API has no authentication yet, and it runs as root.
controller_addr=127.0.0.1:7640
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
mkdir -p "$state_dir" "$run_dir" "$log_dir"

# start NAME ARGS...: start kran-NAME detached (own session, so it outlives
# make and a Ctrl-C), logging to $log_dir/NAME.log, its pid in $run_dir/NAME.pid.
start() {
    local name=$1
    shift
    if running "$name"; then
        echo "kran-$name is already running (pid $(cat "$run_dir/$name.pid"))"
        return
    fi
    echo "starting kran-$name (log $log_dir/$name.log)"
    # A background job of a non-interactive shell is not a group leader, so
    # setsid execs in place and $! is kran-NAME's own pid.
    setsid "$venv/bin/kran-$name" "$@" >>"$log_dir/$name.log" 2>&1 </dev/null &
    echo $! >"$run_dir/$name.pid"
}

fail() {
    echo "make up: $*" >&2
    for name in controller agent; do
        echo "--- last lines of $log_dir/$name.log ---" >&2
        tail -n 20 "$log_dir/$name.log" >&2 2>/dev/null || true
    done
    echo "(run 'make down' to stop what was started)" >&2
    exit 1
}

start controller --listen "$controller_addr" --metrics-addr "$controller_metrics" \
    --state-dir "$state_dir"
start agent --controller "$controller_addr" --listen "$agent_addr" \
    --advertise-addr "$agent_addr" --metrics-addr "$agent_metrics" --state-dir "$state_dir"

echo -n "waiting for the node to be Ready"
deadline=$((SECONDS + ready_timeout))
node_ready() {
    local nodes
    nodes=$("$kran" node ls 2>/dev/null) && grep -qw Ready <<<"$nodes"
}
until node_ready; do
    for name in controller agent; do
        running "$name" || { echo; fail "kran-$name exited"; }
    done
    [ "$SECONDS" -lt "$deadline" ] || { echo; fail "the node is not Ready after ${ready_timeout}s"; }
    echo -n .
    sleep 1
done
echo " ok"

# import_image NAME:TAG TARBALL CMD: import unless NAME:TAG is already there,
# since each import stamps a new creation time and so a new image id.
import_image() {
    if "$kran" image inspect "$1" >/dev/null 2>&1; then
        echo "$1 is already present (kran rmi $1, then make up, to import it again)"
        return
    fi
    echo -n "importing $1: "
    "$kran" import "$2" "$1" -c "CMD $3" || fail "importing $1 failed"
}
import_image busybox:latest "$images_dir/busybox.tar" '["sh"]'
import_image hello-world:latest "$images_dir/hello-world.tar" '["/hello"]'

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
# agent -> runtime, its output streamed back (it stays in `kran ps -a`).
echo
echo "\$ kran run hello-world"
"$kran" run hello-world || fail "kran run hello-world failed"

cat <<EOF

kran is up: controller $controller_addr (metrics $controller_metrics),
agent $agent_addr (metrics $agent_metrics), state in $state_dir,
logs in $log_dir/{controller,agent}.log, pid files in $run_dir.
$path_note

Try:
    kran run busybox echo "hello from busybox"
    kran run -it busybox sh
    kran ps -a
    kran images
    kran node ls

Stop it all with 'make down' (images stay in $state_dir).
EOF
