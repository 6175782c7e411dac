#!/usr/bin/env bash
# stop_cluster.sh - stop what tests/slurm/start_cluster.sh started, by recorded PID only.
#
# Cancels the jobs still in the queue, then stops slurmd and slurmctld (and munged when
# start_cluster.sh started it) with SIGTERM, waiting at most 10 s for each. Packages and
# /etc/slurm stay, so the next start takes about a second. Safe to run when nothing runs.
# Environment: FRAMESIFT_SLURM_DIR as for start_cluster.sh (/tmp/framesift-slurm).
set -euo pipefail

RUN=${FRAMESIFT_SLURM_DIR:-/tmp/framesift-slurm}
status=0

running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pid() { # stop_pid <name> <pidfile>
    local name=$1 pidfile=$2 pid
    if ! running "$pidfile"; then
        echo "stop_cluster: $name is not running"
        return 0
    fi
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "stop_cluster: stopped $name (pid $pid)"
            return 0
        fi
        sleep 0.2
    done
    echo "stop_cluster: $name (pid $pid) still runs after 10 s" >&2
    status=1
}

if running "$RUN/slurmctld.pid" && command -v scancel >/dev/null; then
    # no job step may outlive its slurmd; squeue --me needs Slurm >= 20.11
    if [[ -n $(timeout 10 squeue --me -h -o %i 2>/dev/null || true) ]]; then
        echo "stop_cluster: cancelling queued jobs"
        timeout 10 scancel --me 2>/dev/null || true
        for _ in $(seq 50); do
            [[ -z $(timeout 10 squeue --me -h -t PD,R,CG -o %i 2>/dev/null || true) ]] && break
            sleep 0.2
        done
    fi
fi
stop_pid slurmd "$RUN/slurmd.pid"
stop_pid slurmctld "$RUN/slurmctld.pid"
if [[ -e $RUN/munged.pid ]]; then
    stop_pid munged "$RUN/munged.pid"
    running "$RUN/munged.pid" || rm -f "$RUN/munged.pid"
fi
exit "$status"
