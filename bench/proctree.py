"""CPU time of every process a measured run starts, detached ones included (Linux).

``getrusage(RUSAGE_CHILDREN)`` counts only descendants that were waited for. framesift's
detection worker is started with ``start_new_session`` by a job that exits at once, so it is
reparented and reaped elsewhere (init), and its CPU time (model load, warm-up, inference,
hashing) never reaches the benchmark. Here the benchmark process becomes a *child subreaper*
(``prctl(PR_SET_CHILD_SUBREAPER)``): orphaned descendants are reparented to it instead.
:func:`run_counted` runs a command and then waits, bounded by ``reap_timeout``, until every
descendant that outlived it has exited and been reaped here (the worker exits within about
half a second of its run's Snakemake process), so their CPU time is in ``RUSAGE_CHILDREN``. A
descendant still running at the deadline is stopped and :class:`UnreapedDescendants` raised.

:func:`slurm_stall_note` says when every Snakemake start here stalls on an unanswered SLURM
controller. Run this file (or ``bench_pipeline.py --selfcheck``) for the self-check: a detached
grandchild burning known CPU, counted with the helper and missed by plain ``RUSAGE_CHILDREN``.

    python bench/proctree.py
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
REAP_TIMEOUT = 60.0  # seconds a run's leftover descendants get to exit (the worker: ~0.5 s)
POLL = 0.05
SELFCHECK_CPU = 1.0  # CPU seconds the self-check's detached grandchild burns


class UnreapedDescendants(RuntimeError):
    """A measured run left descendants running past the deadline (they were stopped)."""


@dataclass
class Counted:
    """One measured run of a command."""

    returncode: int
    wall: float  # seconds until the command exited
    cpu: float  # user + sys of the command and every descendant, adopted ones included
    cpu_waited: float  # the same from plain RUSAGE_CHILDREN at exit: waited-for ones only
    adopted: int  # descendants that outlived the command, reaped here
    settle: float  # seconds waited after the command exited for them to exit
    stdout: str | None = None
    stderr: str | None = None


def _prctl(option: int, value: int = 0) -> int:
    if not sys.platform.startswith("linux"):
        raise RuntimeError("counting detached descendants needs Linux (PR_SET_CHILD_SUBREAPER)")
    libc = ctypes.CDLL(None, use_errno=True)
    flag = ctypes.c_int(0)
    arg = ctypes.addressof(flag) if option == PR_GET_CHILD_SUBREAPER else value
    if libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl({option}): {os.strerror(errno)}")
    return flag.value


def set_subreaper(on: bool = True) -> None:
    """Make this process (not its children) the reaper of its orphaned descendants, or not."""
    _prctl(PR_SET_CHILD_SUBREAPER, int(on))


def is_subreaper() -> bool:
    """Whether this process is a child subreaper."""
    return bool(_prctl(PR_GET_CHILD_SUBREAPER))


def children_cpu() -> float:
    """User + sys seconds of every child this process has waited for (``RUSAGE_CHILDREN``)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_pids() -> set[int]:
    """Processes whose parent is this process, zombies included (from /proc)."""
    me, found = os.getpid(), set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.add(int(entry.name))
    return found


def describe(pid: int) -> str:
    """``pid (command line)``, shortened."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        raw = b""
    words = raw.decode(errors="replace").split("\0")
    return f"{pid} ({_short(words) or '?'})"


def _reap(pids: set[int]) -> int:
    """Reap those of ``pids`` that have exited; how many."""
    reaped = 0
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        reaped += done == pid
    return reaped


def _stop(known: set[int]) -> None:
    """SIGTERM, then SIGKILL, every child not in ``known`` (and those adopted meanwhile)."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        deadline = time.monotonic() + grace
        while (pending := child_pids() - known) and time.monotonic() < deadline:
            for pid in pending:
                with contextlib.suppress(ProcessLookupError):  # a child: not reaped, not reused
                    os.kill(pid, sig)
            _reap(pending)
            time.sleep(POLL)


def reap_adopted(known: set[int], timeout: float = REAP_TIMEOUT, what: str = "") -> int:
    """Wait until every child of this process not in ``known`` has exited and been reaped.

    Repeats until none is left: when an adopted process exits, its own orphans are adopted
    next. Returns how many were reaped. At the deadline the rest are stopped and
    :class:`UnreapedDescendants` is raised.
    """
    deadline = time.monotonic() + timeout
    reaped = 0
    while pending := child_pids() - known:
        reaped += _reap(pending)
        if not child_pids() - known:
            break
        if time.monotonic() >= deadline:
            left = sorted(child_pids() - known)
            names = "; ".join(describe(pid) for pid in left)
            _stop(known)
            raise UnreapedDescendants(
                f"{what or 'a measured run'} left {len(left)} descendant(s) running "
                f"{timeout:g} s after it exited (stopped now; its CPU time would be "
                f"incomplete): {names}"
            )
        time.sleep(POLL)
    return reaped


def run_counted(
    command: list[str], *, reap_timeout: float = REAP_TIMEOUT, **kwargs: Any
) -> Counted:
    """Run ``command`` (``subprocess.run`` keyword arguments) and count the CPU of its tree.

    This process becomes a child subreaper first, so descendants that outlive their parents
    (a detached worker) are adopted here; after ``command`` exits, they are waited for (at
    most ``reap_timeout`` s, see :func:`reap_adopted`) before ``RUSAGE_CHILDREN`` is read.
    """
    set_subreaper(True)
    known = child_pids()  # children this process had before (none of the run's)
    before = children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(command, check=False, **kwargs)
    wall = time.perf_counter() - started
    waited = children_cpu() - before
    adopted = reap_adopted(known, reap_timeout, what=f"`{_short(command)}`")
    settle = time.perf_counter() - started - wall
    cpu = children_cpu() - before
    return Counted(proc.returncode, wall, cpu, waited, adopted, settle, proc.stdout, proc.stderr)


def _short(command: list[str], limit: int = 120) -> str:
    """``command`` on one line, whitespace collapsed, at most ``limit`` characters."""
    text = " ".join(" ".join(map(str, command)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def slurm_stall_note(timeout: float = 10.0) -> str | None:
    """A note when SLURM's client tools are installed but no controller answers, else None.

    The SLURM executor plugin runs ``scontrol show config`` (10 s timeout) whenever Snakemake
    loads it, which it does at every start once ``sinfo`` is on the PATH: then every Snakemake
    start here waits for it, and the framesift times include that wait.
    """
    if shutil.which("sinfo") is None:
        return None
    started = time.perf_counter()
    try:
        done = subprocess.run(
            ["scontrol", "show", "config"], capture_output=True, text=True, timeout=timeout
        )
        failed = "" if done.returncode == 0 else f"exit {done.returncode}"
    except FileNotFoundError:
        return None
    except subprocess.TimeoutExpired:
        failed = f"no answer in {timeout:g} s"
    spent = time.perf_counter() - started
    if spent < 1.0:  # answered or failed at once: no stall worth a note
        return None
    why = f"failed ({failed})" if failed else "answered"
    return (
        f"NOTE: SLURM client tools are installed (sinfo) and `scontrol show config` {why} after "
        f"{spent:.1f} s: every Snakemake start here waits about that long in the SLURM "
        f"executor plugin, and the framesift wall times include it (the reference's do not). "
        f"Measure where no controller is configured or one answers."
    )


# --- self-check -------------------------------------------------------------------------------

_BURN = """
import resource, sys, time
while time.process_time() < {cpu}:
    pass
usage = resource.getrusage(resource.RUSAGE_SELF)
open(sys.argv[1], "w").write(f"{{usage.ru_utime + usage.ru_stime}}\\n")
"""
_DETACH = """
import subprocess, sys
child = subprocess.Popen(
    [sys.executable, "-c", sys.argv[1], sys.argv[2]], start_new_session=True,
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
open(sys.argv[3], "w").write(str(child.pid))
"""  # the parent exits at once; the grandchild lives on in its own session


def _detached(cpu: float, folder: Path, tag: str) -> tuple[list[str], Path, Path]:
    """The command of a parent that starts a detached grandchild burning ``cpu`` s and exits;
    the grandchild's result file (its own CPU seconds) and pid file."""
    result, pid_file = folder / f"{tag}.cpu", folder / f"{tag}.pid"
    code = _BURN.format(cpu=cpu)
    return [sys.executable, "-c", _DETACH, code, str(result), str(pid_file)], result, pid_file


def _wait_gone(pid: int, result: Path, timeout: float) -> None:
    """Wait until ``pid`` has written ``result`` and is gone or a zombie (reaped elsewhere)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            state = "gone"
        if result.exists() and state in ("gone", "Z"):
            return
        time.sleep(POLL)
    raise RuntimeError(f"the self-check's grandchild {pid} did not finish in {timeout:g} s")


def selfcheck(cpu: float = SELFCHECK_CPU) -> int:
    """Show that a detached grandchild's CPU is counted by :func:`run_counted` and missed by
    plain ``RUSAGE_CHILDREN``; 0 when so, 1 otherwise."""
    timeout = 60 + 30 * cpu
    with tempfile.TemporaryDirectory(prefix="framesift-proctree-") as tmp:
        folder = Path(tmp)
        # 1. plain RUSAGE_CHILDREN, not a subreaper: the grandchild is reaped elsewhere
        set_subreaper(False)
        command, result, pid_file = _detached(cpu, folder, "plain")
        before = children_cpu()
        subprocess.run(command, check=True)
        _wait_gone(int(pid_file.read_text()), result, timeout)
        plain = children_cpu() - before
        plain_truth = float(result.read_text())
        # 2. the helper: subreaper, the grandchild adopted and reaped here
        command, result, _ = _detached(cpu, folder, "helper")
        counted = run_counted(command, reap_timeout=timeout)
        truth = float(result.read_text())
        # 3. a descendant outliving the deadline: stopped, and the run fails loudly
        command, _, pid_file = _detached(3600, folder, "stuck")
        try:
            run_counted(command, reap_timeout=1.0)
            loud = "NOT raised"
        except UnreapedDescendants as error:
            loud = f"raised: {error}"
        stuck = int(pid_file.read_text())
        stopped = not Path(f"/proc/{stuck}").exists()
    print(f"self-check: detached grandchild (start_new_session, its parent exits at once) "
          f"burning {cpu:g} CPU-s; subreaper now: {is_subreaper()}")  # fmt: skip
    print(f"- plain RUSAGE_CHILDREN (no subreaper): {plain:.2f} CPU-s counted; the grandchild "
          f"itself used {plain_truth:.2f}")  # fmt: skip
    print(f"- run_counted: {counted.cpu:.2f} CPU-s counted ({counted.adopted} adopted and "
          f"reaped, {counted.settle:.2f} s after the parent exited); plain RUSAGE_CHILDREN at "
          f"the parent's exit in the same run: {counted.cpu_waited:.2f}; the grandchild itself "
          f"used {truth:.2f}")  # fmt: skip
    print(f"- a descendant outliving a 1 s deadline: {loud}; stopped: {stopped}")
    ok = (
        plain < 0.5 * plain_truth
        and counted.cpu >= 0.95 * truth
        and counted.cpu_waited < 0.5 * truth
        and counted.adopted >= 1
        and loud.startswith("raised")
        and stopped
    )
    print("self-check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(selfcheck())
