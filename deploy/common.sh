# Paths and helpers shared by up.sh and down.sh (sourced, not run).
state_dir=/var/lib/kran
run_dir=/run/kran
log_dir=/var/log/kran

# running NAME: true when the pid in NAME's pid file is a live kran-NAME
# (a pid reused by some other program does not count).
running() {
    local pidfile=$run_dir/$1.pid pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"kran-$1 "* ]]
}
