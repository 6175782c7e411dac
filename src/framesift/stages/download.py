"""Download one video with yt-dlp's Python API, classify failures as permanent or transient.

The download runs in a child process so the whole call can be bounded in time (yt-dlp's own
``socket_timeout`` is per read, and its retries multiply it). The finished file is moved into
place only when complete; metadata is written as a sanitised ``.info.json``.

Each job is a fresh process, so nothing yt-dlp prepares is reused: the child picks the extractor
with :mod:`framesift.stages.extractors` (the one yt-dlp would pick, without compiling every
extractor's URL pattern).
"""

from __future__ import annotations

import email.utils
import json
import logging
import multiprocessing
import queue
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from framesift.core.fsutil import atomic_write_text
from framesift.core.media import ffmpeg_header, ffmpeg_location, media_facts
from framesift.core.progress import download_hook
from framesift.core.settings import DownloadSettings
from framesift.lifecycle.jobs import StageFailed
from framesift.stages.extractors import first_suitable, new_downloader
from framesift.stages.jsruntime import JsRuntime, JsRuntimeMissing, resolve_js_runtime

INFO_KEYS = (
    "id",
    "title",
    "duration",
    "uploader",
    "license",
    "webpage_url",
    "extractor",
    "width",
    "height",
    "fps",
    "ext",
)
PERMANENT_HTTP = {400, 401, 403, 404, 405, 410, 451}
DEFAULT_DOWNLOADS = 4  # downloads at once unless `--resources downloads=N` says otherwise
RATE_LIMITED = 429
RATE_LIMIT_WAIT = 10.0  # seconds before asking again after a 429 without Retry-After
# yt-dlp's words for a 403 on the media URL itself (the page was fine): signed media URLs
# expire and CDNs refuse bursts, so it is worth another try, unlike a 403 on the page
_MEDIA_FORBIDDEN = "unable to download video data"
COOKIES_HINT = (
    "set download.cookies (a cookies.txt exported from a browser logged in to the site) or "
    "download.cookies_from_browser, then run again (README: YouTube)"
)
# (phrases of the message, lower case; transient?; what framesift says). The texts are the
# sites' and yt-dlp's own (yt-dlp's extractor/youtube/_video.py and YoutubeDL.py); the first
# rule with a phrase in the message wins.
MESSAGE_RULES: tuple[tuple[tuple[str, ...], bool, str], ...] = (
    (
        ("this content isn't available, try again later", "rate-limited by youtube"),
        True,
        'rate-limited by YouTube ("This content isn\'t available, try again later"): wait, '
        "lower the number of parallel downloads (--resources downloads=N) or raise "
        "download.sleep_interval",
    ),
    (
        ("not a bot", "captcha challenge"),
        True,
        f"YouTube asks to sign in to confirm this is not a bot: {COOKIES_HINT}",
    ),
    (
        (
            "sign in to confirm your age",
            "age-restricted",
            "inappropriate for some users",
            "only available for registered users",
            "login details are needed",
            "members-only",
            "join this channel",
            "this video is available to this channel's members",
        ),
        True,
        f"the site requires a login (age or membership gate): {COOKIES_HINT}",
    ),
    (
        ("requested format is not available", "no video formats found"),
        False,
        "no downloadable video format was offered (for YouTube, often a missing JavaScript "
        "runtime or yt-dlp-ejs): run `framesift doctor`, then `framesift retry-failed`",
    ),
    (
        (
            "private video",
            "video unavailable",
            "has been removed",
            "account associated with this video has been terminated",
            "unsupported url",
            "is not a valid url",
            "this live event will begin",
            "is not available",
        ),
        False,
        "",  # the message itself says it best
    ),
)
# (yt-dlp's words for a response without a byte of content: an empty file, never a video)
_EMPTY_RESPONSE = "did not get any data blocks"


class DownloadFailed(StageFailed):
    """A download that did not produce a video; ``permanent`` says whether retrying can help,
    ``retry_after`` how many seconds the site asked to wait (HTTP 429 ``Retry-After``)."""

    def __init__(self, reason: str, permanent: bool, retry_after: float | None = None):
        super().__init__(reason, permanent)
        self.retry_after = retry_after


def format_selector(max_height: int, container: str) -> str:
    """yt-dlp format string: best video ≤ max_height, preferring ``container``-native streams."""
    h = f"[height<={max_height}]" if max_height > 0 else ""
    audio_ext = {"mp4": "m4a", "webm": "webm"}.get(container)
    preferred = f"bv*{h}[ext={container}]+ba[ext={audio_ext}]/" if audio_ext else ""
    return f"{preferred}b{h}[ext={container}]/bv*{h}+ba/b{h}/bv*+ba/b"


def _parse_rate(rate: str | None) -> int | None:
    if not rate:
        return None
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    text = str(rate).strip().lower().removesuffix("b")
    factor = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    return int(float(number) * factor)


def parse_cookies_from_browser(spec: str) -> tuple[str, str | None, str | None, str | None]:
    """``BROWSER[+KEYRING][:PROFILE][::CONTAINER]`` (yt-dlp's ``--cookies-from-browser``) as the
    ``cookiesfrombrowser`` tuple (browser, profile, keyring, container)."""
    rest, _, container = spec.partition("::")
    browser_keyring, _, profile = rest.partition(":")
    browser, _, keyring = browser_keyring.partition("+")
    return (
        browser.strip().lower(),
        profile.strip() or None,
        keyring.strip().upper() or None,
        container.strip() or None,
    )


def ydl_options(
    opts: DownloadSettings,
    workdir: Path,
    logger: Any,
    progress: Any = None,
    runtime: JsRuntime | None = None,
) -> dict[str, Any]:
    """The ``YoutubeDL`` parameter dict for one download into ``workdir``, with ``runtime`` as
    the only JavaScript runtime yt-dlp may use (None: yt-dlp's own default)."""
    params: dict[str, Any] = {
        "format": format_selector(opts.max_height, opts.container),
        "merge_output_format": opts.container,
        # relative to paths.home (an absolute template makes yt-dlp warn that paths is ignored)
        "outtmpl": "video.%(ext)s",
        "paths": {"home": str(workdir), "temp": str(workdir)},
        "noplaylist": True,
        "socket_timeout": opts.socket_timeout,
        "retries": opts.retries,
        "fragment_retries": opts.retries,
        "extractor_retries": opts.retries,
        "noprogress": True,
        "quiet": True,
        "no_warnings": False,
        "logger": logger,
        "overwrites": True,
        "continuedl": False,
        "postprocessors": [{"key": "FFmpegVideoRemuxer", "preferedformat": opts.container}],
        "progress_hooks": [progress] if progress is not None else [],
    }
    browser = opts.cookies_from_browser
    optional = {
        "ratelimit": _parse_rate(opts.rate_limit),
        "cookiefile": opts.cookies,
        "cookiesfrombrowser": parse_cookies_from_browser(browser) if browser else None,
        "proxy": opts.proxy,
        "sleep_interval_requests": opts.sleep_interval or None,
        "sleep_interval": opts.sleep_interval or None,
        "ffmpeg_location": ffmpeg_location(),
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    if runtime is not None:
        params.update(runtime.ydl_params())
    return params


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """An HTTP ``Retry-After`` value (seconds, or an HTTP date) in seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _message_rule(message: str) -> tuple[bool, str] | None:
    """(transient, reason) of the first of :data:`MESSAGE_RULES` the message matches."""
    lower = message.lower().replace("\u2019", "'")
    for phrases, transient, reason in MESSAGE_RULES:
        if any(phrase in lower for phrase in phrases):
            return transient, reason
    return None


def classify(error: BaseException) -> DownloadFailed:
    """Map a yt-dlp error to a one-line reason and permanent/transient."""
    from yt_dlp.networking.exceptions import HTTPError
    from yt_dlp.utils import ExtractorError, UnsupportedError

    cause = getattr(error, "exc_info", None)
    inner = cause[1] if cause and cause[1] is not None else error
    message = " ".join(str(error).split()).removeprefix("ERROR: ")
    lower = message.lower()
    if isinstance(inner, HTTPError):
        status = inner.status
        if status == RATE_LIMITED:
            asked = retry_after_seconds(inner.response.headers.get("Retry-After"))
            said = f"; it asked to wait {asked:g} s" if asked is not None else ""
            return DownloadFailed(
                f"rate-limited by the site (HTTP 429 Too Many Requests{said}): lower "
                f"--resources downloads=N or raise download.sleep_interval; {message}",
                permanent=False,
                retry_after=RATE_LIMIT_WAIT if asked is None else asked,
            )
        media = _MEDIA_FORBIDDEN in lower
        permanent = status in PERMANENT_HTTP and not (status == 403 and media)
        where = " on the media URL" if media else ""
        return DownloadFailed(f"HTTP {status}{where}: {message}", permanent=permanent)
    if isinstance(inner, UnsupportedError):
        return DownloadFailed(f"not a video page: {message}", permanent=True)
    if _EMPTY_RESPONSE in lower:
        return DownloadFailed("empty response: the server sent 0 bytes, not a video", True)
    rule = _message_rule(message)
    if rule is not None:
        transient, reason = rule
        return DownloadFailed(f"{reason} ({message})" if reason else message, not transient)
    if isinstance(inner, ExtractorError) and inner.expected and "timed out" not in lower:
        return DownloadFailed(message, permanent=True)
    return DownloadFailed(message or type(inner).__name__, permanent=False)


class _ListLogger:
    """Collects yt-dlp's messages instead of printing them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str) -> None:
        if not msg.startswith("[debug] "):
            self.lines.append(msg)

    info = debug

    def warning(self, msg: str) -> None:
        self.lines.append(f"WARNING: {msg}")

    def error(self, msg: str) -> None:
        self.lines.append(msg)


def _run_ytdlp(
    url: str,
    opts: DownloadSettings,
    workdir: Path,
    runtime: JsRuntime,
    results: Any,
    log: logging.Logger | None,
) -> None:
    """Child-process body: download and report ``("ok", info, log)`` or ``("error", ...)``."""
    logger = _ListLogger()
    try:
        progress = download_hook(log) if log is not None else None
        with new_downloader(ydl_options(opts, workdir, logger, progress, runtime)) as ydl:
            key = first_suitable(ydl, url)
            info = ydl.sanitize_info(ydl.extract_info(url, download=True, ie_key=key))
        results.put(("ok", info, logger.lines))
    except BaseException as error:  # noqa: BLE001 - every failure must be reported to the parent
        failed = classify(error)
        payload = (failed.reason, failed.permanent, failed.retry_after)
        results.put(("error", payload, logger.lines))


def _metadata(info: dict[str, Any], url: str, video_id: str) -> dict[str, Any]:
    meta = {key: info.get(key) for key in INFO_KEYS}
    meta["source_id"] = meta.pop("id")
    meta.update({"video_id": video_id, "url": url})
    meta["webpage_url"] = meta["webpage_url"] or url
    return meta


def _with_media_facts(meta: dict[str, Any], video: Path) -> dict[str, Any]:
    """``meta`` with the duration, size and rate yt-dlp left out (direct file links) read from
    the file's header by ffmpeg; what ffmpeg cannot tell stays None."""
    missing = [key for key in ("duration", "width", "height", "fps") if meta.get(key) is None]
    if missing:
        try:
            facts = media_facts(ffmpeg_header(video, timeout=60))
        except (OSError, subprocess.SubprocessError):
            return meta
        meta.update({key: getattr(facts, key) for key in missing})
    return meta


def js_runtime_for(opts: DownloadSettings) -> JsRuntime:
    """The JavaScript runtime of ``download.js_runtime``; a missing one fails the download
    (transient: installing it, or fixing the setting, and running again helps)."""
    try:
        return resolve_js_runtime(opts.js_runtime)
    except JsRuntimeMissing as missing:
        raise DownloadFailed(str(missing), permanent=False) from None


def versions_line(runtime: JsRuntime) -> str:
    """``yt-dlp 2026.10.26, JS runtime deno 2.9.8 (bundled, ...)``: one line for every log."""
    from yt_dlp.version import __version__ as ytdlp_version

    return f"yt-dlp {ytdlp_version}, JS runtime {runtime.describe()}"


def download_video(
    url: str,
    video_id: str,
    video_out: Path,
    info_out: Path,
    opts: DownloadSettings,
    log: logging.Logger | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Download ``url`` to ``video_out`` and its metadata to ``info_out``.

    A site that answers HTTP 429 is asked again after the ``Retry-After`` it gave (at most
    ``opts.retries`` times, within ``opts.timeout``). Returns (metadata, yt-dlp log lines).
    Raises DownloadFailed on failure; nothing is left at ``video_out`` then.
    """
    runtime = js_runtime_for(opts)
    if log is not None:
        log.info(versions_line(runtime))
    deadline, waits = time.monotonic() + opts.timeout, 0
    while True:
        try:
            return _download_once(url, video_id, video_out, info_out, opts, runtime, log, deadline)
        except DownloadFailed as failure:
            wait = failure.retry_after
            if wait is None or waits >= opts.retries or time.monotonic() + wait >= deadline:
                raise
            waits += 1
            if log is not None:
                log.info(
                    f"rate-limited (HTTP 429): waiting {wait:g} s, then again ({waits} of "
                    f"{opts.retries}, download.retries)"
                )
            time.sleep(wait)


def _download_once(
    url: str,
    video_id: str,
    video_out: Path,
    info_out: Path,
    opts: DownloadSettings,
    runtime: JsRuntime,
    log: logging.Logger | None,
    deadline: float,
) -> tuple[dict[str, Any], list[str]]:
    """One yt-dlp run in a child process, bounded by ``deadline`` (``time.monotonic``)."""
    video_out, info_out = Path(video_out).resolve(), Path(info_out).resolve()
    workdir = video_out.with_name(f".{video_out.name}.download")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    args = (url, opts, workdir, runtime, results, log)  # the child logs progress to ``log``
    child = context.Process(target=_run_ytdlp, args=args, daemon=True)
    child.start()
    try:
        try:
            status, payload, lines = results.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise DownloadFailed(
                f"download did not finish within {opts.timeout:g} s (download.timeout)",
                permanent=False,
            ) from None
        if status != "ok":
            raise DownloadFailed(*payload)
        produced = sorted(p for p in workdir.glob("video.*") if p.suffix[1:] == opts.container)
        if not produced:
            found = ", ".join(p.name for p in workdir.iterdir()) or "nothing"
            raise DownloadFailed(
                f"yt-dlp produced no .{opts.container} file (found {found})", permanent=False
            )
        produced[0].replace(video_out)
        meta = _with_media_facts(_metadata(payload, url, video_id), video_out)
        atomic_write_text(info_out, json.dumps(meta, indent=1, default=str) + "\n")
        return meta, lines
    finally:
        if child.is_alive():
            child.kill()
        child.join(timeout=5)
        shutil.rmtree(workdir, ignore_errors=True)
