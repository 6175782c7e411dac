#!/usr/bin/env bash
# start_cluster.sh - start a throw-away single-node SLURM cluster for framesift's tests.
#
# For a CI machine (Debian 12, root): installs the Debian packages slurmctld, slurmd,
# slurm-client and munge when they are missing, writes /etc/slurm/slurm.conf and
# gres.conf for ONE node on 127.0.0.1 (the partition "debug", fake GPUs backed by
# /dev/null, ...), starts munged, slurmctld and slurmd, and waits until the node is idle.
# Running it again is harmless: daemons that already run with the same config are kept.
# Stop everything with tests/slurm/stop_cluster.sh (by the PIDs recorded here).
#
# Exit status: 0 = cluster up; 77 = this machine cannot run it (not root, no apt-get,
# or a SLURM configuration that this script did not write: it never touches one);
# anything else = it should have worked and did not (messages on stderr).
#
# Environment:
#   FRAMESIFT_SLURM_DIR   state, spool, logs and PID files     (/tmp/framesift-slurm)
#   FRAMESIFT_SLURM_CPUS  CPUs the node advertises             (max(nproc, 16))
#   FRAMESIFT_SLURM_GPUS  fake GPUs on the node, 1..5           (2)
#   FRAMESIFT_SLURM_MEM   memory the node advertises, MB       (65536)
# The node may advertise more CPUs and memory than the machine has (config_overrides,
# no cgroups): the project profile's requests then fit, and nothing enforces them.
#
# Why /etc/slurm: the jobstep executor removes every SLURM_* variable (SLURM_CONF too)
# before it calls srun inside a job, so the config must be at the default path.
set -euo pipefail

RUN=${FRAMESIFT_SLURM_DIR:-/tmp/framesift-slurm}
CONF_DIR=/etc/slurm
MARKER="# framesift-test-cluster: written by tests/slurm/start_cluster.sh"
NPROC=$(nproc)
CPUS=${FRAMESIFT_SLURM_CPUS:-$((NPROC > 16 ? NPROC : 16))}
NGPU=${FRAMESIFT_SLURM_GPUS:-2}
MEM=${FRAMESIFT_SLURM_MEM:-65536}
FAKE_GPU_FILES=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom)

started=$(date +%s)
say() { printf '[start_cluster +%ss] %s\n' "$(($(date +%s) - started))" "$*"; }
fail() { printf 'start_cluster: %s\n' "$*" >&2; exit 1; }
unsupported() { printf 'start_cluster: cannot run here: %s\n' "$*" >&2; exit 77; }

# running <pidfile>: the PID in the file is a live process
running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pid <pidfile>: TERM the process, wait at most 10 s for it to go
stop_pid() {
    running "$1" || return 0
    local pid
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    fail "process $pid ($1) did not stop within 10 s"
}

# retry <tries> <command...>: run the command every 0.2 s until it succeeds
retry() {
    local tries=$1
    shift
    for _ in $(seq "$tries"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

# ---------------------------------------------------------------- can this machine do it?
[[ $(id -u) == 0 ]] || unsupported "needs root (installs packages, writes $CONF_DIR, starts daemons)"
[[ $NGPU =~ ^[1-5]$ ]] || fail "FRAMESIFT_SLURM_GPUS must be 1..5, not '$NGPU'"
[[ $CPUS =~ ^[0-9]+$ && $MEM =~ ^[0-9]+$ ]] || fail "FRAMESIFT_SLURM_CPUS/MEM must be integers"
for conf in "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"; do
    if [[ -e $conf ]] && ! grep -qxF "$MARKER" "$conf"; then
        unsupported "$conf exists and was not written by this script; refusing to replace a real SLURM setup"
    fi
done

mkdir -p "$RUN/state" "$RUN/spool" "$RUN/log"

# ---------------------------------------------------------------- packages
missing=()
command -v slurmctld >/dev/null || missing+=(slurmctld)
command -v slurmd >/dev/null || missing+=(slurmd)
command -v sbatch >/dev/null || missing+=(slurm-client)
command -v munged >/dev/null || missing+=(munge)
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || unsupported "missing ${missing[*]} and no apt-get to install them"
    say "installing ${missing[*]} (apt-get)"
    # Keep the packages' init scripts from starting daemons with their default config:
    # a temporary policy-rc.d (only when the machine has none) answers "not allowed".
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        own_policy=1
        trap 'rm -f "$policy"' EXIT
    fi
    apt_log=$RUN/log/apt.log
    apt_install() {
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get -o DPkg::Lock::Timeout=120 \
            install -y -q --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1
    }
    if ! apt_install; then
        say "apt-get install failed; running apt-get update and trying again"
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get -q update >>"$apt_log" 2>&1 || true
        apt_install || {
            tail -20 "$apt_log" >&2
            fail "apt-get install ${missing[*]} failed (log: $apt_log)"
        }
    fi
    if ((own_policy)); then
        rm -f "$policy"
        trap - EXIT
    fi
fi

# ---------------------------------------------------------------- munge (authentication)
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    mungekey --create --keyfile /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged
    retry 50 munge_ok || fail "munged does not answer within 10 s (see /var/log/munge/munged.log)"
    # remember that munged is ours, so that stop_cluster.sh stops it too
    cp /run/munge/munged.pid "$RUN/munged.pid"
fi
say "munge works"

# ---------------------------------------------------------------- configuration
host=$(hostname -s)
new_conf=$(mktemp)
new_gres=$(mktemp)
trap 'rm -f "$new_conf" "$new_gres"' EXIT
cat >"$new_conf" <<EOF
$MARKER
# One node on 127.0.0.1 for tests: no accounting database (sacct does not work, so
# Snakemake must use --slurm-status-command squeue), no cgroups, fake GPUs.
ClusterName=framesift-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
# trust CPUs/RealMemory below rather than the hardware
SlurmdParameters=config_overrides
GresTypes=gpu
ReturnToService=2
# Finished jobs stay visible to squeue this long (there is no sacct here): the
# plugin's squeue status mode needs MinJobAge >= 3 x its first status check delay,
# and the tests read the final state of every job of a run from squeue.
MinJobAge=3600
KillWait=5
StateSaveLocation=$RUN/state
SlurmdSpoolDir=$RUN/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$RUN/log/slurmctld.log
SlurmdLogFile=$RUN/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$CPUS Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$MEM Gres=gpu:$NGPU State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
{
    echo "$MARKER"
    echo "# fake GPUs: slurmd drops a GPU without File= and drains the node"
    for ((i = 0; i < NGPU; i++)); do
        echo "NodeName=$host Name=gpu File=${FAKE_GPU_FILES[$i]}"
    done
} >"$new_gres"
mkdir -p "$CONF_DIR"
changed=0
cmp -s "$new_conf" "$CONF_DIR/slurm.conf" || { install -m 0644 "$new_conf" "$CONF_DIR/slurm.conf"; changed=1; }
cmp -s "$new_gres" "$CONF_DIR/gres.conf" || { install -m 0644 "$new_gres" "$CONF_DIR/gres.conf"; changed=1; }
rm -f "$new_conf" "$new_gres"
trap - EXIT
if ((changed)); then
    say "wrote $CONF_DIR/slurm.conf and gres.conf (node $host: $CPUS CPUs, ${MEM} MB, $NGPU fake GPUs)"
    stop_pid "$RUN/slurmd.pid"
    stop_pid "$RUN/slurmctld.pid"
fi

# ---------------------------------------------------------------- daemons
if ! running "$RUN/slurmctld.pid"; then
    pgrep -x slurmctld >/dev/null && fail "a slurmctld not started by this script is running; stop it first"
    say "starting slurmctld"
    slurmctld -c # -c: forget any job state of an earlier run
fi
retry 100 sh -c 'scontrol ping | grep -q UP' || {
    tail -20 "$RUN/log/slurmctld.log" >&2
    fail "slurmctld did not come up within 20 s (log: $RUN/log/slurmctld.log)"
}
if ! running "$RUN/slurmd.pid"; then
    pgrep -x slurmd >/dev/null && fail "a slurmd not started by this script is running; stop it first"
    say "starting slurmd"
    slurmd
fi

state=unknown
for i in $(seq 150); do
    state=$(sinfo -h -n "$host" -o '%T' 2>/dev/null || echo unknown)
    case $state in
    idle* | mixed* | allocated*) break ;;
    *drain* | down* | *inval*)
        # ReturnToService=2 usually brings it back; nudge it now and then
        if ((i % 10 == 1)); then
            scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
        fi
        ;;
    esac
    sleep 0.2
done
case $state in
idle* | mixed* | allocated*) ;;
*)
    scontrol show node "$host" >&2 || true
    tail -20 "$RUN/log/slurmd.log" >&2 || true
    fail "node $host is '$state' after 30 s (log: $RUN/log/slurmd.log)"
    ;;
esac
say "cluster up: slurmctld pid $(cat "$RUN/slurmctld.pid"), slurmd pid $(cat "$RUN/slurmd.pid"), node $host $state"
sinfo -N -o '%N %P %T cpus=%c mem=%m gres=%G'
