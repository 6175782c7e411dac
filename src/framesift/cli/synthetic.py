"""Synthetic test videos and a loopback HTTP server, for the offline demo and the tests.

The shapes match the shipped tiny detector: class ``square`` is a red filled square drawn with
ffmpeg's ``drawbox`` and class ``circle`` is a blue filled disc overlaid from a PNG. Objects sit
at a constant position and are visible only in ``[start, end]`` seconds.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from framesift.core.media import ffmpeg_binary

SQUARE_RGB = (230, 20, 20)
CIRCLE_RGB = (20, 40, 230)
BACKGROUNDS = ("testsrc2", "smptehdbars", "flat")


@dataclass(frozen=True)
class Shape:
    """One object drawn into a synthetic video: top-left corner and side length in pixels."""

    kind: str  # "square" or "circle"
    x: int
    y: int
    size: int
    start: float
    end: float

    def box(self) -> tuple[int, int, int, int]:
        """Pixel box (x1, y1, x2, y2) of the object."""
        return (self.x, self.y, self.x + self.size, self.y + self.size)

    def visible_at(self, seconds: float) -> bool:
        """Whether the object is drawn at time ``seconds`` (ffmpeg's ``between``: both ends)."""
        return self.start <= seconds <= self.end


@dataclass(frozen=True)
class VideoSpec:
    """What to render: background, size, duration, frame rate and objects."""

    duration: float = 4.0
    width: int = 640
    height: int = 360
    fps: int = 10
    background: str = "testsrc2"
    flat_color: str = "0x406080"
    shapes: tuple[Shape, ...] = field(default_factory=tuple)
    bitrate: str | None = None


def _background_source(spec: VideoSpec) -> str:
    size = f"{spec.width}x{spec.height}"
    common = f"size={size}:rate={spec.fps}:duration={spec.duration}"
    if spec.background == "testsrc2":
        return f"testsrc2={common}"
    if spec.background == "smptehdbars":
        return f"smptehdbars={common}"
    if spec.background == "flat":
        return f"color=c={spec.flat_color}:{common}"
    raise ValueError(f"unknown background {spec.background!r}; use one of {BACKGROUNDS}")


def _circle_png(diameter: int, directory: Path) -> Path:
    path = directory / f"circle_{diameter}.png"
    if not path.exists():
        image = Image.new("RGBA", (diameter, diameter), (0, 0, 0, 0))
        ImageDraw.Draw(image).ellipse((0, 0, diameter - 1, diameter - 1), fill=(*CIRCLE_RGB, 255))
        image.save(path)
    return path


def build_ffmpeg_args(spec: VideoSpec, output: Path, workdir: Path) -> list[str]:
    """The ffmpeg argument list (no shell) that renders ``spec`` into ``output``."""
    args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y"]
    args += ["-f", "lavfi", "-i", _background_source(spec)]
    circles = [s for s in spec.shapes if s.kind == "circle"]
    for shape in circles:
        args += ["-loop", "1", "-i", str(_circle_png(shape.size, workdir))]
    chain = "[0:v]"
    if spec.background == "flat":
        chain += "noise=alls=10:allf=t,"
    steps = []
    for shape in spec.shapes:
        if shape.kind == "square":
            steps.append(
                f"drawbox=x={shape.x}:y={shape.y}:w={shape.size}:h={shape.size}"
                f":color=0x{SQUARE_RGB[0]:02x}{SQUARE_RGB[1]:02x}{SQUARE_RGB[2]:02x}:t=fill"
                f":enable='between(t,{shape.start},{shape.end})'"
            )
        elif shape.kind != "circle":
            raise ValueError(f"unknown shape kind {shape.kind!r}; use 'square' or 'circle'")
    graph = chain + (",".join(steps) if steps else "null") + "[base0]"
    for index, shape in enumerate(circles, start=1):
        graph += (
            f";[base{index - 1}][{index}:v]overlay=x={shape.x}:y={shape.y}:shortest=1"
            f":enable='between(t,{shape.start},{shape.end})'[base{index}]"
        )
    args += ["-filter_complex", graph, "-map", f"[base{len(circles)}]"]
    args += ["-t", str(spec.duration), "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    args += ["-g", str(spec.fps * 2), "-preset", "veryfast"]
    args += ["-b:v", spec.bitrate] if spec.bitrate else ["-crf", "30"]
    args += ["-movflags", "+faststart", str(output)]
    return args


def make_video(output: Path, spec: VideoSpec) -> Path:
    """Render ``spec`` to an H.264 mp4 at ``output`` with ffmpeg; returns ``output``."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="framesift-synth-") as tmp:
        subprocess.run(build_ffmpeg_args(spec, output, Path(tmp)), check=True)
    return output


def reencode(source: Path, output: Path, width: int, bitrate: str) -> Path:
    """Re-encode ``source`` at another width and bitrate (a near-duplicate of the same clip)."""
    args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
    args += ["-vf", f"scale={width}:-2", "-c:v", "libx264", "-b:v", bitrate, str(output)]
    subprocess.run(args, check=True)
    return Path(output)


def write_corrupt_video(output: Path, size: int = 4096) -> Path:
    """A file named like a video whose bytes are not a decodable video."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * (size // 256))
    return output


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@contextmanager
def serve_directory(root: Path, port: int = 0) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1; yields the base URL (no trailing slash)."""
    with serve_handler(functools.partial(_QuietHandler, directory=str(root)), port) as base:
        yield base


@contextmanager
def serve_handler(handler: Callable[..., Any], port: int = 0) -> Iterator[str]:
    """Run an HTTP request handler on 127.0.0.1 in a thread; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def demo_specs() -> dict[str, VideoSpec]:
    """The clips of the offline demo: squares and circles in known time ranges, plus a blank."""
    return {
        "squares.mp4": VideoSpec(
            duration=6.0,
            background="testsrc2",
            shapes=(Shape("square", 400, 120, 90, 1.0, 4.0),),
        ),
        "circles.mp4": VideoSpec(
            duration=6.0,
            background="flat",
            shapes=(Shape("circle", 120, 140, 100, 2.0, 5.0),),
        ),
        "both.mp4": VideoSpec(
            duration=5.0,
            background="smptehdbars",
            shapes=(
                Shape("square", 60, 60, 80, 0.0, 3.0),
                Shape("circle", 420, 180, 90, 2.0, 5.0),
            ),
        ),
        "empty.mp4": VideoSpec(duration=4.0, background="flat", flat_color="0x305030"),
    }


def render_all(directory: Path, specs: dict[str, VideoSpec]) -> list[Path]:
    """Render every spec into ``directory`` (file name → spec); returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    return [make_video(directory / name, spec) for name, spec in specs.items()]


__all__: Sequence[str] = (
    "Shape",
    "VideoSpec",
    "make_video",
    "reencode",
    "serve_directory",
    "serve_handler",
    "write_corrupt_video",
    "demo_specs",
    "render_all",
)
