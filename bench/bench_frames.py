"""Benchmark: frame sampling strategies of ``framesift.stages.frames`` on one synthetic clip.

Baseline (measured in the same run): decoding the whole video through ffmpeg's ``fps`` filter.
Compared: mode ``interval`` (input-side seeking, several inputs per ffmpeg process) and mode
``keyframes`` (the decoder skips non-key frames), both at the same sampling period.

    python bench/bench_frames.py                     # 60 s 1280x720 clip, one frame every 10 s
    python bench/bench_frames.py --duration 120 --every 5 --repeat 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from framesift.cli.synthetic import VideoSpec, make_video
from framesift.core.config import settings_for
from framesift.core.settings import FrameSettings
from framesift.stages.frames import extract_frames


def frames(**settings) -> FrameSettings:
    """The ``frames`` settings: the schema's defaults with ``settings`` over them."""
    return settings_for({"frames": settings}).frames


def timed(video: Path, out: Path, options: FrameSettings, repeat: int) -> tuple[float, int]:
    """Best wall time of ``repeat`` extractions and the number of frames produced."""
    best, count = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        frames = extract_frames(video, "bench", out, options)
        best = min(best, time.perf_counter() - started)
        count = len(frames)
    return best, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="clip length, seconds")
    parser.add_argument("--every", type=float, default=10.0, help="sampling period, seconds")
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="framesift-bench-") as tmp:
        root = Path(tmp)
        video = make_video(
            root / "clip.mp4",
            VideoSpec(duration=args.duration, width=1280, height=720, fps=30, bitrate="3M"),
        )
        cases = [
            ("fps filter (baseline)", frames(mode="fps", fps=1.0 / args.every)),
            ("interval (input seek)", frames(mode="interval", interval=args.every)),
            ("keyframes (GOP 2 s)", frames(mode="keyframes")),
        ]
        rows = [(name, *timed(video, root / "out", opts, args.repeat)) for name, opts in cases]
    base = rows[0][1]
    print(f"clip: {args.duration:g} s 1280x720 30 fps H.264; one frame every {args.every:g} s")
    print(f"{'method':<24}{'seconds':>9}{'frames':>8}{'speed-up':>10}")
    for name, seconds, count in rows:
        print(f"{name:<24}{seconds:>9.2f}{count:>8}{base / seconds:>9.1f}x")


if __name__ == "__main__":
    main()
