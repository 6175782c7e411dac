"""``framesift watch``: the state machine with a fake runner, the runner with a fake child, file
events with real watchdog, and the whole command with real Snakemake runs on synthetic videos
served from 127.0.0.1."""

from __future__ import annotations

import contextlib
import functools
import http.server
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from testkit import REPO, Workflow

from framesift.cli.watch import (
    DEFAULT_SNAKEMAKE_ARGS,
    STOP_NOISE,
    RunResult,
    SnakemakeRunner,
    Watcher,
    observe,
    plan_watch,
    snakemake_args,
    snakemake_workdir,
    stop_observer,
)
from framesift.core.config import ConfigError
from framesift.core.run_record import RunRecord, write_run_record
from framesift.core.urls import video_id
from framesift.stages.frames import MANIFEST, read_manifest

LINE = re.compile(r"^(\S+) (?:run (\d+)|watch) (\w+)")


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


# -- the state machine, with a fake runner --------------------------------------------------
class FakeRunner:
    """Stands in for Snakemake: records when it ran. With ``hold``, a run lasts until the test
    calls ``release()`` (or the watcher stops it)."""

    def __init__(self, hold: bool = False, results: list[RunResult] | None = None) -> None:
        self.results = list(results or [])
        self.calls: list[float] = []
        self.ended: list[float] = []
        self.stops: list[bool] = []
        self.stopped = False
        self.go = threading.Event()
        if not hold:
            self.go.set()

    def release(self) -> None:
        self.go.set()

    def run(self) -> RunResult:
        self.calls.append(time.monotonic())
        self.go.wait(30)
        self.ended.append(time.monotonic())
        if self.stopped:
            return RunResult(returncode=1, stopped=True)
        return self.results.pop(0) if self.results else RunResult(returncode=0)

    def stop(self, force: bool = False) -> None:
        self.stops.append(force)
        self.stopped = True
        self.go.set()


class Session:
    """A Watcher serving in a thread, with its report lines."""

    def __init__(self, urls: Path, runner: FakeRunner, **options: object) -> None:
        self.urls, self.runner, self.lines = urls, runner, []
        self.watcher = Watcher(urls, runner, report=self.lines.append, **options)
        self.code: list[int] = []
        self.thread = threading.Thread(target=lambda: self.code.append(self.watcher.serve()))
        self.thread.start()

    def save(self, text: str) -> float:
        self.urls.write_text(text)
        self.watcher.notify()
        return time.monotonic()

    def events(self, kind: str) -> list[str]:
        return [line for line in self.lines if f" {kind}" in line]

    def close(self) -> int:
        self.watcher.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return self.code[0]


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Callable[..., Session]]:
    sessions: list[Session] = []

    def start(runner: FakeRunner, text: str = "", **options: object) -> Session:
        urls = tmp_path / "urls.txt"
        urls.write_text(text)
        options.setdefault("debounce", 0.2)
        options.setdefault("poll", 0.01)
        sessions.append(Session(urls, runner, **options))
        return sessions[-1]

    yield start
    for item in sessions:
        item.watcher.abort()
        item.thread.join(10)


def urls_text(*names: str) -> str:
    return "".join(f"https://example.org/{name}.mp4\n" for name in names)


def test_initial_run_then_one_run_per_burst(session):
    s = session(FakeRunner(), urls_text("a"), debounce=0.5)
    wait_until(lambda: len(s.runner.ended) == 1, 5, "the initial run")
    last = 0.0
    for count in range(1, 21):  # 20 saves, 10 ms apart: one burst
        last = s.save(urls_text(*[f"v{i}" for i in range(count)]))
        time.sleep(0.01)
    wait_until(lambda: len(s.runner.ended) == 2, 5, "the run after the burst")
    time.sleep(0.5)
    assert len(s.runner.calls) == 2
    assert s.runner.calls[1] - last >= 0.5  # waited for the debounce
    assert "run 2 started (change): 20 videos (+20 -1)" in s.lines[-2]
    assert s.close() == 0


def test_changes_during_a_run_cause_exactly_one_follow_up(session):
    s = session(FakeRunner(hold=True), urls_text("a"))
    wait_until(lambda: s.runner.calls, 5, "the initial run")
    s.save(urls_text("a", "b"))
    time.sleep(0.4)  # twice the debounce: two separate changes, both during run 1
    s.save(urls_text("a", "b", "c"))
    time.sleep(0.4)
    s.runner.release()
    wait_until(lambda: len(s.runner.ended) == 2, 10, "the follow-up run")
    time.sleep(0.6)
    assert len(s.runner.calls) == 2
    assert s.runner.calls[1] >= s.runner.ended[0]  # never two runs at once
    assert "run 2 started (change): 3 videos (+2 -0)" in s.lines[2]
    assert s.close() == 0


def test_same_set_of_urls_starts_no_run(session):
    s = session(FakeRunner(), urls_text("a", "b"))
    wait_until(lambda: s.runner.ended, 5, "the initial run")
    noise = "# a comment\n\n  https://example.org/b.mp4  \nnot a url\n" + urls_text("a", "b")
    s.save(noise)
    wait_until(lambda: s.events("unchanged"), 5, "the save to be checked")
    time.sleep(0.3)
    assert len(s.runner.calls) == 1
    assert s.lines[-1].endswith("watch unchanged: 2 videos as before; no run")
    s.save(noise + urls_text("c"))
    wait_until(lambda: len(s.runner.ended) == 2, 5, "a run for the new URL")
    assert s.close() == 0


def test_a_failed_or_crashed_run_does_not_stop_the_watcher(session):
    class Crashing(FakeRunner):
        def run(self) -> RunResult:
            result = super().run()
            if len(self.calls) == 2:
                raise OSError("no such interpreter")
            return result

    runner = Crashing(results=[RunResult(returncode=1, new_videos=0, failures=2)])
    s = session(runner, urls_text("a"))
    wait_until(lambda: s.events("failed"), 5, "the failed run")
    assert "run 1 failed (exit 1)" in s.lines[-1]
    assert "0 new videos, 2 failures recorded" in s.lines[-1]
    s.save(urls_text("a", "b"))
    wait_until(lambda: len(s.events("failed")) == 2, 5, "the crashed run")
    s.save(urls_text("a", "b", "c"))
    wait_until(lambda: len(s.events("finished")) == 1, 5, "a good run after them")
    assert s.close() == 0


def test_locked_directory_is_retried_with_backoff(session):
    locked = RunResult(returncode=1, locked=True)
    runner = FakeRunner(results=[locked, locked, RunResult(returncode=0, new_videos=1)])
    s = session(runner, urls_text("a"), lock_backoff=(0.1, 0.15))
    wait_until(lambda: s.events("finished"), 5, "the run to get through")
    events = [re.match(r"run 1 (\w+)", line).group(1) for line in s.lines]
    assert events == ["started", "locked", "locked", "finished"]
    gaps = [b - a for a, b in zip(runner.ended, runner.calls[1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.15  # doubled, then capped
    assert s.close() == 0


def test_stop_during_a_run_asks_the_runner_to_stop(session):
    runner = FakeRunner(hold=True)
    s = session(runner, urls_text("a"))
    wait_until(lambda: runner.calls, 5, "the run")
    started = time.monotonic()
    assert s.close() == 0
    assert time.monotonic() - started < 5
    assert runner.stops == [False]
    assert "run 1 stopped" in s.lines[-1]


def test_abort_kills_and_exits_130(session):
    runner = FakeRunner(hold=True)
    s = session(runner, urls_text("a"))
    wait_until(lambda: runner.calls, 5, "the run")
    s.watcher.abort()
    s.thread.join(5)
    assert s.code == [130]
    assert runner.stops == [True]


# -- the runner, with a stand-in for python -------------------------------------------------
def fake_python(tmp_path: Path, body: str) -> str:
    """An executable that ignores ``-m snakemake ...`` and runs the shell ``body``."""
    path = tmp_path / "fake-python"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_runner_reports_a_locked_directory(tmp_path):
    python = fake_python(
        tmp_path, "echo 'LockException:'; echo 'Error: Directory cannot be locked.'; exit 1"
    )
    runner = SnakemakeRunner(["--cores", "1"], tmp_path / "out", workdir=tmp_path, python=python)
    result = runner.run()
    assert (result.returncode, result.locked, result.stopped) == (1, True, False)
    assert result.output is not None and "cannot be locked" in result.output.read_text()
    assert runner.run().output == result.output  # a retry appends to the same output file
    failing = SnakemakeRunner(
        [],
        tmp_path / "out",
        workdir=tmp_path,
        python=fake_python(tmp_path, "echo IncompleteFilesException; exit 1"),
    )
    assert "--rerun-incomplete" in failing.run().hint


def test_runner_stop_removes_locks_its_killed_child_left(tmp_path):
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("someone else's\n")
    python = fake_python(tmp_path, f"echo x > {locks}/1.input.lock; exec sleep 30")
    runner = SnakemakeRunner([], tmp_path / "out", workdir=tmp_path, python=python)
    threading.Timer(1.0, runner.stop).start()
    started = time.monotonic()
    result = runner.run()
    assert time.monotonic() - started < 10
    assert (result.returncode, result.stopped) == (-signal.SIGTERM, True)
    assert sorted(os.listdir(locks)) == ["0.output.lock"]
    assert runner.run().stopped  # a stopped runner starts nothing more


@pytest.mark.parametrize(
    ("ignored", "ending"), [("TERM", -signal.SIGINT), ("TERM INT", -signal.SIGKILL)]
)
def test_runner_escalates_a_stop_that_takes_too_long(tmp_path, ignored, ending):
    python = fake_python(tmp_path, f"trap '' {ignored}; sleep 30 & wait; sleep 30")
    runner = SnakemakeRunner([], tmp_path / "out", workdir=tmp_path, python=python)
    runner.stop_timeout, runner.interrupt_grace = 0.5, 0.5
    threading.Timer(1.0, runner.stop).start()
    started = time.monotonic()
    result = runner.run()
    assert time.monotonic() - started < 10
    assert (result.returncode, result.stopped) == (ending, True)


def test_the_stop_reaches_snakemake_when_the_watcher_ignores_sigint(tmp_path):
    """`nohup framesift watch &` starts the watcher with SIGINT ignored, which children inherit:
    Snakemake's process gets SIGINT back to its default, so the escalation still ends it."""
    python = fake_python(tmp_path, "trap '' TERM; sleep 30 & wait; sleep 30")
    runner = SnakemakeRunner([], tmp_path / "out", workdir=tmp_path, python=python)
    runner.stop_timeout, runner.interrupt_grace = 0.5, 0.5
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        threading.Timer(1.0, runner.stop).start()
        result = runner.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (result.returncode, result.stopped) == (-signal.SIGINT, True)


# -- arguments ----------------------------------------------------------------------------------
def test_snakemake_args():
    assert snakemake_args([], None) == list(DEFAULT_SNAKEMAKE_ARGS)
    assert snakemake_args(["--cores", "8", "--resources", "gpu=1"], "/w/u.txt") == [
        "--cores", "8", "--resources", "gpu=1", "--config", "urls=/w/u.txt"
    ]  # fmt: skip
    assert snakemake_args(["-C", "a=1", "--cores", "2", "--config", "b=2"], "u") == [
        "-C", "a=1", "--cores", "2", "--config", "urls=u", "b=2"
    ]  # fmt: skip
    assert snakemake_workdir(["--cores", "1"], "/cwd") == Path("/cwd")
    assert snakemake_workdir(["--directory", "run"], "/cwd") == Path("/cwd/run")
    assert snakemake_workdir(["-d", "/abs", "--directory=/other"], "/cwd") == Path("/other")


def _write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_watched_file_is_the_urls_of_the_config_snakemake_gets(tmp_path):
    _write_yaml(tmp_path / "config" / "config.yaml", {"urls": "other.txt"})
    _write_yaml(tmp_path / "b.yaml", {"urls": "b.txt"})
    cores = ["--cores", "1"]
    assert plan_watch(None, cores, tmp_path).urls_file == tmp_path / "other.txt"
    plan = plan_watch(None, [*cores, "--configfile", "b.yaml"], tmp_path)
    assert (plan.urls_file, plan.args) == (tmp_path / "b.txt", [*cores, "--configfile", "b.yaml"])
    plan = plan_watch(None, [*cores, "--configfile=b.yaml", "-C", "urls=c.txt"], tmp_path)
    assert plan.urls_file == tmp_path / "c.txt"
    run = tmp_path / "run"  # --directory: the config and the URL file are Snakemake's there
    _write_yaml(run / "config" / "config.yaml", {"urls": "in-run.txt"})
    assert plan_watch(None, ["-d", "run"], tmp_path).urls_file == run / "in-run.txt"
    assert plan_watch("mine.txt", [], tmp_path).urls_file == tmp_path / "mine.txt"
    with pytest.raises(ConfigError, match="missing.yaml"):
        plan_watch(None, ["--configfile", "missing.yaml"], tmp_path)


def test_without_config_options_the_last_runs_config_is_handed_on(tmp_path):
    other = _write_yaml(tmp_path / "other.yaml", {"urls": "other.txt"})
    record = RunRecord(tmp_path, (other,), {"urls": "rec.txt"}, tmp_path, tmp_path / "results")
    assert write_run_record(record)
    plan = plan_watch(None, ["--cores", "1"], tmp_path)
    assert plan.args == ["--cores", "1", "--configfile", str(other), "--config", "urls=rec.txt"]
    assert plan.urls_file == tmp_path / "rec.txt"
    plan = plan_watch("mine.txt", ["--cores", "1"], tmp_path)  # --urls wins over the record's
    mine = (tmp_path / "mine.txt").resolve()
    assert plan.args == ["--cores", "1", "--configfile", str(other), "--config", f"urls={mine}"]
    explicit = plan_watch(None, ["--config", "urls=x.txt"], tmp_path)  # options win
    assert (explicit.args, explicit.urls_file) == (["--config", "urls=x.txt"], tmp_path / "x.txt")


# -- file events, with real watchdog ------------------------------------------------------------
def test_observe_sees_saves_atomic_replaces_and_recreation(tmp_path):
    urls = tmp_path / "config" / "urls.txt"
    urls.parent.mkdir()
    urls.write_text("one\n")
    seen = threading.Event()
    observer = observe(urls, seen.set)
    try:

        def changes(action: Callable[[], object], wait: float = 5.0) -> bool:
            seen.clear()
            action()
            return seen.wait(wait)

        assert not changes(lambda: (urls.parent / "other.txt").write_text("x"), wait=0.5)
        assert not changes(urls.read_text, wait=0.5)  # reading is not a change
        assert changes(lambda: urls.open("a").write("two\n"))
        tmp = urls.with_name(".urls.txt.tmp")
        tmp.write_text("three\n")
        assert changes(lambda: os.replace(tmp, urls))
        assert changes(urls.unlink)
        assert changes(lambda: urls.write_text("four\n"))
    finally:
        stop_observer(observer)


def test_stopping_the_observer_logs_nothing(tmp_path, caplog):
    """watchdog's inotify emitter logs "queue_events() called when the thread is inactive" when
    it is stopped while reading an event; framesift watch printed it on every such stop."""
    urls = tmp_path / "urls.txt"
    caplog.set_level(logging.DEBUG, logger="watchdog")
    for _ in range(20):  # stop while events arrive: the race that logged the line
        observer = observe(urls, lambda: None)
        writer = threading.Thread(target=lambda: [urls.write_text("x") for _ in range(300)])
        writer.start()
        time.sleep(0.01)
        stop_observer(observer)
        writer.join()
        assert not observer.is_alive()
    logging.getLogger("watchdog.observers.inotify").error(f"InotifyEmitter.{STOP_NOISE}")
    assert not [r for r in caplog.records if STOP_NOISE in r.getMessage()]


# -- the command, with real Snakemake -------------------------------------------------------------
class _SlowHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files; ``?delay=S`` waits S seconds before answering (a slow download)."""

    def do_GET(self) -> None:
        delay = parse_qs(urlsplit(self.path).query).get("delay")
        if delay:
            time.sleep(float(delay[0]))
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def slow_server(video_dir: Path) -> Iterator[str]:
    handler = functools.partial(_SlowHandler, directory=str(video_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def kill_processes_in(root: Path) -> None:
    """SIGKILL every process whose working directory is under ``root`` (test leftovers)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == str(root) or cwd.startswith(f"{root}/"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


class WatchProcess:
    """``python -m framesift.cli.main watch`` on a workflow directory (with ``args``, else the
    config's URL file and the ``frames`` target), and its log."""

    def __init__(self, workflow: Workflow, args: list[str] | None = None) -> None:
        workflow.write_config()
        if not workflow.urls_file.exists():
            workflow.write_urls(["# urls"])
        self.root, self.log = workflow.root, workflow.root / "logs" / "watch.log"
        args = args or [
            "--urls", str(workflow.urls_file), "--debounce", "0.5",
            "--", "--snakefile", str(REPO / "Snakefile"), "--cores", "2", "frames",
        ]  # fmt: skip
        command = [sys.executable, "-m", "framesift.cli.main", "watch", *args]
        self.stdout = (self.root / "watch.out").open("w")
        self.proc = subprocess.Popen(
            command, cwd=self.root, stdout=self.stdout, stderr=subprocess.STDOUT
        )

    def lines(self) -> list[tuple[datetime, int, str, str]]:
        """(time, run number or 0, event, line) per log line."""
        text = self.log.read_text() if self.log.exists() else ""
        parsed = []
        for line in text.splitlines():
            match = LINE.match(line)
            if match:
                stamp, run, event = match.groups()
                parsed.append((datetime.fromisoformat(stamp), int(run or 0), event, line))
        return parsed

    def events(self, event: str) -> list[tuple[datetime, int, str, str]]:
        """Lines of one event: of runs (``started``, ``finished``...) or ``unchanged``."""
        return [
            item for item in self.lines() if item[2] == event and (item[1] or event == "unchanged")
        ]

    def runs_ended(self) -> int:
        ends = ("finished", "failed", "stopped")
        return sum(1 for _, run, event, _ in self.lines() if run and event in ends)

    def idle(self) -> bool:
        return self.runs_ended() == len(self.events("started"))

    def wait(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        try:
            wait_until(predicate, timeout, what)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.diagnostics()}") from None

    def diagnostics(self) -> str:
        log = self.log.read_text() if self.log.exists() else "(no log)"
        outputs = sorted((self.root / "logs" / "watch-runs").glob("*.log"))
        tail = outputs[-1].read_text()[-3000:] if outputs else ""
        return f"--- watch.log\n{log}\n--- last run output\n{tail}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.stdout.close()


@pytest.fixture
def watch(workflow: Workflow) -> Iterator[Callable[..., WatchProcess]]:
    started: list[WatchProcess] = []

    def start(args: list[str] | None = None) -> WatchProcess:
        started.append(WatchProcess(workflow, args))
        return started[-1]

    yield start
    for process in started:
        process.close()
    kill_processes_in(workflow.root)


def frames_done(workflow: Workflow) -> set[str]:
    """Video ids whose frames folder is complete (has its manifest)."""
    frames = workflow.root / "results" / "frames"
    return (
        {d.name for d in frames.glob("*") if (d / MANIFEST).exists()} if frames.exists() else set()
    )


def job_started(workflow: Workflow) -> bool:
    """Whether a download job has begun (its DAG, and so its URL list, is fixed by then)."""
    jobs = workflow.root / "logs" / "download_video"
    return jobs.exists() and any(jobs.iterdir())


def append(path: Path, line: str) -> datetime:
    with path.open("a") as stream:
        stream.write(line + "\n")
    return datetime.now()


@pytest.mark.slow
def test_burst_of_30_urls_starts_at_most_two_runs(workflow, watch, server, slow_server):
    slow = f"{slow_server}/beta.mp4?delay=3"
    workflow.write_urls([slow])  # run 1 downloads for ~6 s
    w = watch()
    w.wait(lambda: job_started(workflow), 120, "run 1's first job")
    urls = [f"{server}/alpha.mp4?n={i}" for i in range(30)]
    assert len({video_id(url) for url in urls}) == 30
    for url in urls:  # one by one, within about a second
        append(workflow.urls_file, url)
        time.sleep(0.03)
    wanted = {video_id(url) for url in [*urls, slow]}
    w.wait(lambda: frames_done(workflow) >= wanted and w.idle(), 400, "all 31 videos")
    time.sleep(1.5)  # nothing else starts
    started = w.events("started")
    print(f"\nburst of 30 appends: {len(started)} runs: " + "; ".join(s[3] for s in started))
    assert len(started) <= 2
    assert len(frames_done(workflow)) == 31
    assert "failed" not in w.log.read_text()


@pytest.mark.slow
def test_change_during_a_run_gives_exactly_one_follow_up(workflow, watch, server, slow_server):
    workflow.write_urls([f"{slow_server}/gamma.mp4?delay=3"])  # run 1 downloads for ~6 s
    w = watch()
    w.wait(lambda: job_started(workflow), 120, "run 1's first job")
    append(workflow.urls_file, f"{server}/alpha.mp4")
    time.sleep(1.0)  # twice the debounce: two separate changes
    append(workflow.urls_file, f"{server}/beta.mp4")
    assert not w.runs_ended(), "both changes must land while run 1 is going"
    w.wait(lambda: len(w.events("finished")) == 2, 180, "the follow-up run")
    time.sleep(2.0)
    started = [item[3] for item in w.events("started")]
    assert len(started) == 2, started
    assert "run 2 started (change): 3 videos (+2 -0)" in started[1]
    assert frames_done(workflow) == {
        video_id(f"{slow_server}/gamma.mp4?delay=3"),
        video_id(f"{server}/alpha.mp4"),
        video_id(f"{server}/beta.mp4"),
    }


@pytest.mark.slow
def test_atomic_replace_recreate_and_comment_edits(workflow, watch, server):
    first, second, third = (f"{server}/{name}.mp4" for name in ("alpha", "beta", "gamma"))
    workflow.write_urls([first])
    w = watch()
    w.wait(lambda: w.events("finished"), 120, "run 1")
    # comments, blank lines, spaces, a repeat and an invalid line: same set of videos, no run
    workflow.urls_file.write_text(f"# mine\n\n  {first}  \n{first}\nnot-a-url\n")
    w.wait(lambda: w.events("unchanged"), 60, "the edit to be checked")
    # an editor's atomic save: temp file renamed over the original
    tmp = workflow.urls_file.with_name(".urls.txt.swp")
    tmp.write_text(f"{first}\n{second}\n")
    saved = datetime.now()
    os.replace(tmp, workflow.urls_file)
    w.wait(lambda: len(w.events("finished")) == 2, 120, "run 2 after the atomic replace")
    latency = [(w.events("started")[1][0] - saved).total_seconds()]
    # deleted, then written anew
    workflow.urls_file.unlink()
    workflow.urls_file.write_text(f"{first}\n{second}\n{third}\n")
    saved = datetime.now()
    w.wait(lambda: len(w.events("finished")) == 3, 120, "run 3 after delete + recreate")
    latency.append((w.events("started")[2][0] - saved).total_seconds())
    print(f"\nsave -> run start (debounce 0.5 s): {', '.join(f'{x:.2f} s' for x in latency)}")
    assert len(w.events("started")) == 3
    assert all(0.4 < x < 5 for x in latency)
    assert frames_done(workflow) == {video_id(url) for url in (first, second, third)}


@pytest.mark.slow
def test_sigterm_during_a_run_stops_cleanly(workflow, watch, server, slow_server):
    urls = [f"{slow_server}/alpha.mp4?delay=2&n={i}" for i in range(2)] + [f"{server}/beta.mp4"]
    workflow.write_urls(urls)
    w = watch()
    w.wait(lambda: job_started(workflow), 120, "a download job to start")
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(60) == 0
    assert "run 1 stopped" in w.log.read_text()
    locks = workflow.root / ".snakemake" / "locks"
    assert not locks.exists() or not any(locks.iterdir())
    assert len(frames_done(workflow)) < 3, "the run was meant to be interrupted"
    # no half-written output counts as finished: a plain rerun (no --rerun-incomplete) completes
    workflow.run("frames")
    assert frames_done(workflow) == {video_id(url) for url in urls}
    for vid in frames_done(workflow):
        frames = read_manifest(workflow.root / "results" / "frames" / vid / MANIFEST)
        assert frames and all((workflow.root / "results" / "frames" / vid / f.file).exists()
                              for f in frames)  # fmt: skip
    assert "Nothing to be done" in workflow.run("frames", "--dry-run").stdout


@pytest.mark.slow
def test_waits_while_another_snakemake_holds_the_lock(workflow, watch, server, tmp_path):
    url = f"{server}/delta.mp4"
    workflow.write_urls([url])
    holder_file = tmp_path / "hold.smk"
    target = f"results/videos/{video_id(url)}.mp4"  # an output of the watcher's run too
    holder_file.write_text(f'rule hold:\n    output: "{target}"\n    shell: "sleep 300"\n')
    holder = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--snakefile", str(holder_file), "--cores", "1",
         target],
        cwd=workflow.root, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        locks = workflow.root / ".snakemake" / "locks"
        wait_until(lambda: locks.exists() and any(locks.iterdir()), 120, "the holder's lock")
        w = watch()
        w.wait(lambda: w.events("locked"), 120, "the watcher to find the lock")
        assert not w.events("failed") and not w.events("finished")
        os.killpg(holder.pid, signal.SIGTERM)  # the other Snakemake ends cleanly
        holder.wait(60)
        w.wait(lambda: w.events("finished"), 180, "the run after the lock is released")
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait(10)
    assert len(w.events("started")) == 1
    assert frames_done(workflow) == {video_id(url)}
    assert "0 failures recorded" in w.events("finished")[0][3]


@pytest.mark.slow
@pytest.mark.parametrize("named_in", ["config/config.yaml", "--configfile other.yaml"])
def test_watch_follows_the_urls_of_the_config_it_hands_snakemake(workflow, watch, named_in):
    """`urls: other.txt` in the config: a change of other.txt reruns (config/urls.txt is not the
    URL file then); dry runs keep it fast. The stop leaves no stray watchdog line."""
    workflow.write_urls(["https://example.org/not-in-use.mp4"])
    other = workflow.root / "other.txt"
    other.write_text("https://example.org/first.mp4\n")
    snakemake = ["--snakefile", str(REPO / "Snakefile"), "--cores", "1", "--dry-run"]
    if named_in == "config/config.yaml":
        workflow.config["urls"] = "other.txt"
    else:
        (workflow.root / "other.yaml").write_text("urls: other.txt\n")
        snakemake += ["--configfile", "other.yaml"]
    w = watch(["--debounce", "0.5", "--", *snakemake])
    w.wait(lambda: w.events("finished"), 120, "run 1")
    append(other, "https://example.org/second.mp4")
    w.wait(lambda: len(w.events("finished")) == 2, 120, "run 2 after other.txt changed")
    started = [item[3] for item in w.events("started")]
    assert "run 2 started (change): 2 videos (+1 -0)" in started[1], started
    output = w.root / w.events("finished")[1][3].rsplit("; output ", 1)[1]
    assert video_id("https://example.org/second.mp4") in output.read_text()
    assert "not-in-use" not in output.read_text()
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(60) == 0
    w.stdout.flush()
    printed = (w.root / "watch.out").read_text()
    assert "watch stopped" in printed
    assert STOP_NOISE not in printed and "Traceback" not in printed, printed


def test_a_deleted_url_file_is_no_change(session):
    """Deleting the URL file never starts a run (a run would see no video); recreating it does."""
    s = session(FakeRunner(), urls_text("a"))
    wait_until(lambda: s.runner.ended, 5, "the initial run")
    s.urls.unlink()
    s.watcher.notify()
    wait_until(lambda: s.events("missing"), 5, "the deletion to be checked")
    time.sleep(0.3)
    assert len(s.runner.calls) == 1
    assert s.lines[-1].endswith(f"watch missing: {s.urls} does not exist; no run")
    s.save(urls_text("a", "b"))
    wait_until(lambda: len(s.runner.ended) == 2, 5, "a run once the file is back")
    assert s.close() == 0
