#!/usr/bin/env bash
# A throwaway single-node SLURM cluster on this host, for the SLURM integration test.
#
#   start_slurm.sh start   install slurm-wlm + munge if missing (apt-get), write
#                          /etc/slurm/slurm.conf for this host, start munged, slurmctld
#                          and slurmd, wait until `sinfo` shows the node idle
#   start_slurm.sh stop    stop the daemons this script started (by their pid files)
#   start_slurm.sh status  sinfo + squeue
#
# No accounting database (accounting_storage/none): job status comes from squeue, so
# MinJobAge is long enough for finished jobs to stay visible to the executor plugin.
# Needs root. Exit codes of `start`: 0 ready, 3 not root, 4 install failed, 5 a daemon
# did not start (or a SLURM controller this script did not start is up), 6 the node never
# became idle (details on stderr and in the logs under
# $FEDDIFF_SLURM_STATE, default /run/feddiff-slurm).
set -uo pipefail

STATE=${FEDDIFF_SLURM_STATE:-/run/feddiff-slurm}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# written by feddiff tests/slurm/start_slurm.sh"

log() { echo "start_slurm: $*" >&2; }

install_if_missing() {
    local need=()
    for exe in munged slurmctld slurmd sinfo sbatch squeue scontrol; do
        command -v "$exe" >/dev/null 2>&1 || need+=("$exe")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    log "missing ${need[*]}; installing slurm-wlm munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$STATE/apt.log" 2>&1 || { log "apt-get update failed (see $STATE/apt.log)"; return 1; }
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >>"$STATE/apt.log" 2>&1 \
        || { log "apt-get install slurm-wlm munge failed (see $STATE/apt.log)"; return 1; }
}

write_conf() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    [ "$cpus" -lt 2 ] && cpus=2  # rules ask for up to 2 threads; config_overrides allows it
    # RealMemory: what the host has, less a margin for the daemons and the submitting
    # snakemake (a node configured with more than it has would be drained).
    mem=$(free -m | awk '/^Mem:/ {print $2}')
    mem=$((mem - mem / 10 - 512))
    [ "$mem" -lt 1000 ] && mem=1000
    if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        cp -p "$CONF" "$STATE/slurm.conf.orig"
    fi
    mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    cat >"$CONF" <<EOF
$MARK
ClusterName=feddiff-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# finished jobs stay visible to squeue (the executor's status source) for 10 minutes
MinJobAge=600
SlurmdParameters=config_overrides
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    log "wrote $CONF (node $host, CPUs=$cpus, RealMemory=$mem)"
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        log "munged already answers; using it"
        return 0
    fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
    [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /run/munge /var/lib/munge /var/log/munge /etc/munge /etc/munge/munge.key
    chmod 0700 /etc/munge /var/log/munge
    chmod 0400 /etc/munge/munge.key
    chmod 0755 /run/munge
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid \
        >"$STATE/munged.out" 2>&1 || { log "munged failed: $(cat "$STATE/munged.out")"; return 1; }
    cp /run/munge/munged.pid "$STATE/munged.pid"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    log "munged does not answer"
    return 1
}

start() {
    [ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 3; }
    mkdir -p "$STATE"
    install_if_missing || exit 4
    if alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid"; then
        log "already running"
    else
        if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF" && scontrol ping 2>/dev/null | grep -q "is UP"; then
            log "a SLURM controller this script did not start is running ($CONF); leaving it alone"
            exit 5
        fi
        write_conf
        start_munge || exit 5
        # -c: a clean start (no saved jobs or node state from an earlier run)
        slurmctld -c >"$STATE/slurmctld.out" 2>&1 || { log "slurmctld failed: $(tail -5 "$STATE/slurmctld.log" 2>/dev/null) $(cat "$STATE/slurmctld.out")"; exit 5; }
        slurmd >"$STATE/slurmd.out" 2>&1 || { log "slurmd failed: $(tail -5 "$STATE/slurmd.log" 2>/dev/null) $(cat "$STATE/slurmd.out")"; exit 5; }
    fi
    local host state
    host=$(hostname -s)
    for _ in $(seq 60); do
        state=$(sinfo -h -N -n "$host" -o %t 2>/dev/null | head -1)
        case "$state" in
            idle*) log "node $host idle"; sinfo >&2; return 0 ;;
            down*|drain*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 ;;
        esac
        sleep 0.5
    done
    log "node $host not idle (state '${state:-none}'); slurmctld log tail:"
    tail -20 "$STATE/slurmctld.log" >&2 2>/dev/null
    tail -20 "$STATE/slurmd.log" >&2 2>/dev/null
    exit 6
}

stop_pid() {
    local name=$1 pidfile=$2 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        log "stopped $name ($pid)"
    fi
    rm -f "$pidfile"
}

stop() {
    # cancel what is left on our throwaway cluster (only if its controller is ours)
    if alive "$STATE/slurmctld.pid"; then
        squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null
        for _ in $(seq 25); do [ -z "$(squeue -h -t R,CG -o %i 2>/dev/null)" ] && break; sleep 0.2; done
    fi
    stop_pid slurmd "$STATE/slurmd.pid"
    stop_pid slurmctld "$STATE/slurmctld.pid"
    stop_pid munged "$STATE/munged.pid"
    if [ -f "$STATE/slurm.conf.orig" ]; then
        cp -p "$STATE/slurm.conf.orig" "$CONF" && rm -f "$STATE/slurm.conf.orig"
    elif [ -f "$CONF" ] && grep -qF "$MARK" "$CONF"; then
        # ours, with no host config before it: remove it. Left behind, it makes every later
        # `scontrol` (which the SLURM executor plugin runs whenever Snakemake loads it, even
        # for local runs) wait about 9 s for a controller that is gone.
        rm -f "$CONF"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) sinfo; squeue ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
