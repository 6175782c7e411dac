"""Download one video with yt-dlp's Python API, classify failures as permanent or transient.

The download runs in a child process so the whole call can be bounded in time (yt-dlp's own
``socket_timeout`` is per read, and its retries multiply it). The finished file is moved into
place only when complete; metadata is written as a sanitised ``.info.json``.

Each job is a fresh process, so nothing yt-dlp prepares is reused: the child picks the extractor
with :mod:`framesift.extractors` (the one yt-dlp would pick, without compiling every extractor's
URL pattern).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import queue
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framesift.extractors import first_suitable, new_downloader
from framesift.fsutil import atomic_write_text
from framesift.media import ffmpeg_location
from framesift.progress import download_hook
from framesift.stagejob import StageFailed

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
_PERMANENT_PHRASES = (
    "unsupported url",
    "video unavailable",
    "private video",
    "is not available",
    "has been removed",
    "account associated with this video has been terminated",
    "members-only",
    "sign in to confirm your age",
    "no video formats found",
    "requested format is not available",
    "is not a valid url",
    "this live event will begin",
)
# (yt-dlp's words for a response without a byte of content: an empty file, never a video)
_EMPTY_RESPONSE = "did not get any data blocks"


class DownloadFailed(StageFailed):
    """A download that did not produce a video; ``permanent`` says whether retrying can help."""


@dataclass(frozen=True)
class DownloadOptions:
    """User-facing download settings (config section ``download``)."""

    max_height: int = 720
    container: str = "mp4"
    socket_timeout: float = 20.0
    retries: int = 3
    timeout: float = 1800.0
    rate_limit: str | None = None
    cookies: str | None = None
    proxy: str | None = None
    sleep_interval: float = 0.0


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


def ydl_options(
    opts: DownloadOptions, workdir: Path, logger: Any, progress: Any = None
) -> dict[str, Any]:
    """The ``YoutubeDL`` parameter dict for one download into ``workdir``."""
    params: dict[str, Any] = {
        "format": format_selector(opts.max_height, opts.container),
        "merge_output_format": opts.container,
        "outtmpl": str(workdir / "video.%(ext)s"),
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
    optional = {
        "ratelimit": _parse_rate(opts.rate_limit),
        "cookiefile": opts.cookies,
        "proxy": opts.proxy,
        "sleep_interval_requests": opts.sleep_interval or None,
        "sleep_interval": opts.sleep_interval or None,
        "ffmpeg_location": ffmpeg_location(),
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    return params


def classify(error: BaseException) -> DownloadFailed:
    """Map a yt-dlp error to a one-line reason and permanent/transient."""
    from yt_dlp.networking.exceptions import HTTPError
    from yt_dlp.utils import ExtractorError, UnsupportedError

    cause = getattr(error, "exc_info", None)
    inner = cause[1] if cause and cause[1] is not None else error
    message = " ".join(str(error).split()).removeprefix("ERROR: ")
    if isinstance(inner, HTTPError):
        status = inner.status
        return DownloadFailed(f"HTTP {status}: {message}", permanent=status in PERMANENT_HTTP)
    if isinstance(inner, UnsupportedError):
        return DownloadFailed(f"not a video page: {message}", permanent=True)
    lower = message.lower()
    if _EMPTY_RESPONSE in lower:
        return DownloadFailed("empty response: the server sent 0 bytes, not a video", True)
    if any(phrase in lower for phrase in _PERMANENT_PHRASES):
        return DownloadFailed(message, permanent=True)
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
    url: str, opts: DownloadOptions, workdir: Path, results: Any, log: logging.Logger | None
) -> None:
    """Child-process body: download and report ``("ok", info, log)`` or ``("error", ...)``."""
    logger = _ListLogger()
    try:
        progress = download_hook(log) if log is not None else None
        with new_downloader(ydl_options(opts, workdir, logger, progress)) as ydl:
            key = first_suitable(ydl, url)
            info = ydl.sanitize_info(ydl.extract_info(url, download=True, ie_key=key))
        results.put(("ok", info, logger.lines))
    except BaseException as error:  # noqa: BLE001 - every failure must be reported to the parent
        failed = classify(error)
        results.put(("error", (failed.reason, failed.permanent), logger.lines))


def _metadata(info: dict[str, Any], url: str, video_id: str) -> dict[str, Any]:
    meta = {key: info.get(key) for key in INFO_KEYS}
    meta["source_id"] = meta.pop("id")
    meta.update({"video_id": video_id, "url": url})
    meta["webpage_url"] = meta["webpage_url"] or url
    return meta


def download_video(
    url: str,
    video_id: str,
    video_out: Path,
    info_out: Path,
    opts: DownloadOptions,
    log: logging.Logger | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Download ``url`` to ``video_out`` and its metadata to ``info_out``.

    Returns (metadata, yt-dlp log lines). Raises DownloadFailed on failure; nothing is left at
    ``video_out`` then.
    """
    video_out, info_out = Path(video_out).resolve(), Path(info_out).resolve()
    workdir = video_out.with_name(f".{video_out.name}.download")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    args = (url, opts, workdir, results, log)  # the child logs progress to ``log`` (live)
    child = context.Process(target=_run_ytdlp, args=args, daemon=True)
    child.start()
    try:
        try:
            status, payload, log = results.get(timeout=opts.timeout)
        except queue.Empty:
            raise DownloadFailed(
                f"download did not finish within {opts.timeout:g} s (download.timeout)",
                permanent=False,
            ) from None
        if status != "ok":
            reason, permanent = payload
            raise DownloadFailed(reason, permanent)
        produced = sorted(p for p in workdir.glob("video.*") if p.suffix[1:] == opts.container)
        if not produced:
            found = ", ".join(p.name for p in workdir.iterdir()) or "nothing"
            raise DownloadFailed(
                f"yt-dlp produced no .{opts.container} file (found {found})", permanent=False
            )
        meta = _metadata(payload, url, video_id)
        produced[0].replace(video_out)
        atomic_write_text(info_out, json.dumps(meta, indent=1, default=str) + "\n")
        return meta, log
    finally:
        if child.is_alive():
            child.kill()
        child.join(timeout=5)
        shutil.rmtree(workdir, ignore_errors=True)
