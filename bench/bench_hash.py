"""Benchmark: framesift's per-frame hashing against the plain imagehash loop.

Renders ``--frames`` 1280x720 JPEG frames (ffmpeg ``testsrc2`` plus temporal noise, written with
``-q:v 2`` as the frames stage writes them) into a temporary folder, or uses ``--images``. Then,
interleaved, ``--repeat`` times each, one process, times:

- ``plain loop``: ``[imagehash.phash(Image.open(p)) for p in paths]`` (the type of ``--type``);
- ``framesift from the files``: hashing frame files in one process (one decode, hash, sharpness
  and consecutive-duplicate collapsing), as the reference does (``frame_hashes.hash_files``);
- ``framesift in the worker``: what hashing adds in the detection worker, which hashes the frames
  it has already decoded for detection (docs/worker.md): grayscale conversion, hash and
  sharpness on a decoded frame (decoded outside the timing, as detection needs it anyway);
- ``decode + RGB->L only``: ``Image.open(p).convert("L")``, the floor of any hashing of JPEG files
  that stays bit-identical to imagehash (imagehash hashes exactly this grayscale image);
- ``Lanczos resize only``: the resize imagehash does on the already-decoded grayscale frames.

Prints a markdown table (median of the repetitions: frames per wall second and per CPU second,
wall and CPU seconds, ratio to the plain loop by CPU time and by wall time) and checks that
framesift's hashes equal the plain loop's, frame by frame (exit status 1 if not).

    python bench/bench_hash.py                        # 300 frames, phash 8, 3 repetitions
    python bench/bench_hash.py --frames 200 --repeat 5 --type dhash
    python bench/bench_hash.py --images 'results/frames/*/*.jpg'   # real frames instead
"""

from __future__ import annotations

import argparse
import glob
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import imagehash
from frame_hashes import hash_files  # this folder is on sys.path
from PIL import Image

from framesift.core.media import ffmpeg_binary
from framesift.hashing.image_hash import signature
from framesift.hashing.tables import HashSpec

PLAIN = {
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "ahash": imagehash.average_hash,
    "whash": imagehash.whash,
}
RESIZE = {  # the grayscale size each imagehash function resizes a WxH frame to
    "phash": lambda size, w, h: (size * 4, size * 4),
    "dhash": lambda size, w, h: (size + 1, size),
    "ahash": lambda size, w, h: (size, size),
    "whash": lambda size, w, h: (max(2 ** (min(w, h).bit_length() - 1), size),) * 2,
}


def render_frames(directory: Path, count: int, width: int, height: int) -> list[Path]:
    """``count`` JPEG frames of a moving ``testsrc2`` pattern with temporal noise."""
    source = f"testsrc2=size={width}x{height}:rate=5"
    args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    args += ["-i", source, "-vf", "noise=alls=4:allf=t", "-frames:v", str(count)]
    args += ["-q:v", "2", str(directory / "%06d.jpg")]
    subprocess.run(args, check=True)
    return sorted(directory.glob("*.jpg"))


def measure(fn: Callable[[], object]) -> tuple[float, float, object]:
    """Wall seconds, CPU seconds (this process) and result of one call of ``fn``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames to render")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--images", help="glob of existing JPEG frames to use instead")
    parser.add_argument("--type", default="phash", choices=sorted(PLAIN), help="hash type")
    parser.add_argument("--size", type=int, default=8, help="hash size")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (median reported)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="framesift-bench-hash-") as tmp:
        if args.images:
            paths = sorted(Path(p) for p in glob.glob(args.images))
        else:
            paths = render_frames(Path(tmp), args.frames, args.width, args.height)
        if not paths:
            parser.error("no frames to hash")
        frames = [(p, i * 200, 0.5) for i, p in enumerate(paths)]
        plain_fn = PLAIN[args.type]
        with Image.open(paths[0]) as first:
            width, height = first.size
        target = RESIZE[args.type](args.size, width, height)
        grays: list[Image.Image] = []  # decoded once, outside the timings, for the resize row
        decoded: list[Image.Image] = []  # decoded once: what the worker holds after detection
        spec = HashSpec(args.type, args.size, negatives=False)

        def plain() -> list[str]:
            return [str(plain_fn(Image.open(p), hash_size=args.size)) for p in paths]

        def framesift() -> list[str]:
            records = hash_files(frames, spec, collapse_threshold=4)
            return [r.hash_hex for r in records]

        def in_worker() -> list[str]:
            if not decoded:
                for p in paths:
                    with Image.open(p) as image:
                        image.load()
                        decoded.append(image.copy())
            return [signature(image.convert("L"), spec).hash_hex for image in decoded]

        def decode_only() -> None:
            for p in paths:
                with Image.open(p) as image:
                    image.convert("L")

        def resize_only() -> None:
            if not grays:
                grays.extend(Image.open(p).convert("L") for p in paths)
            for gray in grays:
                gray.resize(target, Image.Resampling.LANCZOS)

        cases = {
            f"plain loop `imagehash.{plain_fn.__name__}(Image.open(p))`": plain,
            "framesift from the files (hash + sharpness + collapse)": framesift,
            "framesift in the worker (decoded for detection; L + hash + sharpness)": in_worker,
            "decode + RGB->L only (`Image.open(p).convert('L')`)": decode_only,
            f"Lanczos resize to {target[0]}x{target[1]} only (pre-decoded)": resize_only,
        }
        for fn in cases.values():  # warm-up: page cache, lazy imports, decoded grayscale frames
            fn()
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        results: dict[str, object] = {}
        for _ in range(args.repeat):
            for name, fn in cases.items():
                wall, cpu, results[name] = measure(fn)
                times[name].append((wall, cpu))

    names = list(cases)
    plain_hashes, framesift_hashes = results[names[0]], results[names[1]]
    same = plain_hashes == framesift_hashes == results[names[2]]
    n = len(paths)
    medians = {
        name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
        for name, t in times.items()
    }
    base_wall, base_cpu = medians[names[0]]
    print(
        f"{n} frames {width}x{height} JPEG, {args.type} hash_size={args.size}, "
        f"median of {args.repeat} interleaved repetitions, one process"
    )
    print()
    header = ("case", "frames/s (wall)", "frames/CPU-s", "wall s", "CPU s")
    print("| " + " | ".join(header) + " | vs plain (CPU) | vs plain (wall) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        wall, cpu = medians[name]
        print(
            f"| {name} | {n / wall:.0f} | {n / cpu:.0f} | {wall:.2f} | {cpu:.2f} "
            f"| {base_cpu / cpu:.2f}x | {base_wall / wall:.2f}x |"
        )
    print()
    print(f"hashes identical to the plain loop: {'yes' if same else 'NO'} ({n} frames)")
    if not same:
        differing = sum(a != b for a, b in zip(plain_hashes, framesift_hashes, strict=True))
        print(f"{differing} frames differ", file=sys.stderr)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
