"""Downloads in the real workflow: concurrent downloads are bounded (politeness to the site) with
the README's plain command, and `--resources downloads=N` changes the bound."""

from __future__ import annotations

import http.server
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import Workflow

from framesift.cli.synthetic import serve_handler
from framesift.stages.download import DEFAULT_DOWNLOADS

pytestmark = pytest.mark.slow

URLS = 12


def _closed_within(connection: socket.socket, seconds: float) -> bool:
    """Wait up to ``seconds``; whether the client closed its end meanwhile."""
    readable, _, _ = select.select([connection], [], [], seconds)
    return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""


class _ConcurrencyCounter(http.server.BaseHTTPRequestHandler):
    """Serves one clip to every path, slowly (about 1 s a request), and records the peak number
    of videos (distinct paths) that had a connection open at once. (Counted per video, not per
    connection: yt-dlp's probe of a direct link is closed just as its download opens, and the
    probe's handler notices that a scheduling tick later.)"""

    video = b""
    lock = threading.Lock()
    open_per_path: dict[str, int]
    peak = 0

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        cls = type(self)
        with cls.lock:
            cls.open_per_path[self.path] = cls.open_per_path.get(self.path, 0) + 1
            cls.peak = max(cls.peak, sum(1 for n in cls.open_per_path.values() if n))
        try:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(self.video)))
            self.end_headers()
            step = max(1, len(self.video) // 8)
            for start in range(0, len(self.video), step):
                self.wfile.write(self.video[start : start + step])
                self.wfile.flush()
                if _closed_within(self.connection, 0.12):
                    return
        except OSError:
            pass
        finally:
            with cls.lock:
                cls.open_per_path[self.path] -= 1

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def counting_server(video_dir: Path) -> Iterator[type[_ConcurrencyCounter]]:
    handler = type("Counter", (_ConcurrencyCounter,), {"open_per_path": {}})
    handler.video = (video_dir / "gamma.mp4").read_bytes()
    with serve_handler(handler) as base:
        handler.base = base
        yield handler


def _download_all(workflow: Workflow, handler, *args: str) -> None:
    workflow.write_urls([f"{handler.base}/v{i:02d}.mp4" for i in range(URLS)])
    workflow.run("--cores", "8", "--until", "download_video", *args, timeout=300)
    videos = sorted(workflow.path("results/videos").glob("*.mp4"))
    assert len(videos) == URLS and all(v.read_bytes() == handler.video for v in videos)


def test_default_bound_holds_under_many_cores(workflow: Workflow, counting_server) -> None:
    """`--cores 8 --resources gpu=1` (no downloads=N) opens at most 4 connections at once."""
    _download_all(workflow, counting_server)
    assert DEFAULT_DOWNLOADS == 4
    assert 2 <= counting_server.peak <= DEFAULT_DOWNLOADS, counting_server.peak


def test_resources_downloads_sets_the_bound(workflow: Workflow, counting_server) -> None:
    _download_all(workflow, counting_server, "--resources=downloads=1")
    assert counting_server.peak == 1


def test_a_missing_js_runtime_stops_the_run_in_one_line(workflow: Workflow, server: str) -> None:
    workflow.config["download"]["js_runtime"] = "/nonexistent/deno"
    workflow.write_urls([f"{server}/gamma.mp4"])
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if "download.js_runtime" in line]
    assert lines and "'/nonexistent/deno' is not an executable file" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not workflow.path("results/videos").exists()
