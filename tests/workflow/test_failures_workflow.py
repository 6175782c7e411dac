"""The failure lifecycle with the real workflow: good videos mixed with every kind of bad URL.

One server on 127.0.0.1 serves good clips (known shapes), a zero-byte file, random bytes, an
audio-only file, an HTML page, a clip shorter than the sampling interval, a clip with no object,
a 404, a transfer that stalls, and a clip that answers 503 to its first request; one more URL
points at a port where nothing listens. Each run uses the README's command.
"""

from __future__ import annotations

import csv
import functools
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from testkit import REPO, Workflow, free_port, new_workflow, wait_until, worker_processes

from framesift.cli.synthetic import Shape, VideoSpec, make_video, serve_handler
from framesift.core.layout import is_staging
from framesift.core.media import ffmpeg_binary
from framesift.core.urls import video_id

pytestmark = pytest.mark.slow

SQUARE = Shape("square", 400, 120, 90, 0.0, 9.0)
SQUARE_LOW = Shape("square", 250, 220, 90, 0.0, 9.0)
CIRCLE_TOP_RIGHT = Shape("circle", 460, 40, 100, 0.0, 9.0)
GOOD = {
    "good_sq.mp4": VideoSpec(duration=1.5, background="testsrc2", shapes=(SQUARE,)),
    "flaky.mp4": VideoSpec(
        duration=1.5, background="flat", flat_color="0x604020", shapes=(SQUARE_LOW,)
    ),
    "short.mp4": VideoSpec(
        duration=0.3, background="flat", flat_color="0x208040", shapes=(CIRCLE_TOP_RIGHT,)
    ),
    "nomatch.mp4": VideoSpec(duration=1.5, background="testsrc2"),
}


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Files from a folder, plus /stall.mp4 (stalls mid-transfer) and /flaky.mp4 (503 first)."""

    stop = threading.Event()
    flaky_failures = 1  # how many requests for /flaky.mp4 get a 503 before it is served
    requests: dict[str, int]

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = self.path.split("?")[0]
        self.requests[path] = self.requests.get(path, 0) + 1
        if path == "/stall.mp4":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"\x00" * 1000)
            self.wfile.flush()
            self.stop.wait(30)  # never sends the rest
            return
        if path == "/flaky.mp4" and self.requests[path] <= self.flaky_failures:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _audio_only(path: Path) -> None:
    args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    args += ["-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(path)]
    subprocess.run(args, check=True, capture_output=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, int]]]:
    root = tmp_path_factory.mktemp("failures-served")
    for name, spec in GOOD.items():
        make_video(root / name, spec)
    (root / "zero.mp4").write_bytes(b"")
    (root / "random.mp4").write_bytes(os.urandom(20000))
    _audio_only(root / "audio.mp4")
    (root / "page.html").write_text("<html><body>not a video</body></html>")
    requests: dict[str, int] = {}
    handler_class = type("_Here", (_Handler,), {"stop": threading.Event(), "requests": requests})
    with serve_handler(functools.partial(handler_class, directory=str(root))) as base:
        yield base, requests
        handler_class.stop.set()


def _config(workflow: Workflow) -> None:
    workflow.config["download"] = {
        "socket_timeout": 3,  # short, for the stalled server; not so short that a busy
        "retries": 0,  # machine's slow answer reads as a stall
        "timeout": 8,
        "job_retries": 0,
    }
    workflow.config["retry"] = {"max_attempts": 2}
    workflow.config["frames"] = {"mode": "fps", "fps": 2.0}
    workflow.config["filter"]["classes"] = ["square", "circle"]


def _status(workflow: Workflow, *args: str) -> tuple[int, dict]:
    command = [sys.executable, "-m", "framesift", "status", "-d", str(workflow.root), *args]
    proc = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=60)
    return proc.returncode, json.loads(proc.stdout)


def _states(workflow: Workflow) -> dict[str, dict]:
    return {row["video_id"]: row for row in _status(workflow)[1]["videos"]}


def _ran(proc: subprocess.CompletedProcess, rule: str) -> set[str]:
    """Video ids of the jobs of ``rule`` that a snakemake run (or dry run) lists."""
    out = proc.stdout + proc.stderr
    blocks = re.findall(rf"rule {rule}:\n(?:    .*\n)*?    wildcards: vid=(\S+)", out)
    return set(blocks)


def _dataset_videos(workflow: Workflow) -> dict[str, int]:
    with open(workflow.path("results/dataset/manifest.csv")) as handle:
        rows = list(csv.DictReader(handle))
    images = [row["image"] for row in rows]
    assert len(images) == len(set(images)), "an image is listed twice"
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["video_id"]] = counts.get(row["video_id"], 0) + 1
    return counts


def _leftovers(workflow: Workflow) -> list[Path]:
    return [p for p in workflow.path("results").rglob(".*") if is_staging(p)]


def test_dataset_always_builds_and_failures_are_retried_then_given_up(
    tmp_path: Path, served: tuple[str, dict[str, int]]
) -> None:
    base, requests = served
    workflow = new_workflow(tmp_path / "run")
    _config(workflow)
    names = [*GOOD, "zero.mp4", "random.mp4", "audio.mp4", "page.html", "missing.mp4"]
    names.append("stall.mp4")
    urls = {name: f"{base}/{name}" for name in names}
    urls["refused"] = f"http://127.0.0.1:{free_port()}/down.mp4"
    ids = {name: video_id(url) for name, url in urls.items()}
    workflow.write_urls(list(urls.values()))

    # run 1: the README's command; every chain completes, so the run succeeds
    first = workflow.run()
    out = first.stdout + first.stderr
    assert "11 videos: 2 done, 8 failed, 0 pending, 1 with no matching frame" in out
    in_dataset = _dataset_videos(workflow)
    assert set(in_dataset) == {ids["good_sq.mp4"], ids["short.mp4"]}
    code, status = _status(workflow)
    assert code == 1  # something failed
    states = {row["video_id"]: row for row in status["videos"]}
    expected = {
        "zero.mp4": ("failed-permanent", "download", "empty response"),
        "random.mp4": ("failed-permanent", "frames", "not a decodable video"),
        "audio.mp4": ("failed-permanent", "frames", "no video stream"),
        "page.html": ("failed-permanent", "download", "not a video page"),
        "missing.mp4": ("failed-permanent", "download", "404"),
        "stall.mp4": ("failed-transient (attempt 1 of 2)", "download", "timed out"),
        "flaky.mp4": ("failed-transient (attempt 1 of 2)", "download", "503"),
        "refused": ("failed-transient (attempt 1 of 2)", "download", "refused"),
        "nomatch.mp4": ("empty", "filter", "no frame shows square, circle"),
        "good_sq.mp4": ("in dataset", "", ""),
        "short.mp4": ("in dataset", "", ""),
    }
    for name, (state, stage, reason) in expected.items():
        row = states[ids[name]]
        assert row["state"] == state, (name, row)
        assert row["stage"] == stage, (name, row)
        assert reason in row["reason"].lower(), (name, row)
        assert row["url"] == urls[name]
    assert states[ids["short.mp4"]]["frames"] == 1  # shorter than the 0.5 s interval: frame 0
    assert states[ids["good_sq.mp4"]]["title"] == "good_sq"
    record_path = workflow.path(f"results/state/download/{ids['stall.mp4']}.json")
    record = json.loads(record_path.read_text())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", record["finished"])
    report = workflow.path("results/report.md").read_text()
    assert ids["zero.mp4"] in report and "failed-transient (attempt 1 of 2)" in report

    # run 2: exactly the transient failures are retried; the flaky server now answers
    dry = workflow.run("-n")
    retried = {ids["stall.mp4"], ids["flaky.mp4"], ids["refused"]}
    assert _ran(dry, "download_video") == retried
    assert _ran(dry, "extract_frames") == retried
    flaky_requests = requests["/flaky.mp4"]
    workflow.run()
    assert requests["/flaky.mp4"] > flaky_requests
    states = _states(workflow)
    assert states[ids["flaky.mp4"]]["state"] == "in dataset"
    for name in ("stall.mp4", "refused"):
        row = states[ids[name]]
        assert row["state"] == "failed-permanent", row
        assert row["reason"].startswith("gave up after 2 attempts:"), row
    assert ids["flaky.mp4"] in _dataset_videos(workflow)

    # run 3: nothing left to retry; the summary line still ends the run
    third = workflow.run()
    assert "Nothing to be done" in third.stdout + third.stderr
    assert "11 videos: 3 done, 7 failed, 0 pending, 1 with no matching frame" in third.stderr
    assert "framesift: report: results/report/index.html" in third.stderr

    # retry-failed --stage frames: the next run redoes exactly those extractions
    command = [sys.executable, "-m", "framesift", "retry-failed", "-d", str(workflow.root)]
    marked = subprocess.run([*command, "--stage", "frames"], capture_output=True, text=True)
    assert marked.returncode == 0, marked.stderr
    assert "2 failed stage(s) will be redone" in marked.stdout
    fourth = workflow.run()
    assert _ran(fourth, "download_video") == set()
    assert _ran(fourth, "extract_frames") == {ids["random.mp4"], ids["audio.mp4"]}
    # one named video, any stage: only its download runs again
    one = subprocess.run([*command, ids["missing.mp4"]], capture_output=True, text=True)
    assert one.returncode == 0 and ids["missing.mp4"] in one.stdout
    fifth = workflow.run()
    assert _ran(fifth, "download_video") == {ids["missing.mp4"]}
    assert _states(workflow)[ids["missing.mp4"]]["state"] == "failed-permanent"

    # a missing URL file: a one-line error before any job, the dataset untouched
    before = _dataset_videos(workflow)
    workflow.config["urls"] = "config/no-such-file.txt"
    missing = workflow.run(check=False)
    assert missing.returncode != 0
    assert "URL file 'config/no-such-file.txt' does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert _dataset_videos(workflow) == before

    # an empty URL file never replaces a non-empty dataset
    workflow.config["urls"] = "config/urls.txt"
    workflow.write_urls(["# emptied by mistake"])
    empty = workflow.run()
    assert "lists no video; the existing dataset (" in empty.stderr
    assert _dataset_videos(workflow) == before
    # ... unless the user asks for it
    workflow.config["dataset"] = {"allow_empty": True}
    workflow.run()
    assert not workflow.path("results/dataset/manifest.csv").read_text().strip().split("\n")[1:]
    # records of URLs no longer in the file are archived, and left out of every report
    assert not list(workflow.path("results/state/download").glob("*.json"))
    assert list(workflow.path("results/state/removed/download").glob("*.json"))
    assert ids["zero.mp4"] not in workflow.path("results/report.md").read_text()


def test_bad_model_or_class_stops_the_run_before_any_download(
    tmp_path: Path, served: tuple[str, dict[str, int]]
) -> None:
    base, _ = served
    workflow = new_workflow(tmp_path / "run")
    _config(workflow)
    workflow.write_urls([f"{base}/good_sq.mp4"])
    workflow.config["filter"]["classes"] = ["dog"]
    proc = workflow.run("--keep-going", check=False)
    assert proc.returncode != 0
    assert "filter.classes: unknown class(es) dog; this model knows: square, circle" in proc.stderr
    assert not workflow.path("results/videos").exists()

    workflow.config["filter"]["classes"] = []
    workflow.config["filter"]["model"] = str(tmp_path / "missing.pt")
    proc = workflow.run("--keep-going", check=False)
    assert proc.returncode != 0
    assert "missing.pt' does not exist: fix filter.model" in proc.stderr
    assert not workflow.path("results/videos").exists()


def test_replacing_the_model_file_reruns_the_filter(
    tmp_path: Path, served: tuple[str, dict[str, int]], shapes_model: Path
) -> None:
    base, _ = served
    workflow = new_workflow(tmp_path / "run")
    _config(workflow)
    model = tmp_path / "my.pt"
    model.write_bytes(shapes_model.read_bytes())
    workflow.config["filter"]["model"] = str(model)
    workflow.write_urls([f"{base}/good_sq.mp4"])
    workflow.run("filtered")
    # "retrained": the same path, new contents
    checkpoint = torch.load(model, weights_only=False)
    checkpoint["date"] = "retrained"
    torch.save(checkpoint, model)
    dry = workflow.run("-n", "filtered")
    ids = {video_id(f"{base}/good_sq.mp4")}
    assert _ran(dry, "filter_frames") == ids
    assert _ran(dry, "download_video") == set() and _ran(dry, "extract_frames") == set()
    assert "rule check_model:" in dry.stdout


def test_a_broken_detector_is_a_transient_failure_not_empty(
    tmp_path: Path, served: tuple[str, dict[str, int]]
) -> None:
    """A device that is not there makes every batch raise: that is a detector fault."""
    base, _ = served
    workflow = new_workflow(tmp_path / "run")
    _config(workflow)
    workflow.config["filter"]["device"] = "cuda:7"  # no such GPU here
    url = f"{base}/short.mp4"
    workflow.write_urls([url])
    workflow.run()
    row = _states(workflow)[video_id(url)]
    assert row["state"] == "failed-transient (attempt 1 of 2)", row
    assert row["stage"] == "filter" and "the detector failed" in row["reason"], row
    # the fix: the right device, and the next run retries it
    workflow.config["filter"]["device"] = "cpu"
    workflow.run()
    assert _states(workflow)[video_id(url)]["state"] == "in dataset"


def test_sigkill_mid_run_then_the_documented_recovery_completes(
    tmp_path: Path, served: tuple[str, dict[str, int]]
) -> None:
    base, _ = served
    workflow = new_workflow(tmp_path / "run")
    _config(workflow)
    names = ["good_sq.mp4", "nomatch.mp4"]
    workflow.write_urls([f"{base}/{name}" for name in names])
    workflow.write_config()
    command = [*workflow.snakemake_command(), "--cores", "2", "--resources=gpu=1"]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    filtered = workflow.path("results/filtered")
    while time.monotonic() < deadline and not (filtered.is_dir() and any(filtered.iterdir())):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert not workflow.path("results/dataset").exists()
    # the detection worker is not in Snakemake's process group: it follows its run on its own
    assert wait_until(lambda: not worker_processes(workflow.root), 10)
    assert not list(workflow.path(".framesift").glob("*.sock"))

    # README, "When things fail": unlock, then run again with --rerun-incomplete
    workflow.run("--unlock")
    workflow.run("--rerun-incomplete")
    counts = _dataset_videos(workflow)
    assert set(counts) == {video_id(f"{base}/good_sq.mp4")}
    assert _leftovers(workflow) == []
    assert os.path.exists(REPO / "Snakefile")


def _kill_first_worker(root: Path, killed: list[int], seconds: float = 180) -> None:
    """SIGKILL the first detection worker that appears in ``root``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not killed:
        for pid in worker_processes(root):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        time.sleep(0.02)


def test_a_worker_killed_mid_run_is_transient_and_the_rerun_completes(
    tmp_path: Path, served: tuple[str, dict[str, int]]
) -> None:
    """The shared worker dies while filter jobs wait on it: they are transient failures (never
    "no frame matched"), the dataset still builds, and the next run completes them."""
    base, _ = served
    workflow = new_workflow(tmp_path / "run")
    _config(workflow)
    ids = {name: video_id(f"{base}/{name}") for name in ("good_sq.mp4", "short.mp4")}
    workflow.write_urls([f"{base}/{name}" for name in ids])
    workflow.run("frames")  # downloads and frames; check_model's worker ends with that run
    assert wait_until(lambda: not worker_processes(workflow.root), 10)

    killed: list[int] = []
    killer = threading.Thread(target=_kill_first_worker, args=(workflow.root, killed))
    killer.start()
    workflow.run()
    killer.join()
    assert killed
    states = _states(workflow)
    hit = [vid for vid, row in states.items() if row["state"].startswith("failed-transient")]
    assert hit, states
    for vid in hit:
        assert states[vid]["stage"] == "filter", states[vid]
        assert "detection worker" in states[vid]["reason"], states[vid]
    assert not [row for row in states.values() if row["state"] == "empty"], states
    assert workflow.path("results/dataset/data.yaml").exists()

    workflow.run()
    states = _states(workflow)
    assert {row["state"] for row in states.values()} == {"in dataset"}, states
    assert set(_dataset_videos(workflow)) == set(ids.values())
    assert wait_until(lambda: not worker_processes(workflow.root), 10)


def test_sigterm_of_snakemake_leaves_no_worker(
    tmp_path: Path, served: tuple[str, dict[str, int]]
) -> None:
    """Stopping Snakemake (SIGTERM, escalated to SIGKILL if it hangs) mid-run: the worker
    follows it and removes its socket."""
    base, _ = served
    workflow = new_workflow(tmp_path / "run")
    _config(workflow)
    workflow.write_urls([f"{base}/good_sq.mp4"])
    workflow.write_config()
    command = [*workflow.snakemake_command(), "--cores", "2", "--resources=gpu=1"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: worker_processes(workflow.root), 180)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()  # FACTS: a loaded machine can hang Snakemake after SIGTERM
            proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_until(lambda: not worker_processes(workflow.root), 10)
    assert not list(workflow.path(".framesift").glob("*.sock"))
