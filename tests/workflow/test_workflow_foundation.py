"""The download + frames half of the workflow, run with the real Snakemake, yt-dlp and ffmpeg.

Targets are ``frames`` (every URL's frames folder) so these tests do not depend on the later
stages. The videos come from the session ``server`` (conftest): alpha 3 s, beta/gamma/delta 2 s.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from testkit import Workflow, free_port

from framesift.core.urls import video_id
from framesift.stages.frames import MANIFEST, read_manifest

FPS2_3S = [0, 500, 1000, 1500, 2000, 2500]  # fps 2 on alpha (3 s)
FPS2_2S = [0, 500, 1000, 1500]  # fps 2 on beta/gamma/delta (2 s)


def _output(proc) -> str:
    return f"{proc.stdout}\n{proc.stderr}"


def _job_counts(text: str) -> dict[str, int]:
    """The first 'Job stats' table of a snakemake run or dry run: rule → job count."""
    match = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+\d+", text, re.S)
    if not match:
        return {}
    rows = (line.split() for line in match.group(1).splitlines() if line.strip())
    return {row[0]: int(row[1]) for row in rows}


def _frames(workflow: Workflow, vid: str) -> list[int]:
    """Timestamps of ``vid``'s frames, checking the manifest lists exactly the jpg files."""
    folder = workflow.path(f"results/frames/{vid}")
    frames = read_manifest(folder / MANIFEST)
    jpgs = sorted(p.name for p in folder.glob("*.jpg"))
    assert sorted(f.file for f in frames) == jpgs
    assert all(name.startswith(f"{vid}_") for name in jpgs)
    return [f.timestamp_ms for f in frames]


def _record(workflow: Workflow, stage: str, vid: str) -> dict:
    return json.loads(workflow.path(f"results/state/{stage}/{vid}.json").read_text())


def _mtimes(folder: Path) -> dict[str, int]:
    """Modification times of the files (not folders) under ``folder``."""
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.slow
def test_good_and_bad_urls_in_one_run(workflow: Workflow, server: str) -> None:
    refused = f"http://127.0.0.1:{free_port()}/gone.mp4"
    shell_text = f"{server}/delta.mp4?q=$(touch${{IFS}}pwned)&r=`touch${{IFS}}pwned2`;x|y"
    lines = [
        "# test videos",
        f"{server}/alpha.mp4",
        f"  {server}/beta.mp4  ",
        shell_text,  # a URL is data: fetched verbatim, never seen by a shell
        f"{server}/missing.mp4",  # 404
        f"{server}/page.html",  # not a video
        refused,  # nothing listening
        f"{server}/corrupt.mp4",  # downloads, does not decode
        "ftp://example.com/x.mp4",  # line 9: malformed
        "",
        f"{server}/alpha.mp4",  # duplicate line
        f"{server}/beta.mp4#again",  # same video, with a fragment
    ]
    workflow.write_urls(lines)
    proc = workflow.run("-k", "frames")
    out = _output(proc)

    ids = {name: video_id(f"{server}/{name}") for name in ("alpha.mp4", "beta.mp4")}
    ids["delta"] = video_id(shell_text)
    for name in ("missing.mp4", "page.html", "corrupt.mp4"):
        ids[name] = video_id(f"{server}/{name}")
    ids["refused"] = video_id(refused)
    assert _job_counts(out)["download_video"] == 7  # duplicates fetched once, bad line skipped

    assert _frames(workflow, ids["alpha.mp4"]) == FPS2_3S
    assert _frames(workflow, ids["beta.mp4"]) == FPS2_2S
    assert _frames(workflow, ids["delta"]) == FPS2_2S
    assert not list(workflow.root.rglob("pwned*"))

    expected = {
        "missing.mp4": ("download", "permanent", "404"),
        "page.html": ("download", "permanent", "not a video page"),
        "refused": ("download", "transient", "refused"),
        "corrupt.mp4": ("frames", "permanent", "not a decodable video"),
    }
    for key, (stage, outcome, reason) in expected.items():
        vid = ids[key]
        record = _record(workflow, stage, vid)
        assert record["video_id"] == vid and record["stage"] == stage
        assert record["outcome"] == outcome
        assert reason in record["reason"].lower()
        assert record["url"].endswith(key if key != "refused" else ".mp4"), record
        assert _frames(workflow, vid) == []  # a completed, empty chain
        assert vid in out  # the run summary names it
    failed = {
        p.stem
        for p in workflow.path("results/state").glob("*/*.json")
        if json.loads(p.read_text())["outcome"] in ("transient", "permanent")
    }
    assert failed == {ids[key] for key in expected}
    assert "config/urls.txt:9: not an http(s) URL" in out


@pytest.mark.slow
def test_frame_mode_from_config_and_mode_change_reextracts_only(
    workflow: Workflow, server: str
) -> None:
    workflow.write_urls([f"{server}/alpha.mp4"])
    vid = video_id(f"{server}/alpha.mp4")
    workflow.config["frames"] = {"mode": "interval", "interval": 1.0}
    workflow.run("frames")
    assert _frames(workflow, vid) == [0, 1000, 2000]
    video = workflow.path(f"results/videos/{vid}.mp4")
    downloaded = video.stat().st_mtime_ns

    # make_video's GOP is 2 s; a settings change re-extracts without downloading again
    workflow.config["frames"] = {"mode": "keyframes", "max_width": 80}
    counts = _job_counts(_output(workflow.run("frames")))
    assert counts == {"extract_frames": 1, "frames": 1}, counts
    assert _frames(workflow, vid) == [0, 2000]
    assert video.stat().st_mtime_ns == downloaded
    folder = workflow.path(f"results/frames/{vid}")
    assert {Image.open(p).size for p in folder.glob("*.jpg")} == {(80, 46)}


@pytest.mark.slow
def test_incremental_reruns(workflow: Workflow, server: str, video_dir: Path) -> None:
    urls = [f"{server}/alpha.mp4", f"{server}/beta.mp4"]
    alpha, beta = (video_id(url) for url in urls)
    workflow.write_urls(urls)
    workflow.run("frames")
    results = workflow.path("results")

    # 1. nothing changed: nothing to do
    again = _output(workflow.run("frames"))
    assert "Nothing to be done" in again

    # 2. a changed video: only its frames are extracted again. (Content, not just mtime:
    # Snakemake 9 checksums inputs under 1 MB and skips mtime-only changes, so a bare
    # `touch` of these small clips would rerun nothing.)
    before = _mtimes(results)
    video = results / f"videos/{alpha}.mp4"
    video.write_bytes(video_dir.joinpath("gamma.mp4").read_bytes())  # 2 s instead of 3 s
    later = time.time() + 1
    os.utime(video, (later, later))
    out = _output(workflow.run("frames"))
    assert _job_counts(out) == {"extract_frames": 1, "frames": 1}, out
    assert f"wildcards: vid={alpha}" in out and f"wildcards: vid={beta}" not in out
    after = _mtimes(results)
    changed = {path for path in after if before.get(path) != after[path]}
    assert changed - {f"videos/{alpha}.mp4"}, "frames were re-extracted"
    allowed = (f"videos/{alpha}.mp4", f"state/frames/{alpha}.json")  # the job's own record
    assert all(path in allowed or path.startswith(f"frames/{alpha}") for path in changed), [
        p for p in changed if not (p in allowed or p.startswith(f"frames/{alpha}"))
    ]
    assert _frames(workflow, alpha) == FPS2_2S

    # 3. a new URL: only that video is downloaded and extracted
    gamma = video_id(f"{server}/gamma.mp4")
    workflow.write_urls([*urls, f"{server}/gamma.mp4"])
    dry = _output(workflow.run("frames", "-n"))
    counts = _job_counts(dry)
    assert counts["download_video"] == 1 and counts["extract_frames"] == 1, counts
    assert f"wildcards: vid={gamma}" in dry
    before = _mtimes(results)
    workflow.run("frames")
    after = _mtimes(results)
    assert {path: before[path] for path in before} == {path: after[path] for path in before}
    assert _frames(workflow, gamma) == FPS2_2S


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ({"fps": "fast"}, "config key frames.fps: 'fast' is not of type 'number'"),
        ({"mode": "bogus"}, "config key frames.mode: 'bogus' is not one of fps, interval"),
        ({"fsp": 2.0}, "config: unknown key frames.fsp; allowed here: mode, fps"),
    ],
    ids=["wrong-type", "unknown-mode", "unknown-key"],
)
def test_bad_config_fails_with_a_short_message_naming_the_key(
    workflow: Workflow, frames: dict, message: str
) -> None:
    workflow.write_urls([])
    workflow.config["frames"] = frames
    proc = workflow.run("frames", "-n", check=False)
    out = _output(proc)
    assert proc.returncode != 0
    lines = out.strip().splitlines()
    assert lines[1].startswith(message), out  # line 1 says where, line 2 what is wrong
    assert len(lines) <= 4, out
    assert not workflow.path("results").exists()


class _Flaky(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, or answers 503 to everything while ``broken`` is set."""

    broken = threading.Event()

    def _answered_503(self) -> bool:
        """Send a 503 while ``broken`` is set; True when it did."""
        if not self.broken.is_set():
            return False
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if not self._answered_503():
            super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        if not self._answered_503():
            super().do_HEAD()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def flaky_server(video_dir: Path) -> Iterator[tuple[str, threading.Event]]:
    """(base URL, ``broken`` switch) of a server that answers 503 while the switch is set."""
    handler_class = type("_FlakyHere", (_Flaky,), {"broken": threading.Event()})
    handler = functools.partial(handler_class, directory=str(video_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler_class.broken
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.slow
def test_transient_failure_is_retried_in_run_then_on_the_next_run(
    workflow: Workflow, server: str, flaky_server: tuple[str, threading.Event]
) -> None:
    flaky_base, broken = flaky_server
    flaky_url, good_url = f"{flaky_base}/beta.mp4", f"{server}/alpha.mp4"
    flaky, good = video_id(flaky_url), video_id(good_url)
    workflow.write_urls([flaky_url, good_url])
    workflow.config["download"]["job_retries"] = 1  # Snakemake's own in-run retry

    broken.set()
    proc = workflow.run("frames")  # no -k needed: the failed chain completes empty
    out = _output(proc)
    assert out.count("in-run attempt 1 of 2, Snakemake retries it") == 1
    assert _frames(workflow, good) == FPS2_3S
    record = _record(workflow, "download", flaky)
    assert record["outcome"] == "transient" and "503" in record["reason"]
    assert record["attempts"] == 1 and record["url"] == flaky_url
    assert flaky in out and "failed-transient (attempt 1 of 3)" in out
    assert workflow.path(f"results/videos/{flaky}.mp4").stat().st_size == 0  # placeholder
    assert _frames(workflow, flaky) == []

    broken.clear()
    workflow.run("frames")
    assert _frames(workflow, flaky) == FPS2_2S
    record = _record(workflow, "download", flaky)
    assert record["outcome"] == "done" and record["generation"] == 1
    assert "Nothing to be done" in _output(workflow.run("frames"))  # a success stays done


def test_unwritable_results_folder_is_one_line_naming_it(workflow: Workflow, server: str) -> None:
    """An immutable results folder (chattr +i: unwritable even for root) or, where the
    filesystem has no such flag, a file in its place: one line naming it, no traceback."""
    import shutil
    import subprocess

    workflow.write_urls([f"{server}/alpha.mp4"])
    results = workflow.path("results")
    results.mkdir()
    immutable = bool(shutil.which("chattr")) and (
        subprocess.run(["chattr", "+i", str(results)], capture_output=True).returncode == 0
    )
    if not immutable:
        results.rmdir()
        results.write_text("not a folder")
    try:
        proc = workflow.run("frames", check=False)
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(results)], check=True)
    out = _output(proc)
    assert proc.returncode != 0
    assert "framesift: cannot write to the results folder 'results'" in out, out
    assert "Traceback" not in out
    assert not workflow.path("logs/download_video").exists()  # stopped before any job


def test_first_run_with_an_empty_url_file_says_what_to_do(workflow: Workflow) -> None:
    workflow.write_urls(["# paste video URLs here"])
    proc = workflow.run()
    hint = "config/urls.txt lists no video: add video URLs there (one per line), or run `make demo`"
    assert hint in proc.stderr
    assert proc.returncode == 0
    assert not workflow.path("results/dataset").exists()
    assert not workflow.path("results/state/model.json").exists()  # no job did any work


class _Stall(http.server.BaseHTTPRequestHandler):
    """Announces a video and never sends it (keeps a download, and so a run, busy)."""

    started = threading.Event()
    release = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.started.set()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.release.wait(60)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.mark.slow
def test_a_run_refused_by_the_lock_prints_no_false_summary(workflow: Workflow) -> None:
    """A second run while the first holds the lock: Snakemake refuses it, and framesift says
    that nothing ran instead of '1 video: 0 done, 0 failed, 1 pending'."""
    import subprocess

    from framesift.cli.synthetic import serve_handler

    _Stall.started.clear()
    _Stall.release.clear()
    with serve_handler(_Stall) as base:
        workflow.write_urls([f"{base}/busy.mp4"])
        workflow.write_config()
        first = subprocess.Popen(
            [*workflow.snakemake_command(), "--cores", "2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert _Stall.started.wait(120), "the first run never started its download"
            second = workflow.run(check=False)
        finally:
            first.terminate()
            _Stall.release.set()
            first.wait(timeout=120)
    out = _output(second)
    assert second.returncode != 0
    assert "framesift: another run of this workflow holds its lock: nothing ran" in out
    assert "1 video: 0 done" not in out and "pending" not in out
