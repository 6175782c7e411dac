"""Progress lines (framesift.core.progress) and that the real stages emit them into their logs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from framesift.core.config import settings_for
from framesift.core.progress import Progress, download_hook
from framesift.stages.download import download_video
from framesift.stages.frames import extract_frames


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _file_logger(path: Path, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    logger.addHandler(logging.FileHandler(path))
    logger.propagate = False
    return logger


def test_progress_is_throttled_and_reports_rate(tmp_path: Path) -> None:
    log_file = tmp_path / "p.log"
    clock = _Clock()
    progress = Progress(_file_logger(log_file, "p1"), "filter", total=10, every=2.0, clock=clock)
    for _ in range(10):
        clock.now += 0.5
        progress.advance()
    progress.finish()
    lines = log_file.read_text().splitlines()
    assert lines == [
        "filter: 4/10 frames (2.0 frames/s)",
        "filter: 8/10 frames (2.0 frames/s)",
        "filter: 10/10 frames (2.0 frames/s), done",
    ]


def test_download_hook_formats_percent_size_and_speed(tmp_path: Path) -> None:
    log_file = tmp_path / "d.log"
    clock = _Clock()
    hook = download_hook(_file_logger(log_file, "p2"), every=1.0, clock=clock)
    total = 4 * 1024 * 1024
    for step in range(1, 5):
        clock.now += 0.6
        status = "finished" if step == 4 else "downloading"
        hook(
            {
                "status": status,
                "downloaded_bytes": step * 1024 * 1024,
                "total_bytes": total,
                "speed": 1024 * 1024,
                "eta": 4 - step,
            }
        )
    assert log_file.read_text().splitlines() == [
        "download: 25.0% of 4.0 MiB at 1.0 MiB/s, ETA 3 s",
        "download: 75.0% of 4.0 MiB at 1.0 MiB/s, ETA 1 s",
        "download: 100.0% of 4.0 MiB at 1.0 MiB/s, done",
    ]


def test_real_download_and_extraction_log_progress(server: str, tmp_path: Path) -> None:
    log_file = tmp_path / "job.log"
    log = _file_logger(log_file, "p3")
    out = tmp_path / "out"
    out.mkdir()
    settings = settings_for(
        {"download": {"socket_timeout": 5, "retries": 0, "timeout": 60}, "frames": {"fps": 2.0}}
    )
    options = settings.download
    video = out / "v.mp4"
    download_video(f"{server}/alpha.mp4", "v", video, out / "v.info.json", options, log)
    frames = extract_frames(video, "v", out / "frames", settings.frames, log)
    text = log_file.read_text()
    assert re.search(r"^download: 100\.0% of [\d.]+ KiB.*, done$", text, re.MULTILINE), text
    done = rf"^extract: {len(frames)} frames \([\d.]+ frames/s\), done$"
    assert re.search(done, text, re.MULTILINE), text
