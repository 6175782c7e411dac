"""Downloads (framesift.stages.download) with the real yt-dlp against servers on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import yt_dlp
from testkit import free_port

from framesift.cli.synthetic import serve_handler
from framesift.core.config import settings_for
from framesift.core.settings import DownloadSettings
from framesift.stages.download import (
    DownloadFailed,
    download_video,
    format_selector,
    ydl_options,
)
from framesift.stages.extractors import cannot_match, first_suitable, may_match, new_downloader


def options(**download) -> DownloadSettings:
    """Download settings: the schema's defaults, with ``download`` over them."""
    return settings_for({"download": download}).download


FAST = options(socket_timeout=5, retries=0, timeout=60)


@pytest.fixture(scope="module", autouse=True)
def _warm_yt_dlp(server: str) -> None:
    """Let yt-dlp import itself and its generic extractor (and compile every URL pattern) once,
    in this process: each download runs in a forked child that inherits them."""
    from framesift.stages.download import _ListLogger

    params = {"quiet": True, "logger": _ListLogger()}
    with yt_dlp.YoutubeDL(params) as ydl, suppress(yt_dlp.utils.DownloadError):
        ydl.extract_info(f"{server}/page.html", download=False)


def _download(url: str, out: Path, opts: DownloadSettings = FAST, vid: str = "vid"):
    return download_video(url, vid, out / f"{vid}.mp4", out / f"{vid}.info.json", opts)


def _failure(url: str, out: Path, opts: DownloadSettings = FAST) -> DownloadFailed:
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
    # yt-dlp knows nothing of a direct file's duration and size: read from the file by ffmpeg
    assert info["duration"] == pytest.approx(3.0, abs=0.15)
    assert (info["width"], info["height"], info["fps"]) == (160, 90, 10.0)
    assert isinstance(log, list)
    assert not [line for line in log if "is ignored" in line], log  # no "--paths is ignored"
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
    from framesift.cli.synthetic import serve_directory

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
    opts = options(socket_timeout=1, retries=0, timeout=3)
    started = time.monotonic()
    failure = _failure(f"{stalling_server}/alpha.mp4", tmp_path, opts)
    assert time.monotonic() - started < 8
    assert not failure.permanent
    assert "timed out" in failure.reason.lower()


def test_stalled_server_is_bounded_by_the_overall_timeout(
    stalling_server: str, tmp_path: Path
) -> None:
    """A long per-read timeout does not help yt-dlp: the whole call is bounded by ``timeout``."""
    opts = options(socket_timeout=60, retries=0, timeout=2)
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
    opts = options(socket_timeout=10, retries=0, timeout=2)
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
    opts = options(
        max_height=360, socket_timeout=7, retries=2, rate_limit="1.5M", proxy="socks5://h:1"
    )
    params = ydl_options(opts, tmp_path, logger=None)
    assert params["format"] == format_selector(360, "mp4")
    # relative to paths.home: an absolute template makes yt-dlp log "--paths is ignored"
    assert params["outtmpl"] == "video.%(ext)s"
    assert params["paths"] == {"home": str(tmp_path), "temp": str(tmp_path)}
    assert params["noplaylist"] is True
    assert params["socket_timeout"] == 7 and params["retries"] == 2
    assert params["ratelimit"] == int(1.5 * 1024**2)
    assert params["proxy"] == "socks5://h:1"
    assert "cookiefile" not in params  # unset options are not passed at all


def _yt_dlps_choice(ydl: yt_dlp.YoutubeDL, url: str) -> str | None:
    """What ``extract_info`` does without ``ie_key``: the first suitable extractor."""
    return next((key for key, ie in ydl._ies.items() if ie.suitable(url)), None)


def test_new_downloader_registers_the_default_extractors_in_order() -> None:
    params = {"quiet": True, "logger": None}
    assert list(new_downloader(params)._ies.items()) == list(yt_dlp.YoutubeDL(params)._ies.items())


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/clip.mp4",
        "https://example.com/videos/clip.mp4?x=1#t=2",
        "HTTPS://EXAMPLE.COM/CLIP.MP4",
        "https://www.youtube.com/watch?v=BaW_jenozKc",
        "https://youtu.be/BaW_jenozKc",
        "https://www.youtube.com/playlist?list=PLwP_SiAcdui0KVebT0mU9Apz359a4ubsC",
        "https://www.youtube.com/watch?v=BaW_jenozKc&list=PLwP_SiAcdui0KVebT0mU9Apz359a4ubsC",
        "https://vimeo.com/76979871",
        "https://player.vimeo.com/video/76979871",
        "https://www.dailymotion.com/video/x5kesuj",
        "https://DAI.LY/x5kesuj",
        "https://www.twitch.tv/videos/6528877",
        "https://archive.org/details/XD300-23_68HighlightsAResearchCntAugHumanIntellect",
        "https://example.com/\u017f\u212a.mp4",  # non-ASCII letters that fold to s and k
        "ytsearch:framesift",
        "not a url",
    ],
)
def test_first_suitable_is_the_extractor_yt_dlp_picks(url: str) -> None:
    ydl = new_downloader({"quiet": True})
    assert first_suitable(ydl, url) == _yt_dlps_choice(ydl, url)


def test_when_yt_dlp_internals_move_yt_dlp_chooses_itself(server: str, tmp_path: Path) -> None:
    """A yt-dlp whose downloader has no ``_ies`` mapping and whose extractor classes lose their
    pattern: the speed-up steps aside and the download still works (yt-dlp picks)."""

    renamed = yt_dlp.YoutubeDL({"quiet": True})  # a real downloader, its extractor table gone
    del renamed._ies
    assert first_suitable(renamed, f"{server}/gamma.mp4") is None

    class NoPattern(yt_dlp.extractor.generic.GenericIE):
        _VALID_URL = None

    assert not cannot_match(NoPattern, f"{server}/gamma.mp4", set())
    meta, _ = _download(f"{server}/gamma.mp4", tmp_path)
    assert meta["extractor"] == "generic"


def test_first_suitable_compiles_few_url_patterns() -> None:
    """For a plain file URL (Generic's) yt-dlp would compile every extractor's pattern; here
    (a fresh process: this one compiled them all) far fewer are compiled."""
    code = (
        "from framesift.stages.download import first_suitable, new_downloader\n"
        "ydl = new_downloader({'quiet': True})\n"
        "key = first_suitable(ydl, 'http://127.0.0.1:8000/clip.mp4')\n"
        "classes = {ie if isinstance(ie, type) else type(ie) for ie in ydl._ies.values()}\n"
        "print(key, sum('_VALID_URL_RE' in vars(c) for c in classes), len(classes))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    key, compiled, total = out.stdout.split()
    assert key == "Generic"
    assert int(total) > 1000 and int(compiled) < int(total) // 5


# (pattern, strings it matches): may_match must never be False for them
_MATCHING = [
    (
        r"https?://(?:www\.)?vimeo\.com/(?P<id>\d+)",
        ["https://vimeo.com/1", "http://www.vimeo.com/22"],
    ),
    (r"https?://(?:a|b)\.tv/x|foo:(?P<id>\w+)", ["https://b.tv/x", "foo:bar"]),
    (r"https?://ex\.com/v?ideo/", ["https://ex.com/ideo/", "https://ex.com/video/"]),
    (
        r"https?://ex\.com/(?:embed/)*(?P<id>\d+)",
        ["https://ex.com/1", "https://ex.com/embed/embed/1"],
    ),
    (r"https?://ex\.com/x{0,2}y", ["https://ex.com/y", "https://ex.com/xxy"]),
    (r"https?://ex\.com/(?:ab){0}c", ["https://ex.com/c"]),
    (r"https?://ex\.com/(?:ab)+c", ["https://ex.com/ababc"]),
    (r"(?i)https?://EX\.com/Video", ["HTTP://ex.COM/video"]),
    ("(?x)https?:// ex\\.com/  \\#  (?P<id>\\d+)  # the id\n  /end", ["https://ex.com/#12/end"]),
    ("(?x)https?://(?: # host\n  a\\.tv | b\\.tv )/[# ]x", ["https://b.tv/#x", "https://a.tv/ x"]),
    (r"https?://ex\.com/[)(|]x(?=y)", ["https://ex.com/)xy", "https://ex.com/|xy"]),
    (r"https?://ex\.com/(?!z)[a-z]+(?<=b)\?id=\d+", ["https://ex.com/ab?id=1"]),
    (r"https?://(?P<h>ex\.com)/(?P=h)/x", ["https://ex.com/ex.com/x"]),
    (r"https?://ex\.com/\\\(x\)", ["https://ex.com/\\(x)"]),
    (r"https?://ex\.com/a\{b}", ["https://ex.com/a{b}"]),
    (r"https?://ex\.com/(?i:ABC)/d", ["https://ex.com/abc/d"]),
    (r"https?://ex\.com/a*+b?+c", ["https://ex.com/c", "https://ex.com/aabc"]),
    (r"https?://ex\.com/(?>x|y)z", ["https://ex.com/yz"]),
]


@pytest.mark.parametrize(("pattern", "strings"), _MATCHING)
def test_may_match_is_never_false_for_a_string_the_pattern_matches(
    pattern: str, strings: list[str]
) -> None:
    for string in strings:
        assert re.match(pattern, string), (pattern, string)  # the case itself is right
        assert may_match(pattern, string) is not False, (pattern, string)
    assert may_match(pattern, "https://elsewhere.org/clip.mp4") is False, pattern


@pytest.mark.parametrize(
    "pattern",
    [
        r"https?://ex\.com/(?P<id>\d+)(?(id)x|y)",  # conditional
        r"https?://ex\.com/(?#comment)x",
        r"https?://ex\.com/\x41",  # long escape
        r"https?://ex\.com/(?x: a b )",  # verbose mode switched inside
        r"(?i)https?://ex\.com/\u017f",
    ],
)
def test_may_match_leaves_what_it_does_not_read_to_the_re_module(pattern: str) -> None:
    assert may_match(pattern, "https://elsewhere.org/clip.mp4") is None


def test_may_match_is_never_false_for_the_test_urls_of_every_extractor() -> None:
    """Each yt-dlp extractor's own test URLs that its pattern matches (~6,000): the reader
    must see that they may match (a guard for yt-dlp upgrades)."""
    from yt_dlp.extractor import gen_extractor_classes

    checked = 0
    for extractor in gen_extractor_classes():
        patterns = extractor._VALID_URL
        if not patterns:
            continue
        patterns = (patterns,) if isinstance(patterns, str) else patterns
        urls = [t["url"] for t in extractor.get_testcases(include_onlymatching=True) if "url" in t]
        for pattern in patterns:
            if may_match(pattern, "") is None:
                continue
            compiled = re.compile(pattern)
            for url in urls:
                if compiled.match(url):
                    checked += 1
                    assert may_match(pattern, url) is not False, (extractor.__name__, url)
    assert checked > 1000
