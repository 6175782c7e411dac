"""What real sites do to downloads, on loopback: cookies (a file, and a browser profile), a proxy,
HTTP 429 with Retry-After, a 403 on the media URL, YouTube's error messages, and the JavaScript
runtime yt-dlp needs for YouTube (handed over by path, whatever PATH says)."""

from __future__ import annotations

import http.server
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from framesift.cli.synthetic import serve_handler
from framesift.core.config import settings_for
from framesift.stages.download import (
    DownloadFailed,
    classify,
    download_video,
    parse_cookies_from_browser,
    retry_after_seconds,
    ydl_options,
)
from framesift.stages.jsruntime import JsRuntimeMissing, bundled_deno, resolve_js_runtime

FAST = dict(socket_timeout=5, retries=0, timeout=60)
COOKIE = ("session", "s3cr3t-9f2c")


@pytest.fixture(scope="module")
def video(video_dir: Path) -> bytes:
    return (video_dir / "gamma.mp4").read_bytes()


def _send(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers):
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


class _Recording(http.server.BaseHTTPRequestHandler):
    """Base of the test servers: records (time, path, headers) of every request."""

    requests: list[tuple[float, str, dict[str, str]]]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def record(self) -> None:
        self.requests.append((time.monotonic(), self.path, dict(self.headers.items())))


def _handler(respond, video: bytes) -> type[_Recording]:
    """A recording handler whose GETs are answered by ``respond(handler, video)``."""

    class Handler(_Recording):
        requests: list[tuple[float, str, dict[str, str]]] = []

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self.record()
            respond(self, video)

        do_HEAD = do_GET

    return Handler


def _cookie_gate(handler: _Recording, video: bytes) -> None:
    """The video only for a request that carries the session cookie; 403 otherwise."""
    name, value = COOKIE
    if f"{name}={value}" in handler.headers.get("Cookie", ""):
        _send(handler, 200, video, Content_Type="video/mp4")
    else:
        _send(handler, 403, b"log in first")


def _download(url: str, out: Path, log: logging.Logger | None = None, **options):
    opts = settings_for({"download": {**FAST, **options}}).download
    return download_video(url, "vid", out / "vid.mp4", out / "vid.info.json", opts, log)


def test_cookies_file_reaches_a_cookie_gated_server(video: bytes, tmp_path: Path) -> None:
    handler = _handler(_cookie_gate, video)
    with serve_handler(handler) as base:
        with pytest.raises(DownloadFailed) as refused:
            _download(f"{base}/members/clip.mp4", tmp_path)
        assert refused.value.permanent and "403" in refused.value.reason
        cookies = tmp_path / "cookies.txt"
        name, value = COOKIE
        cookies.write_text(
            "# Netscape HTTP Cookie File\n"
            f"127.0.0.1\tFALSE\t/\tFALSE\t{int(time.time()) + 3600}\t{name}\t{value}\n"
        )
        out = tmp_path / "out"
        out.mkdir()
        _download(f"{base}/members/clip.mp4", out, cookies=str(cookies))
    assert (out / "vid.mp4").read_bytes() == video
    assert f"{name}={value}" in handler.requests[-1][2].get("Cookie", "")


def _firefox_profile(root: Path) -> Path:
    """A Firefox profile folder whose cookies database holds the session cookie."""
    root.mkdir()
    with sqlite3.connect(root / "cookies.sqlite") as db:
        db.execute("PRAGMA user_version = 15")  # expiry in seconds (schema 16 uses ms)
        db.execute(
            "CREATE TABLE moz_cookies (id INTEGER PRIMARY KEY, originAttributes TEXT, name TEXT,"
            " value TEXT, host TEXT, path TEXT, expiry INTEGER, isSecure INTEGER)"
        )
        db.execute(
            "INSERT INTO moz_cookies (originAttributes, name, value, host, path, expiry, isSecure)"
            " VALUES ('', ?, ?, '127.0.0.1', '/', ?, 0)",
            (*COOKIE, int(time.time()) + 3600),
        )
    return root


def test_cookies_from_browser_reads_a_firefox_profile(video: bytes, tmp_path: Path) -> None:
    profile = _firefox_profile(tmp_path / "profile.default")
    handler = _handler(_cookie_gate, video)
    out = tmp_path / "out"
    out.mkdir()
    with serve_handler(handler) as base:
        _download(f"{base}/clip.mp4", out, cookies_from_browser=f"firefox:{profile}")
    assert (out / "vid.mp4").read_bytes() == video


def test_cookies_from_browser_spec_is_parsed_like_yt_dlp() -> None:
    assert parse_cookies_from_browser("firefox") == ("firefox", None, None, None)
    assert parse_cookies_from_browser("Chrome+gnomekeyring:Profile 1::Work") == (
        "chrome",
        "Profile 1",
        "GNOMEKEYRING",
        "Work",
    )
    params = ydl_options(
        settings_for({"download": {"cookies_from_browser": "firefox:/p/x"}}).download,
        Path("/w"),
        logger=None,
    )
    assert params["cookiesfrombrowser"] == ("firefox", "/p/x", None, None)


class _CountingProxy(http.server.BaseHTTPRequestHandler):
    """A forwarding HTTP proxy (absolute-URI requests) that counts what it forwarded."""

    forwarded: list[str] = []
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if not self.path.startswith("http://"):
            _send(self, 400, b"not a proxy request")
            return
        self.forwarded.append(self.path)
        request = urllib.request.Request(self.path, method=self.command)
        for name in ("Range", "User-Agent", "Accept", "Cookie"):
            if self.headers.get(name):
                request.add_header(name, self.headers[name])
        try:
            with self.direct.open(request, timeout=10) as upstream:
                status, body, headers = upstream.status, upstream.read(), upstream.headers
        except urllib.error.HTTPError as error:
            status, body, headers = error.code, error.read(), error.headers
        kept = {k: v for k, v in headers.items() if k.lower() in ("content-type", "content-range")}
        _send(self, status, body, **kept)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_proxy_carries_every_request(server: str, video_dir: Path, tmp_path: Path) -> None:
    _CountingProxy.forwarded = []
    with serve_handler(_CountingProxy) as proxy:
        _download(f"{server}/gamma.mp4", tmp_path, proxy=proxy)
    assert (tmp_path / "vid.mp4").read_bytes() == (video_dir / "gamma.mp4").read_bytes()
    assert _CountingProxy.forwarded, "nothing went through the proxy"
    assert all(url.startswith(f"{server}/gamma.mp4") for url in _CountingProxy.forwarded)


@pytest.fixture
def rate_limited_once(video: bytes) -> Iterator[tuple[str, type[_Recording]]]:
    """A server whose first answer is 429 with ``Retry-After: 2``, then the video."""

    def respond(handler: _Recording, data: bytes) -> None:
        if len(handler.requests) == 1:
            _send(handler, 429, b"slow down", Retry_After="2")
        else:
            _send(handler, 200, data, Content_Type="video/mp4")

    handler = _handler(respond, video)
    with serve_handler(handler) as base:
        yield base, handler


def test_http_429_waits_at_least_retry_after_then_succeeds(
    rate_limited_once: tuple[str, type[_Recording]], video: bytes, tmp_path: Path
) -> None:
    base, handler = rate_limited_once
    _download(f"{base}/clip.mp4", tmp_path, retries=1)
    assert (tmp_path / "vid.mp4").read_bytes() == video
    first, second = handler.requests[0][0], handler.requests[1][0]
    assert second - first >= 2.0, "asked again before Retry-After had passed"


def test_http_429_is_transient_and_says_rate_limited(
    rate_limited_once: tuple[str, type[_Recording]], tmp_path: Path
) -> None:
    base, handler = rate_limited_once
    with pytest.raises(DownloadFailed) as caught:
        _download(f"{base}/clip.mp4", tmp_path, retries=0)
    failure = caught.value
    assert not failure.permanent
    assert failure.reason.startswith("rate-limited by the site (HTTP 429")
    assert "wait 2 s" in failure.reason and "\n" not in failure.reason
    assert len(handler.requests) == 1


def test_retry_after_forms() -> None:
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_403_on_the_media_url_is_transient(video: bytes, tmp_path: Path) -> None:
    """The page (first request) is fine, the media request is refused: an expired signed URL
    or a CDN's burst limit, worth another try; a 403 on the page itself stays permanent."""

    def respond(handler: _Recording, data: bytes) -> None:
        if len(handler.requests) == 1:
            _send(handler, 200, data, Content_Type="video/mp4")
        else:
            _send(handler, 403, b"expired")

    with serve_handler(_handler(respond, video)) as base, pytest.raises(DownloadFailed) as caught:
        _download(f"{base}/clip.mp4", tmp_path)
    assert not caught.value.permanent
    assert caught.value.reason.startswith("HTTP 403 on the media URL")


def _extractor_error(message: str) -> Exception:
    """The error yt-dlp's YouTube extractor raises with ``message`` (``raise_no_formats``)."""
    from yt_dlp.utils import DownloadError, ExtractorError

    inner = ExtractorError(message, expected=True, video_id="dQw4w9WgXcQ", ie="youtube")
    return DownloadError(f"ERROR: {inner.msg}", (type(inner), inner, None))


# The texts as yt-dlp 2026.10 builds them (extractor/youtube/_video.py, _base.py, common.py,
# YoutubeDL.py); the reason before the first period is YouTube's own playability reason.
_LOGIN_HINT = (
    "Use --cookies-from-browser or --cookies for the authentication. See  "
    "https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to "
    "manually pass cookies. Also see  "
    "https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies  for tips on "
    "effectively exporting YouTube cookies"
)
YOUTUBE_MESSAGES = [
    (f"[youtube] dQw4w9WgXcQ: Sign in to confirm you\u2019re not a bot. {_LOGIN_HINT}", "bot"),
    (f"[youtube] dQw4w9WgXcQ: Sign in to confirm your age. {_LOGIN_HINT}", "login"),
    (f"[youtube] x: Login details are needed to download this content. {_LOGIN_HINT}", "login"),
    (
        "[youtube] x: Join this channel to get access to members-only content like this video, "
        "and other exclusive perks.",
        "login",
    ),  # fmt: skip
    (
        "[youtube] x: Video unavailable. This content isn't available, try again later. The "
        "current session has been rate-limited by YouTube for up to an hour.",
        "rate",
    ),  # fmt: skip
    (
        "[youtube] dQw4w9WgXcQ: Private video. Sign in if you've been granted access to this video",
        "permanent",
    ),  # fmt: skip
    ("[youtube] dQw4w9WgXcQ: Video unavailable", "permanent"),
    ("[youtube] x: Video unavailable. This video has been removed by the uploader", "permanent"),
    (
        "[youtube] x: This video has been removed for violating YouTube's policy on hate speech.",
        "permanent",
    ),  # fmt: skip
    (
        "[youtube] dQw4w9WgXcQ: Requested format is not available. Use --list-formats for a list "
        "of available formats",
        "doctor",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("message", "kind"), YOUTUBE_MESSAGES)
def test_youtube_messages_are_classified_with_hints(message: str, kind: str) -> None:
    failure = classify(_extractor_error(message))
    assert "\n" not in failure.reason
    if kind in ("bot", "login"):
        assert not failure.permanent
        assert "download.cookies" in failure.reason
        assert "download.cookies_from_browser" in failure.reason
        assert ("not a bot" in failure.reason) == (kind == "bot")
    elif kind == "rate":
        assert not failure.permanent
        assert failure.reason.startswith("rate-limited by YouTube")
    elif kind == "doctor":
        assert failure.permanent
        assert "framesift doctor" in failure.reason
    else:
        assert failure.permanent
        assert "cookies" not in failure.reason
    assert message.split(": ", 1)[1][:20] in failure.reason, "yt-dlp's own words are kept"


def test_runtime_is_handed_to_yt_dlp_without_the_venv_on_path(tmp_path: Path) -> None:
    """The download job's view, from a process whose PATH lacks the virtualenv (as under `make
    run` or on a cluster node): yt-dlp's own challenge-provider check finds deno, and the
    runtime runs a script."""
    probe = (
        "import json, subprocess\n"
        "from pathlib import Path\n"
        "from framesift.core.config import settings_for\n"
        "from framesift.stages.download import js_runtime_for, ydl_options\n"
        "download = settings_for().download  # as a job builds it: the schema's defaults\n"
        "from framesift.stages.jsruntime import challenge_providers\n"
        "runtime = js_runtime_for(download)\n"
        "params = ydl_options(download, Path('.'), None, None, runtime)\n"
        "script = subprocess.run([runtime.path, 'eval', 'console.log(6 * 7)'],\n"
        "                        capture_output=True, text=True, timeout=60).stdout.strip()\n"
        "print(json.dumps({'js_runtimes': params['js_runtimes'], 'version': runtime.version(),\n"
        "                  'providers': challenge_providers(runtime), 'script': script}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"
    assert bundled_deno() is not None, "PyPI's deno package is a dependency"
    assert shutil.which("deno", path=env["PATH"]) is None, "the test needs a PATH without deno"
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert list(result["js_runtimes"]) == ["deno"]
    assert Path(result["js_runtimes"]["deno"]["path"]).is_absolute()
    assert result["version"] and result["version"] >= "2.3"
    assert result["providers"]["deno"] is True
    assert result["script"] == "42"


def test_js_runtime_settings(tmp_path: Path) -> None:
    assert resolve_js_runtime("none").ydl_params() == {"js_runtimes": {}}
    assert resolve_js_runtime("auto").name == "deno"
    assert resolve_js_runtime("deno").source == "bundled"
    with pytest.raises(JsRuntimeMissing, match="'/nonexistent/deno' is not an executable"):
        resolve_js_runtime("/nonexistent/deno")
    odd = tmp_path / "js-engine"
    odd.write_text("#!/bin/sh\n")
    odd.chmod(0o755)
    with pytest.raises(JsRuntimeMissing, match="NAME:PATH"):
        resolve_js_runtime(str(odd))
    named = resolve_js_runtime(f"deno:{bundled_deno()}")
    assert (named.name, named.source) == ("deno", "configured")


def test_missing_runtime_fails_the_download_transiently(server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadFailed) as caught:
        _download(f"{server}/gamma.mp4", tmp_path, js_runtime="/nonexistent/deno")
    assert not caught.value.permanent
    assert "download.js_runtime" in caught.value.reason
    assert list(tmp_path.iterdir()) == []


def test_every_download_logs_yt_dlp_and_the_runtime_in_one_line(
    server: str, tmp_path: Path
) -> None:
    log = logging.getLogger("test-download-versions")
    log.setLevel(logging.INFO)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    log.addHandler(handler)
    try:
        _download(f"{server}/gamma.mp4", tmp_path, log=log)
    finally:
        log.removeHandler(handler)
    import yt_dlp.version

    versions = [line for line in lines if line.startswith("yt-dlp ")]
    assert len(versions) == 1
    assert versions[0].startswith(f"yt-dlp {yt_dlp.version.__version__}, JS runtime deno ")
