"""``framesift watch``: re-run the workflow when the URL file changes.

Pieces, each small and testable on its own:

* :class:`Watcher` - the state machine: an initial run, then debounce (run once the file has been
  quiet for ``debounce`` seconds), single flight (runs never overlap; changes during a run cause
  exactly one follow-up run) and change detection (a save that leaves the set of video ids as it
  was starts nothing). It calls a :class:`Runner` and reports one line per event.
* :class:`SnakemakeRunner` - runs ``python -m snakemake`` as a child process in its own process
  group, tells a locked working directory apart from a failure and stops the child cleanly.
* :func:`observe` - watchdog on the URL file's *directory*, so atomic saves (temp file renamed
  over the original) and delete + recreate are seen.
* :func:`plan_watch` - the Snakemake arguments and the URL file they make Snakemake read: the
  ``urls:`` of the config passed to Snakemake (``--configfile``/``--config`` among its
  arguments, else the last run's, from the run record, else ``config/config.yaml``).
* :func:`run_watch` - wires them together with a log file and SIGINT/SIGTERM handling.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from framesift.core.config import DEFAULT_CONFIGFILE, ConfigError, resolve_config
from framesift.core.layout import Layout
from framesift.core.run_record import RESULTS, read_run_record, recorded_config
from framesift.core.urls import UrlFileMissing, read_url_file
from framesift.lifecycle.records import failures_of

if TYPE_CHECKING:
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers.api import BaseObserver

DEFAULT_SNAKEMAKE_ARGS = ("--cores", "all", "--keep-going", "--rerun-incomplete")
DEFAULT_LOG = Path("logs/watch.log")
LOCK_MARKERS = ("LockException", "Directory cannot be locked")
INCOMPLETE_MARKER = "IncompleteFilesException"
CHANGE_EVENTS = frozenset({"created", "modified", "moved", "deleted", "closed"})

Report = Callable[[str], None]


def url_ids(path: str | Path) -> frozenset[str]:
    """The set of video ids the URL file names now (UrlFileMissing when there is no file)."""
    return frozenset(read_url_file(path).ids)


def count_failed(layout: Layout, urls_file: Path) -> int | None:
    """Failed videos (transient or permanent) among those the URL file names now."""
    try:
        ids = url_ids(urls_file)
    except OSError:
        return None
    return sum(1 for record in failures_of(layout, ids) if record.failed)


@dataclass(frozen=True)
class RunResult:
    """How one Snakemake attempt ended."""

    returncode: int
    locked: bool = False  # another Snakemake holds the directory lock: retry later
    stopped: bool = False  # ended because the watcher was asked to stop
    new_videos: int | None = None  # videos downloaded (or recorded as dead) by this run
    failures: int | None = None  # failed videos of the URL file after the run
    output: Path | None = None  # where the child's output went
    hint: str = ""  # one-line advice for a failure


class Runner(Protocol):
    """Runs the workflow once; ``stop`` must be safe to call from a signal handler."""

    def run(self) -> RunResult: ...

    def stop(self, force: bool = False) -> None: ...


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class Watcher:
    """Debounced, single-flight re-runs of ``runner`` for changes of ``urls_file``.

    ``notify`` may be called from any thread (the watchdog thread); ``stop`` and ``abort`` only
    set flags and signal the runner, so signal handlers may call them. ``serve`` runs in the main
    thread and polls, which keeps it free of locks a signal handler could interrupt.
    """

    def __init__(
        self,
        urls_file: str | Path,
        runner: Runner,
        *,
        debounce: float = 2.0,
        report: Report = print,
        lock_backoff: tuple[float, float] = (1.0, 30.0),
        poll: float = 0.05,
    ) -> None:
        self.urls_file = Path(urls_file)
        self.runner = runner
        self.debounce = debounce
        self.report = report
        self.lock_backoff = lock_backoff
        self.poll = poll
        self.runs = 0
        self.stopping = False
        self.aborted = False
        self._changes = threading.Lock()  # guards _last_change (never taken by signal handlers)
        self._last_change: float | None = None  # monotonic time of the newest unhandled change
        self._ids: frozenset[str] | None = None  # video ids at the start of the last run

    # -- called from other threads / signal handlers -------------------------------------
    def notify(self) -> None:
        """Record that the URL file changed (or may have)."""
        with self._changes:
            self._last_change = time.monotonic()

    def stop(self) -> None:
        """Stop watching; a running Snakemake is asked to shut down cleanly."""
        self.stopping = True
        self.runner.stop(force=False)

    def abort(self) -> None:
        """Stop now: kill a running Snakemake."""
        self.stopping = self.aborted = True
        self.runner.stop(force=True)

    # -- main loop ------------------------------------------------------------------------
    def serve(self) -> int:
        """Run once, then after every real change until stopped; 0, or 130 when aborted."""
        self._run("initial", None)
        while (changed_at := self._wait_for_quiet()) is not None:
            try:
                ids = url_ids(self.urls_file)
            except UrlFileMissing:  # deleted (or mid-rename): never a run that empties results
                self.report(f"watch missing: {self.urls_file} does not exist; no run")
                continue
            except OSError as error:  # e.g. a directory put in its place; wait for the next save
                self.report(f"watch unreadable: {error}")
                continue
            if ids == self._ids:
                self.report(f"watch unchanged: {_plural(len(ids), 'video')} as before; no run")
                continue
            self._run("change", changed_at)
        return 130 if self.aborted else 0

    def _wait_for_quiet(self) -> float | None:
        """Block until a change is ``debounce`` seconds old; its time, or None when stopping."""
        while not self.stopping:
            with self._changes:
                last = self._last_change
                if last is not None and time.monotonic() - last >= self.debounce:
                    self._last_change = None
                    return last
            time.sleep(self.poll)
        return None

    def _sleep(self, seconds: float) -> None:
        """Sleep unless asked to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(self.poll, max(0.0, deadline - time.monotonic())))

    def _run(self, trigger: str, changed_at: float | None) -> None:
        """One run, retried while the directory is locked; reports start and outcome."""
        try:
            ids = url_ids(self.urls_file)
        except UrlFileMissing:
            self.report(f"watch missing: {self.urls_file} does not exist; no run until it does")
            return
        self.runs += 1
        number, started = self.runs, time.monotonic()
        self.report(f"run {number} started ({trigger}): {self._describe(ids, changed_at)}")
        delay = self.lock_backoff[0]
        for attempt in itertools.count(1):
            if attempt > 1:
                with contextlib.suppress(OSError):
                    ids = url_ids(self.urls_file)
            self._ids = ids
            result = self._attempt(number)
            if result is None or not result.locked or self.stopping:
                break
            self.report(
                f"run {number} locked: another Snakemake holds the directory lock; "
                f"retry {attempt} in {_seconds(delay)} (stale lock? `snakemake --unlock`)"
            )
            self._sleep(delay)
            delay = min(delay * 2, self.lock_backoff[1])
            if self.stopping:
                break
        self.report(f"run {number} {self._outcome(result, time.monotonic() - started)}")

    def _attempt(self, number: int) -> RunResult | None:
        try:
            return self.runner.run()
        except Exception as error:  # a broken runner must not end the watcher
            self.report(f"run {number} error: {type(error).__name__}: {error}")
            return None

    def _describe(self, ids: frozenset[str], changed_at: float | None) -> str:
        text = _plural(len(ids), "video")
        if self._ids is not None:
            text += f" (+{len(ids - self._ids)} -{len(self._ids - ids)})"
        if changed_at is not None:
            text += f", {time.monotonic() - changed_at:.2f} s after the last save"
        return text

    def _outcome(self, result: RunResult | None, duration: float) -> str:
        if result is None:
            return f"failed after {_seconds(duration)}: the runner raised an error"
        if result.stopped or (self.stopping and result.returncode != 0):
            state = "stopped (locked)" if result.locked else "stopped"
            return f"{state} after {_seconds(duration)} (exit {result.returncode})"
        if result.returncode == 0:
            text = f"finished in {_seconds(duration)}"
        else:
            text = f"failed (exit {result.returncode}) after {_seconds(duration)}"
        details = []
        if result.new_videos is not None:
            details.append(f"{_plural(result.new_videos, 'new video')}")
        if result.failures is not None:
            details.append(f"{_plural(result.failures, 'failure')} recorded")
        if details:
            text += ": " + ", ".join(details)
        if result.hint:
            text += f"; {result.hint}"
        if result.output is not None:
            text += f"; output {result.output}"
        return text


# -- Snakemake as a child process -----------------------------------------------------------
def snakemake_args(extra: Sequence[str], urls: str | Path | None) -> list[str]:
    """The user's Snakemake arguments (defaults if none) plus ``--config urls=<file>``.

    A user ``--config``/``-C`` keeps its values: ``urls=`` joins the last one, since a second
    ``--config`` flag would replace the first.
    """
    args = list(extra) or list(DEFAULT_SNAKEMAKE_ARGS)
    if urls is None:
        return args
    setting = f"urls={urls}"
    for index in range(len(args) - 1, -1, -1):
        if args[index] in ("--config", "-C"):
            args.insert(index + 1, setting)
            return args
    return [*args, "--config", setting]


def snakemake_workdir(args: Sequence[str], cwd: str | Path = ".") -> Path:
    """The working directory Snakemake will use: ``--directory``/``-d`` or ``cwd``."""
    directory: str | None = None
    for index, arg in enumerate(args):
        if arg in ("--directory", "-d") and index + 1 < len(args):
            directory = args[index + 1]
        elif arg.startswith("--directory="):
            directory = arg.split("=", 1)[1]
    return Path(cwd, directory) if directory else Path(cwd)


CONFIGFILE_OPTIONS = ("--configfile", "--configfiles")
CONFIG_OPTIONS = ("--config", "-C")


def _option_values(args: Sequence[str], names: Sequence[str]) -> list[str] | None:
    """Values of the last option of ``names`` in ``args`` (as argparse reads ``nargs``: up to
    the next option; ``--name=value`` has one), or None when there is none."""
    found: list[str] | None = None
    for index, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        if name in names:
            rest = itertools.takewhile(lambda a: not a.startswith("-"), args[index + 1 :])
            found = [value] if equals else list(rest)
    return found


def _config_value(text: str) -> Any:
    """A ``--config`` value as Snakemake parses it: a number, True/False, else YAML strings."""
    for parse in (int, float):
        with contextlib.suppress(ValueError):
            return parse(text)
    if text in ("True", "False"):
        return text == "True"
    try:
        return yaml.load(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError:
        return text


def snakemake_config(
    args: Sequence[str], cwd: str | Path = "."
) -> tuple[list[Path], dict[str, Any]]:
    """The config files Snakemake layers with ``args`` (``config/config.yaml`` of its working
    directory first, unless replaced, then ``--configfile``, taken from ``cwd``) and the
    ``--config`` values."""
    files = [] if "--replace-workflow-config" in args else [DEFAULT_CONFIGFILE]
    named = _option_values(args, CONFIGFILE_OPTIONS) or []
    files += [Path(os.path.abspath(Path(cwd, name))) for name in named]
    overrides: dict[str, Any] = {}
    for item in _option_values(args, CONFIG_OPTIONS) or []:
        key, _, value = item.partition("=")
        overrides[key] = _config_value(value) if value else None
    return files, overrides


@dataclass(frozen=True)
class WatchPlan:
    """What ``framesift watch`` hands Snakemake and which URL file it watches."""

    args: list[str]
    workdir: Path
    urls_file: Path


def plan_watch(urls: str | Path | None, extra: Sequence[str], cwd: str | Path = ".") -> WatchPlan:
    """Snakemake's arguments and the URL file they make it read (ConfigError: unusable config).

    Without ``--configfile``/``--config`` in ``extra``, the last run's config files and values
    (its record) are handed to Snakemake. The watched file is ``urls`` (handed to Snakemake as
    ``--config urls=<absolute path>``), else the ``urls:`` of that config.
    """
    args = list(extra) or list(DEFAULT_SNAKEMAKE_ARGS)
    workdir = snakemake_workdir(args, cwd)
    given = _option_values(args, CONFIGFILE_OPTIONS + CONFIG_OPTIONS) is not None
    record = None if given else read_run_record(workdir)
    if record is not None:
        args += record.snakemake_options(skip=("urls",) if urls is not None else ())
    if urls is not None:
        urls_file = Path(cwd, urls)
        return WatchPlan(snakemake_args(args, urls_file.resolve()), workdir, urls_file)
    files, overrides = snakemake_config(args, cwd)
    with recorded_config(record is not None, "-- --configfile FILE"):
        config = resolve_config(files, overrides, workdir=workdir)
    return WatchPlan(args, workdir, workdir / config["urls"])


def count_videos(layout: Layout) -> int:
    """Videos the download stage has finished (their ``.info.json`` files)."""
    pattern = layout.info("*")
    return sum(1 for _ in pattern.parent.glob(pattern.name))


def _contains(path: Path, offset: int, markers: Sequence[str]) -> bool:
    """Whether the file from ``offset`` on contains any of ``markers``."""
    try:
        with path.open("rb") as stream:
            stream.seek(offset)
            text = stream.read().decode(errors="replace")
    except OSError:
        return False
    return any(marker in text for marker in markers)


def _default_stop_signals() -> None:
    """In Snakemake's process, before exec: SIGINT and SIGTERM do what they normally do, even
    when the watcher was started with them ignored (``nohup framesift watch &`` ignores SIGINT
    in a shell without job control), so that the stop escalation below can reach it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class SnakemakeRunner:
    """Runs ``[python, -m, snakemake, *args]`` in its own process group.

    Each run's output goes to a new file in ``output_dir`` (retries after a lock append to the
    same file). ``stop()`` sends SIGTERM to the whole group: the local jobs die, and Snakemake's
    handler removes their outputs, waits for jobs it submitted elsewhere (cluster) and releases
    the lock. (SIGINT instead leaves local outputs marked incomplete.) If Snakemake is still
    running ``stop_timeout`` seconds later, it gets SIGINT, on which it cancels its remaining
    jobs (``scancel`` on SLURM); ``interrupt_grace`` seconds after that, or at once on
    ``stop(force=True)``, the group gets SIGKILL. A stopped runner stays stopped: later runs
    return at once.
    """

    def __init__(
        self,
        args: Sequence[str],
        output_dir: Path,
        *,
        workdir: Path | None = None,
        urls_file: Path | None = None,
        python: str = sys.executable,
        stop_timeout: float = 60.0,
        interrupt_grace: float = 15.0,
    ) -> None:
        self.command = [python, "-m", "snakemake", *args]
        self.output_dir = output_dir
        self.workdir = workdir if workdir is not None else snakemake_workdir(args)
        self.layout = Layout(self.workdir / RESULTS)  # what it counts (the video type is moot)
        self.urls_file = urls_file
        self.stop_timeout = stop_timeout
        self.interrupt_grace = interrupt_grace
        self.output: Path | None = None
        self._retry_output = False
        self._pid: int | None = None
        self._stop_level = 0  # 0 running freely, 1 SIGTERM sent, 2 SIGINT sent, 3 SIGKILL sent
        self._stop_at = 0.0

    def stop(self, force: bool = False) -> None:
        """Ask the child to stop (SIGTERM to its group) or kill it (``force``). Signal-safe."""
        if not self._stop_level:
            self._stop_at = time.monotonic()
        self._stop_level = 3 if force else max(self._stop_level, 1)
        self._signal(signal.SIGKILL if force else signal.SIGTERM, group=True)

    def _signal(self, signum: int, group: bool) -> None:
        pid = self._pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                (os.killpg if group else os.kill)(pid, signum)

    def run(self) -> RunResult:
        """Run Snakemake once and wait for it."""
        if self._stop_level:
            return RunResult(returncode=-signal.SIGTERM, stopped=True)
        videos_before = count_videos(self.layout)
        locks_before = self._lock_files()
        output = self._next_output()
        with output.open("ab") as log:
            offset = log.tell()
            log.write(f"$ {' '.join(self.command)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_default_stop_signals,
            )
            try:
                returncode = self._wait(proc)
            finally:
                if self._stop_level:  # leave no stragglers of a stopped run behind
                    self._signal(signal.SIGKILL, group=True)
                self._pid = None
        if returncode < 0:  # killed before Snakemake could release its lock
            self._remove_new_locks(locks_before)
        locked = returncode != 0 and _contains(output, offset, LOCK_MARKERS)
        self._retry_output = locked
        incomplete = returncode != 0 and _contains(output, offset, (INCOMPLETE_MARKER,))
        return RunResult(
            returncode=returncode,
            locked=locked,
            stopped=bool(self._stop_level),
            new_videos=max(0, count_videos(self.layout) - videos_before),
            failures=count_failed(self.layout, self.urls_file) if self.urls_file else None,
            output=output,
            hint="outputs of an interrupted run are incomplete: add --rerun-incomplete"
            if incomplete
            else "",
        )

    def _next_output(self) -> Path:
        if self.output is None or not self._retry_output:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            self.output = self.output_dir / f"{stamp}.log"
        self.output.parent.mkdir(parents=True, exist_ok=True)
        return self.output

    def _wait(self, proc: subprocess.Popen) -> int:
        """Wait for the child, escalating a stop that takes too long (SIGINT, then SIGKILL)."""
        self._pid = proc.pid
        if self._stop_level:  # a stop arrived while the child was starting
            self.stop(force=self._stop_level == 3)
        while True:
            try:
                return proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                self._escalate()

    def _escalate(self) -> None:
        waited = time.monotonic() - self._stop_at
        if self._stop_level == 1 and waited > self.stop_timeout:
            self._stop_level = 2
            self._signal(signal.SIGINT, group=False)
        elif self._stop_level == 2 and waited > self.stop_timeout + self.interrupt_grace:
            self.stop(force=True)

    def _lock_dir(self) -> Path:
        return self.workdir / ".snakemake" / "locks"

    def _lock_files(self) -> set[str]:
        try:
            return set(os.listdir(self._lock_dir()))
        except OSError:
            return set()

    def _remove_new_locks(self, before: set[str]) -> None:
        """Remove the lock files our killed child left (Snakemake names them ``N.input.lock``)."""
        for name in self._lock_files() - before:
            (self._lock_dir() / name).unlink(missing_ok=True)


# -- file events ------------------------------------------------------------------------------
def observe(path: str | Path, callback: Callable[[], None]) -> BaseObserver:
    """Start watchdog on the directory of ``path``; ``callback()`` on any change to that file.

    Watching the directory sees atomic replaces (``dest_path`` is the file) and a deleted then
    recreated file, which a watch on the file itself would lose.
    """
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer
    from watchdog.observers.polling import PollingObserver

    target = os.path.abspath(path)

    class _Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.is_directory or event.event_type not in CHANGE_EVENTS:
                return
            paths = (event.src_path, getattr(event, "dest_path", "") or "")
            if target in {os.path.abspath(os.fsdecode(p)) for p in paths if p}:
                callback()

    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    logging.getLogger("watchdog.observers.inotify").addFilter(_drop_stop_noise)
    try:
        return _start(Observer(), _Handler(), directory)
    except OSError:  # e.g. the inotify watch limit is reached: poll instead
        return _start(PollingObserver(timeout=0.5), _Handler(), directory)


def _start(observer: BaseObserver, handler: FileSystemEventHandler, directory: str) -> BaseObserver:
    observer.schedule(handler, directory, recursive=False)
    observer.daemon = True
    observer.start()
    return observer


STOP_NOISE = "queue_events() called when the thread is inactive"


def _drop_stop_noise(record: logging.LogRecord) -> bool:
    """Filter of watchdog's inotify logger: its emitter logs STOP_NOISE as an error when the
    observer stops while it is reading an event (a race inside watchdog's own stop; nothing is
    lost, the watch is over), which printed a stray line when ``framesift watch`` stopped."""
    return STOP_NOISE not in record.getMessage()


def stop_observer(observer: BaseObserver, timeout: float = 5.0) -> None:
    """Stop watchdog: ``stop()`` ends and joins its emitters, then its dispatch thread ends."""
    observer.stop()
    observer.join(timeout)


# -- the command ------------------------------------------------------------------------------
class EventLog:
    """Prints each event line with a timestamp and appends it to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str) -> None:
        line = f"{datetime.now().isoformat(timespec='milliseconds')} {message}"
        print(line, flush=True)
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(line + "\n")


def _write_stderr(text: str) -> None:
    """Write from a signal handler (``print`` is not reentrant)."""
    with contextlib.suppress(OSError, ValueError):
        os.write(sys.stderr.fileno(), text.encode())


def install_signal_handlers(watcher: Watcher) -> None:
    """First SIGINT/SIGTERM: clean stop; a second one: kill Snakemake and exit."""

    def handle(signum: int, frame: object) -> None:
        if watcher.stopping:
            _write_stderr("framesift watch: aborting, killing Snakemake\n")
            watcher.abort()
        else:
            _write_stderr("framesift watch: stopping (Ctrl-C again to kill Snakemake)\n")
            watcher.stop()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def run_watch(
    urls: str | Path | None,
    extra: Sequence[str],
    *,
    debounce: float = 2.0,
    log: str | Path | None = None,
) -> int:
    """``framesift watch``: returns 0 after a clean stop, 130 after an abort, 2 when the config
    cannot be used.

    ``urls`` defaults to the ``urls:`` of the config handed to Snakemake (see
    :func:`plan_watch`) and ``log`` to ``logs/watch.log`` under Snakemake's working directory
    (``--directory`` in ``extra``, else the current one).
    """
    try:
        plan = plan_watch(urls, extra)
    except ConfigError as error:
        sys.stderr.write(f"framesift watch: {error}\n")
        return 2
    log_file = Path(log) if log is not None else plan.workdir / DEFAULT_LOG
    report = EventLog(log_file)
    runs_dir = log_file.parent / f"{log_file.stem}-runs"
    runner = SnakemakeRunner(plan.args, runs_dir, workdir=plan.workdir, urls_file=plan.urls_file)
    watcher = Watcher(plan.urls_file, runner, debounce=debounce, report=report)
    install_signal_handlers(watcher)
    observer = observe(plan.urls_file, watcher.notify)
    args = " ".join(plan.args)
    report(f"watch started: {plan.urls_file} (debounce {debounce:g} s): snakemake {args}")
    try:
        code = watcher.serve()
    finally:
        stop_observer(observer)  # first no more events, then no more runs
        runner.stop(force=True)  # kills a child only if one is still running
    report("watch stopped" if code == 0 else "watch aborted")
    return code
