"""ffmpeg: locating it (the system binary, else imageio-ffmpeg's static one), and the facts of
a media file read from its header dump (no ffprobe needed: the static binary has none)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO_STREAM = re.compile(r"Stream #.*?: Video: (?P<rest>.*)")
_SIZE = re.compile(r",\s*(\d{1,5})x(\d{1,5})\b")
_FPS = re.compile(r",\s*([0-9.]+) fps\b")


@functools.cache
def ffmpeg_binary() -> str:
    """Path of ffmpeg: ``FRAMESIFT_FFMPEG``, else PATH, else imageio-ffmpeg's binary."""
    override = os.environ.get("FRAMESIFT_FFMPEG")
    if override:
        return override
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return "ffmpeg"
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_location() -> str | None:
    """Directory (or file) to hand to yt-dlp as ``ffmpeg_location``; None when ffmpeg is on PATH."""
    if shutil.which("ffmpeg"):
        return None
    binary = ffmpeg_binary()
    return binary if os.path.exists(binary) else None


def ffmpeg_header(video: Path, timeout: float = 120.0) -> str:
    """ffmpeg's description of ``video`` (its stderr for ``ffmpeg -i video``)."""
    args = [ffmpeg_binary(), "-hide_banner", "-i", str(video)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    return proc.stderr


@dataclass(frozen=True)
class MediaFacts:
    """Duration (s), frame size and rate of a video file; None where the header has none."""

    duration: float | None
    width: int | None
    height: int | None
    fps: float | None


def media_facts(header: str) -> MediaFacts:
    """The facts in an :func:`ffmpeg_header` text (of its first video stream)."""
    found = DURATION.search(header)
    duration = None
    if found:
        hours, minutes, seconds = found.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    stream = _VIDEO_STREAM.search(header)
    rest = stream.group("rest") if stream else ""
    size, fps = _SIZE.search(rest), _FPS.search(rest)
    width, height = (int(size.group(1)), int(size.group(2))) if size else (None, None)
    return MediaFacts(duration, width, height, float(fps.group(1)) if fps else None)
