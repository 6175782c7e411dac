"""Which process owns a run's detection workers (docs/worker.md, "Lifetime").

The run's owner is a Snakemake process: ``rules/common.smk`` claims the run at parse time
(:func:`claim_run`) and exports the claim in ``FRAMESIFT_RUN_OWNER``, which every job inherits.
A worker follows its owner (:func:`alive`, with the start time so a reused pid does not count)
and exits when it ends. Light on purpose: the client, the worker and the workflow import it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

RUN_OWNER_ENV = "FRAMESIFT_RUN_OWNER"  # host:pid:start time:SLURM job id of the run's owner


def host_name() -> str:
    """This machine's short name, safe in a file name (nodes sharing a file system differ)."""
    name = socket.gethostname().split(".")[0] or "host"
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:24]


def start_time(pid: int) -> str:
    """A process's start time from /proc (tells a reused pid apart); '' if unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(pid: int, started: str = "") -> bool:
    """Whether process ``pid`` (started at ``started``, if given) still runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not started or start_time(pid) == started


def claim_run() -> bool:
    """Make this Snakemake process the owner of the workers its jobs start (rules/common.smk
    calls this at parse time), unless a live Snakemake process on this machine and in this
    SLURM job (if any) already is; whether it now owns the run.

    So a local run's workers follow the main process, and in a SLURM job the job's own
    Snakemake (the group job's, in its batch step) owns them, not the per-job Snakemake
    processes it starts for each job (srun): one worker serves the whole group. A claim
    inherited from another machine or from outside the SLURM job (the submitting Snakemake's,
    through ``sbatch --export=ALL``) is replaced.
    """
    owner = _owner_from_env()
    if owner is not None and alive(*owner):
        return False
    pid = os.getpid()
    os.environ[RUN_OWNER_ENV] = f"{host_name()}:{pid}:{start_time(pid)}:{_slurm_job()}"
    return True


def run_pid() -> int | None:
    """The Snakemake process that owns this job's workers (None outside a run)."""
    owner = _owner_from_env()
    return owner[0] if owner is not None else None


def _slurm_job() -> str:
    """The SLURM job this process runs in ('' outside SLURM)."""
    return os.environ.get("SLURM_JOB_ID", "")


def _owner_from_env() -> tuple[int, str] | None:
    """(pid, start time) of the run's owner when it is on this machine and in this SLURM job."""
    host, pid, started, job = (os.environ.get(RUN_OWNER_ENV, "").split(":") + [""] * 4)[:4]
    if host != host_name() or not pid.isdigit() or job != _slurm_job():
        return None
    return int(pid), started
