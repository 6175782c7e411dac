"""Extract frames from one video with ffmpeg (argument lists, never a shell string).

Modes: ``fps`` (fixed rate), ``interval`` (one frame every N seconds, by input-side seeking, which
decodes only around each timestamp), ``keyframes`` (decoder skips non-key frames) and ``scene``
(frame 0 plus frames whose scene-change score exceeds a threshold). Frames are named
``{video_id}_{timestamp_ms:09d}.jpg``; ``manifest.tsv`` lists file and timestamp.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from framesift.core.fsutil import publish_dir, staging_dir
from framesift.core.media import DURATION, ffmpeg_binary, ffmpeg_header
from framesift.core.progress import Progress
from framesift.core.settings import FrameSettings
from framesift.lifecycle.jobs import StageFailed

MODES = ("fps", "interval", "keyframes", "scene")
MANIFEST = "manifest.tsv"
_PTS_TIME = re.compile(r"\bn:\s*(\d+)\b.*?\bpts_time:\s*(-?[0-9.]+)")
SEEK_BATCH = 32  # timestamps per ffmpeg process in interval mode


class ExtractionFailed(StageFailed):
    """ffmpeg could not decode the video (corrupt, not a video, no video stream): permanent,
    unless ffmpeg ran out of time (``permanent=False``)."""

    def __init__(self, reason: str, permanent: bool = True):
        super().__init__(reason, permanent)


# ffmpeg's last error line -> what it means for the user
_READABLE = (
    ("matches no streams", "no video stream (audio only?)"),
    ("does not contain any stream", "no video stream"),
    ("moov atom not found", "truncated or corrupt file (no index)"),
    ("invalid data found when processing input", "not a decodable video (invalid data)"),
)


def readable_reason(line: str) -> str:
    """A short explanation of ffmpeg's last error line (the line itself when unknown)."""
    lower = line.lower()
    for marker, meaning in _READABLE:
        if marker in lower:
            return meaning
    return line


EXTRACT_TIMEOUT = 3600.0  # seconds one ffmpeg process may take


@dataclass(frozen=True)
class _Extraction:
    """One extraction: the ``frames`` settings and ffmpeg's threads per process (0: its own
    default, one per core)."""

    settings: FrameSettings
    threads: int
    timeout: float = EXTRACT_TIMEOUT


def _threads(job: _Extraction) -> list[str]:
    """``-threads N`` for one input or output of ffmpeg (nothing: ffmpeg uses every core)."""
    return ["-threads", str(job.threads)] if job.threads > 0 else []


@dataclass(frozen=True)
class Frame:
    """One extracted frame: file name inside the frames folder and its time in milliseconds."""

    file: str
    timestamp_ms: int


def frame_name(video_id: str, timestamp_ms: int) -> str:
    """File name of the frame of ``video_id`` at ``timestamp_ms``."""
    return f"{video_id}_{timestamp_ms:09d}.jpg"


def _run(args: list[str], timeout: float, on_line: Callable[[str], None] | None = None) -> str:
    """Run ffmpeg, streaming its stderr (``on_line`` sees each line as it comes: progress);
    return stderr; raise ExtractionFailed with its error line on failure."""
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if on_line is not None:
                on_line(line)
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if timed_out.is_set():
        raise ExtractionFailed(f"ffmpeg did not finish within {timeout:g} s", False)
    if proc.returncode != 0:
        errors = [line.rstrip("\n") for line in lines if line.strip()]
        message = _error_line(errors) or f"ffmpeg exited {proc.returncode}"
        raise ExtractionFailed(readable_reason(message))
    return "".join(lines)


def _error_line(lines: list[str]) -> str:
    """The line that names the error: ffmpeg often ends with generic advice after it."""
    for line in reversed(lines):
        if not any(m in line for m in ("To ignore this", "Error opening output", "Exiting")):
            return line
    return lines[-1] if lines else ""


def probe_duration(video: Path, timeout: float = 120.0) -> float:
    """Container duration in seconds, from ffmpeg's header dump (no ffprobe needed)."""
    header = ffmpeg_header(video, timeout)
    match = DURATION.search(header)
    if not match or "Video:" not in header:
        lines = [line for line in header.splitlines() if line.strip()]
        if match:
            raise ExtractionFailed("no video stream (audio only?)")
        raise ExtractionFailed(readable_reason(_error_line(lines) or "no video stream found"))
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _scale_filter(max_width: int) -> list[str]:
    return [f"scale='min({max_width},iw)':-2"] if max_width > 0 else []


def _stream_args(video: Path, out_dir: Path, job: _Extraction) -> list[str]:
    """ffmpeg command for the fps/keyframes/scene modes; ``showinfo`` logs each output pts."""
    args = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "info"]
    if job.threads > 0:
        args += ["-filter_threads", str(job.threads)]
    filters: list[str] = []
    if job.settings.mode == "keyframes":
        args += ["-skip_frame", "nokey"]
    elif job.settings.mode == "fps":
        # round=up: output n/fps is the frame on screen at n/fps (default `near` takes the one
        # ~0.5/fps later, so the file's timestamp would not match its picture)
        filters.append(f"fps={job.settings.fps}:round=up")
    elif job.settings.mode == "scene":
        filters.append(f"select='eq(n\\,0)+gt(scene\\,{job.settings.scene_threshold})'")
    args += [*_threads(job), "-i", str(video), "-map", "0:v:0", "-an", "-sn", "-dn"]
    filters += _scale_filter(job.settings.max_width) + ["showinfo"]
    args += ["-vf", ",".join(filters), "-fps_mode", "vfr", "-q:v", str(job.settings.jpeg_qscale)]
    if job.settings.max_frames > 0:
        args += ["-frames:v", str(job.settings.max_frames)]
    return args + [*_threads(job), "-f", "image2", str(out_dir / "%08d.jpg")]


def _extract_stream(
    video: Path, out_dir: Path, job: _Extraction, progress: Progress
) -> list[float]:
    def on_line(line: str) -> None:
        if "Parsed_showinfo" in line and " n:" in line:
            progress.advance()

    stderr = _run(_stream_args(video, out_dir, job), job.timeout, on_line)
    times = [
        float(t)
        for line in stderr.splitlines()
        if "Parsed_showinfo" in line
        for _, t in _PTS_TIME.findall(line)
    ]
    written = sorted(out_dir.glob("*.jpg"))
    if len(times) < len(written):  # more may be logged than written when -frames:v stops early
        raise ExtractionFailed(f"ffmpeg wrote {len(written)} frames but logged {len(times)}")
    return times[: len(written)]


def interval_times(duration: float, interval: float, max_frames: int) -> list[float]:
    """Timestamps 0, interval, 2·interval, … strictly before ``duration``."""
    count = int(duration / interval) + 1
    times = [round(i * interval, 3) for i in range(count) if i * interval < duration]
    return times[:max_frames] if max_frames > 0 else times


def _extract_interval(
    video: Path, out_dir: Path, job: _Extraction, progress: Progress
) -> list[float]:
    """Seek to each timestamp on the input side; several inputs per ffmpeg process."""
    settings = job.settings
    times = interval_times(probe_duration(video), settings.interval, settings.max_frames)
    kept: list[float] = []
    for start in range(0, len(times), SEEK_BATCH):
        batch = times[start : start + SEEK_BATCH]
        args = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error"]
        if job.threads > 0:
            args += ["-filter_threads", str(job.threads)]
        for t in batch:
            args += [*_threads(job), "-ss", f"{t:.3f}", "-i", str(video)]
        for index in range(len(batch)):
            vf = ",".join(_scale_filter(settings.max_width)) or "null"
            target = out_dir / f"{start + index + 1:08d}.jpg"
            args += ["-map", f"{index}:v:0", "-vf", vf, "-frames:v", "1"]
            args += ["-q:v", str(settings.jpeg_qscale), *_threads(job), "-update", "1", str(target)]
        _run(args, job.timeout)
        progress.advance(len(batch))
        for index, t in enumerate(batch):
            if (out_dir / f"{start + index + 1:08d}.jpg").exists():
                kept.append(t)
            else:  # a seek past the last decodable frame yields nothing: stop there
                return kept
    return kept


def extract_frames(
    video: Path,
    video_id: str,
    out_dir: Path,
    settings: FrameSettings,
    log: logging.Logger | None = None,
    threads: int = 0,
) -> list[Frame]:
    """Extract frames of ``video`` into ``out_dir`` (created atomically) with a manifest;
    ``threads``: per ffmpeg process (the job's; 0: ffmpeg's default, one per core).

    Raises ExtractionFailed (nothing left at ``out_dir``) when ffmpeg cannot decode the video or
    yields no frame.
    """
    if settings.mode not in MODES:
        raise ValueError(f"frames.mode {settings.mode!r} is not one of {', '.join(MODES)}")
    job = _Extraction(settings, threads)
    out_dir = Path(out_dir)
    tmp = staging_dir(out_dir)
    progress = Progress(log, "extract")
    try:
        if settings.mode == "interval":
            times = _extract_interval(Path(video), tmp, job, progress)
        else:
            times = _extract_stream(Path(video), tmp, job, progress)
        if not times:
            raise ExtractionFailed("the video decoded to zero frames")
        frames = _rename_frames(tmp, video_id, times)
        write_manifest(tmp / MANIFEST, frames)
        publish_dir(tmp, out_dir)
        progress.finish()
        return frames
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rename_frames(directory: Path, video_id: str, times: list[float]) -> list[Frame]:
    frames: list[Frame] = []
    used: set[str] = set()
    for index, seconds in enumerate(times, start=1):
        ms = max(0, round(seconds * 1000))
        name = frame_name(video_id, ms)
        while name in used:  # two frames in the same millisecond (rare, vfr sources)
            ms += 1
            name = frame_name(video_id, ms)
        used.add(name)
        (directory / f"{index:08d}.jpg").rename(directory / name)
        frames.append(Frame(name, ms))
    return frames


def write_manifest(path: Path, frames: list[Frame]) -> None:
    """``file<TAB>timestamp_ms`` per frame, with a header line."""
    rows = ["file\ttimestamp_ms"] + [f"{f.file}\t{f.timestamp_ms}" for f in frames]
    Path(path).write_text("\n".join(rows) + "\n")


def read_manifest(path: Path) -> list[Frame]:
    """Frames listed in a manifest; a missing manifest means no frames."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines()[1:]
    return [Frame(name, int(ms)) for name, ms in (line.split("\t") for line in lines if line)]


def write_empty(out_dir: Path) -> None:
    """An empty frames folder (header-only manifest): the result for a failed video."""
    tmp = staging_dir(out_dir)
    write_manifest(tmp / MANIFEST, [])
    publish_dir(tmp, out_dir)
