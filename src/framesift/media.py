"""Locating ffmpeg: the system binary, else the static one shipped by imageio-ffmpeg."""

from __future__ import annotations

import functools
import os
import shutil


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
