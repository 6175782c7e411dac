"""Downloads (framesift.download) with the real yt-dlp against servers on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import yt_dlp
from conftest import free_port

from framesift.download import (
    DownloadFailed,
    DownloadOptions,
    download_video,
    format_selector,
    ydl_options,
)
from framesift.synthetic import serve_handler

FAST = DownloadOptions(socket_timeout=5, retries=0, timeout=60)


@pytest.fixture(scope="module", autouse=True)
def _warm_yt_dlp(server: str) -> None:
    """Let yt-dlp import its extractors and compile their URL patterns once, in this process:
    each download runs in a forked child that inherits them (saves ~1 s per test)."""
    from framesift.download import _ListLogger

    params = {"quiet": True, "logger": _ListLogger()}
    with yt_dlp.YoutubeDL(params) as ydl, suppress(yt_dlp.utils.DownloadError):
        ydl.extract_info(f"{server}/page.html", download=False)


def _download(url: str, out: Path, opts: DownloadOptions = FAST, vid: str = "vid"):
    return download_video(url, vid, out / f"{vid}.mp4", out / f"{vid}.info.json", opts)


def _failure(url: str, out: Path, opts: DownloadOptions = FAST) -> DownloadFailed:
    with pytest.raises(DownloadFailed) as caught:
        _download(url, out, opts)
    failure = caught.value
    assert failure.reason == str(failure) and failure.reason.strip()
    assert "\n" not in failure.reason
    assert list(out.iterdir()) == [], "a failed download leaves nothing behind"
    return failure


class _Unavailable(http.server.BaseHTTPRequestHandler):
    """Every request: 503 Service Unavailable."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        body = b"try again later"
        self.send_response(503)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _trickle_handler(video: bytes, chunk: int, pause: float):
    """A handler that announces ``video`` and then sends it ``chunk`` bytes every ``pause`` s."""

    class _Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(video)))
            self.end_headers()
            if self.command == "HEAD":
                return
            try:
                for start in range(0, len(video), chunk):
                    self.wfile.write(video[start : start + chunk])
                    self.wfile.flush()
                    time.sleep(pause)
            except OSError:
                pass

        do_HEAD = do_GET

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return _Trickle


@pytest.fixture
def stalling_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_success_writes_video_and_metadata(server: str, video_dir: Path, tmp_path: Path) -> None:
    url = f"{server}/alpha.mp4"
    meta, log = _download(url, tmp_path, vid="alpha-1234")
    video = tmp_path / "alpha-1234.mp4"
    assert video.read_bytes() == (video_dir / "alpha.mp4").read_bytes()
    info = json.loads((tmp_path / "alpha-1234.info.json").read_text())
    assert info == json.loads(json.dumps(meta))
    assert info["video_id"] == "alpha-1234"
    assert info["url"] == url and info["webpage_url"] == url
    assert info["title"] == "alpha"
    assert info["source_id"] == "alpha"  # yt-dlp's own id: the stem, hence our own ids
    assert info["extractor"] == "generic" and info["ext"] == "mp4"
    assert isinstance(log, list)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpha-1234.info.json", "alpha-1234.mp4"]


def test_url_with_shell_metacharacters_is_fetched_verbatim(
    server: str, video_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"{server}/beta.mp4?q=$(touch${{IFS}}pwned)&r=`touch${{IFS}}pwned2`;touch|x"
    out = tmp_path / "out"
    out.mkdir()
    meta, _ = _download(url, out)
    assert meta["url"] == url
    assert (out / "vid.mp4").read_bytes() == (video_dir / "beta.mp4").read_bytes()
    assert not list(tmp_path.glob("pwned*"))


def test_http_404_is_permanent(server: str, tmp_path: Path) -> None:
    failure = _failure(f"{server}/no-such-video.mp4", tmp_path)
    assert failure.permanent
    assert "404" in failure.reason


def test_html_page_is_permanent_not_a_video_page(server: str, tmp_path: Path) -> None:
    failure = _failure(f"{server}/page.html", tmp_path)
    assert failure.permanent
    assert failure.reason.startswith("not a video page")


def test_zero_byte_file_is_permanent(tmp_path: Path) -> None:
    """An empty response is never a video: retrying it would only repeat the failure."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "zero.mp4").write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    from framesift.synthetic import serve_directory

    with serve_directory(served) as base:
        failure = _failure(f"{base}/zero.mp4", out)
    assert failure.permanent
    assert failure.reason.startswith("empty response")


def test_connection_refused_is_transient(tmp_path: Path) -> None:
    """Nothing listening may be a server that is down for now: retried on later runs."""
    started = time.monotonic()
    failure = _failure(f"http://127.0.0.1:{free_port()}/alpha.mp4", tmp_path)
    assert not failure.permanent
    assert "refused" in failure.reason.lower()
    assert time.monotonic() - started < 15


def test_http_503_is_transient(tmp_path: Path) -> None:
    with serve_handler(_Unavailable) as base:
        failure = _failure(f"{base}/alpha.mp4", tmp_path)
    assert not failure.permanent
    assert "503" in failure.reason


def test_stalled_server_hits_the_socket_timeout_and_is_transient(
    stalling_server: str, tmp_path: Path
) -> None:
    opts = DownloadOptions(socket_timeout=1, retries=0, timeout=3)
    started = time.monotonic()
    failure = _failure(f"{stalling_server}/alpha.mp4", tmp_path, opts)
    assert time.monotonic() - started < 8
    assert not failure.permanent
    assert "timed out" in failure.reason.lower()


def test_stalled_server_is_bounded_by_the_overall_timeout(
    stalling_server: str, tmp_path: Path
) -> None:
    """A long per-read timeout does not help yt-dlp: the whole call is bounded by ``timeout``."""
    opts = DownloadOptions(socket_timeout=60, retries=0, timeout=2)
    started = time.monotonic()
    failure = _failure(f"{stalling_server}/alpha.mp4", tmp_path, opts)
    assert 2 <= time.monotonic() - started < 8
    assert not failure.permanent
    assert "download.timeout" in failure.reason


def test_interrupted_transfer_leaves_no_part_file_or_workdir(
    video_dir: Path, tmp_path: Path
) -> None:
    """A transfer that keeps trickling is killed at ``timeout``; its ``.part`` file goes too."""
    video = (video_dir / "alpha.mp4").read_bytes()
    seen_part = threading.Event()
    stop = threading.Event()

    def watch() -> None:  # proves the download really was half-way when it was stopped
        while not stop.is_set():
            if any(p.name.endswith(".part") for p in tmp_path.rglob("*")):
                seen_part.set()
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    opts = DownloadOptions(socket_timeout=10, retries=0, timeout=2)
    handler = _trickle_handler(video, chunk=256, pause=0.2)
    try:
        with serve_handler(handler) as base:
            started = time.monotonic()
            failure = _failure(f"{base}/slow.mp4", tmp_path, opts)
            elapsed = time.monotonic() - started
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert seen_part.is_set()
    assert not failure.permanent
    assert elapsed < 8
    assert list(tmp_path.rglob("*")) == []


def test_failure_does_not_touch_other_videos(server: str, tmp_path: Path) -> None:
    _download(f"{server}/gamma.mp4", tmp_path, vid="gamma")
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    with pytest.raises(DownloadFailed):
        _download(f"{server}/missing.mp4", tmp_path, vid="missing")
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_format_selector() -> None:
    assert format_selector(720, "mp4") == (
        "bv*[height<=720][ext=mp4]+ba[ext=m4a]/b[height<=720][ext=mp4]"
        "/bv*[height<=720]+ba/b[height<=720]/bv*+ba/b"
    )
    webm = format_selector(480, "webm")
    assert webm.startswith("bv*[height<=480][ext=webm]+ba[ext=webm]/")
    mkv = format_selector(1080, "mkv")  # no native mkv streams: no container preference
    assert "+ba[ext=" not in mkv and mkv.startswith("b[height<=1080][ext=mkv]/")
    unlimited = format_selector(0, "mp4")
    assert "height" not in unlimited
    for selector in (webm, mkv, unlimited):
        assert selector.endswith("/bv*+ba/b")  # always falls back to something


def test_ydl_options(tmp_path: Path) -> None:
    opts = DownloadOptions(
        max_height=360, socket_timeout=7, retries=2, rate_limit="1.5M", proxy="socks5://h:1"
    )
    params = ydl_options(opts, tmp_path, logger=None)
    assert params["format"] == format_selector(360, "mp4")
    assert params["outtmpl"] == str(tmp_path / "video.%(ext)s")
    assert params["noplaylist"] is True
    assert params["socket_timeout"] == 7 and params["retries"] == 2
    assert params["ratelimit"] == int(1.5 * 1024**2)
    assert params["proxy"] == "socks5://h:1"
    assert "cookiefile" not in params  # unset options are not passed at all
