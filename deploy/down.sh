#!/usr/bin/env bash
# Stop the cluster `make up` started: the processes named by the pid files in
# /run/kran, nothing else. Data in /var/lib/kran (images, node id, etcd, the
# registry's repositories) stays for the next `make up`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
stop_timeout=${KRAN_STOP_TIMEOUT:-15}

# group_alive PGID: true while any process is left in process group PGID.
group_alive() {
    kill -0 -- "-$1" 2>/dev/null
}

# leftovers PGID: processes of group PGID that belong to kran (cmdline names
# kran's state directory or a kran program), as "pid args" lines.
leftovers() {
    local stat pid fields args
    for stat in /proc/[0-9]*/stat; do
        fields=$(cat "$stat" 2>/dev/null) || continue
        fields=${fields##*) }       # after "(comm) ", which may hold spaces
        read -r _ _ pgrp _ <<<"$fields"
        [ "$pgrp" = "$1" ] || continue
        pid=${stat#/proc/}; pid=${pid%/stat}
        args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
        [[ "$args" == *"$state_dir"* || "$args" == *kran-* ]] && echo "$pid $args"
    done
    return 0
}

# terminate PGID: SIGTERM, wait up to stop_timeout, then SIGKILL, for the
# whole process group PGID.
terminate() {
    local deadline=$((SECONDS + stop_timeout))
    while group_alive "$1" && [ "$SECONDS" -lt "$deadline" ]; do
        echo -n .
        sleep 0.5
    done
    if group_alive "$1"; then
        echo -n " did not stop in ${stop_timeout}s, killing"
        kill -KILL -- "-$1" 2>/dev/null || true
        while group_alive "$1"; do sleep 0.1; done
    fi
}

# stop NAME: SIGTERM $(program NAME), wait, then SIGKILL. Each was started in
# its own session by up.sh, so its process group also holds its children (the
# controller's embedded etcd), and those go too, even when the program itself
# died before them.
stop() {
    local name=$1 pidfile=$run_dir/$1.pid pid orphans prog
    prog=$(program "$1")
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if running "$name"; then
        echo -n "stopping $prog (pid $pid)"
        kill -TERM "$pid"
        terminate "$pid"
        echo " stopped"
    else
        orphans=$(leftovers "$pid")
        if [ -n "$orphans" ]; then
            echo "$prog is gone but left behind:"
            echo "$orphans" | sed 's/^/  /'
            echo -n "stopping them"
            kill -TERM -- "-$pid" 2>/dev/null || true
            terminate "$pid"
            echo " stopped"
        else
            echo "$prog is not running"
        fi
    fi
    rm -f "$pidfile"
}

# stop_containers: containers outlive their agent by design (a restarted agent
# takes them back), so taking the whole cluster down stops them first, while
# the controller and the agent are there to do it.
stop_containers() {
    local kran=${KRAN_VENV:-}/bin/kran ids
    running agent && running controller && [ -x "$kran" ] || return 0
    ids=$(KRAN_HOST=$controller_addr "$kran" ps -q) || return 0
    [ -n "$ids" ] || return 0
    echo "stopping $(wc -w <<<"$ids") running container(s)"
    # shellcheck disable=SC2086 # one id per word
    KRAN_HOST=$controller_addr "$kran" stop -t 5 $ids >/dev/null
}

stop_containers
# The agent first, so the controller and its etcd outlive its last calls;
# the registry last, so an agent's last push or pull is not cut off.
stop agent
stop controller
stop registry

# Whatever the processes left mounted under their directories (there should be
# nothing) is unmounted, deepest first, and named.
leftover=$(awk -v a="$state_dir" -v b="$run_dir" \
    '{ m = $5; gsub(/\\040/, " ", m); if (index(m, a "/") == 1 || m == a || index(m, b "/") == 1 || m == b) print m }' \
    /proc/self/mountinfo | sort -r)
if [ -n "$leftover" ]; then
    echo "unmounting what was left mounted:"
    while IFS= read -r mnt; do
        echo "  $mnt"
        umount "$mnt" 2>/dev/null || umount -l "$mnt"
    done <<<"$leftover"
fi
echo "kran is down (data kept in $state_dir, registry's in $registry_dir; 'make up' starts it again)"
