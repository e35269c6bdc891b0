# Paths and helpers shared by up.sh and down.sh (sourced, not run).
state_dir=/var/lib/kran
run_dir=/run/kran
log_dir=/var/log/kran
# The local registry: Debian's docker-registry, the cluster's docker.io mirror.
registry_dir=$state_dir/registry
registry_addr=${KRAN_REGISTRY_ADDR:-127.0.0.1:5000}
# Loopback only: the API has no authentication yet, and it runs as root.
controller_addr=127.0.0.1:7640

# program NAME: the program up.sh starts for NAME.
program() {
    case $1 in
        registry) echo docker-registry ;;
        *) echo "kran-$1" ;;
    esac
}

# running NAME: true when the pid in NAME's pid file is a live $(program NAME)
# (a pid reused by some other program does not count).
running() {
    local pidfile=$run_dir/$1.pid pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$(program "$1") "* ]]
}
