"""The shared detection worker under load, against the model in one process (see docs/worker.md).

Renders F synthetic frames (W×H JPEG, shapes on noise), then, in a temp directory:
  1. cold start: a first client starts the worker and gets its first answer;
  2. per-video client cost: fresh `python` processes that each import the client and send one
     video's frames (what a filter job does beside Snakemake's own start-up), median;
  3. N videos × F frames from K concurrent client processes (one request per video, asking
     for the hashes of the kept frames as filter jobs do, unless `--hash none`): wall,
     frames/s, and the worker's own seconds inside the model → busy fraction of the model
     (on a GPU: of the GPU);
  4. the same N × F frames through the model in this process (the single-process reference,
     hashing the same frames from the same decode when hashes are asked for).
Prints a markdown table. The busy fraction under load is the projection for 1000 videos × F
frames: the worker streams, so it does not change with N.

    python bench/bench_worker.py                          # CPU: framesift:shapes at 320
    python bench/bench_worker.py --model yolov8n.yaml --imgsz 640 --videos 200   # on a GPU
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from framesift.core.config import settings_for  # noqa: E402
from framesift.detection.client import WorkerClient, WorkerSpec  # noqa: E402
from framesift.detection.detector import DetectOptions, LocalDetector, load_model  # noqa: E402
from framesift.hashing.tables import HashSpec  # noqa: E402


def render_frames(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """``count`` JPEG frames: noise, a red square or a blue disc moving across."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        pixels = rng.integers(40, 200, (height, width, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        side = height // 5
        x = (k * width // max(count, 1)) % (width - side)
        box = (x, height // 3, x + side, height // 3 + side)
        if k % 3 == 0:
            draw.rectangle(box, fill=(220, 20, 20))
        elif k % 3 == 1:
            draw.ellipse(box, fill=(20, 40, 220))
        path = folder / f"f_{k:05d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def _hashing(hash_type: str) -> HashSpec | None:
    return None if hash_type == "none" else HashSpec(hash_type, 8, negatives=False)


def _one_video(args: tuple[str, list[str], int, str]) -> int:
    """A client process's work for one video: one request, every answer read."""
    spec_json, frames, owner, hash_type = args
    client = WorkerClient(WorkerSpec.from_json(spec_json), owner=owner)
    return sum(1 for _ in client.detect_paths([Path(f) for f in frames], _hashing(hash_type)))


def client_process_cost(
    spec: WorkerSpec, frames: list[Path], owner: int, reps: int
) -> tuple[float, float]:
    """Median wall seconds and peak RSS (MB) of a fresh process that imports the client and
    sends one video's frames."""
    code = (
        "import sys; from pathlib import Path; "
        "from framesift.detection.client import WorkerClient, WorkerSpec; "
        f"c = WorkerClient(WorkerSpec.from_json(sys.argv[1]), owner={owner}); "
        "n = sum(1 for _ in c.detect_paths([Path(p) for p in sys.argv[2:]])); "
        "assert 'torch' not in sys.modules; import resource; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    times, peaks = [], []
    for _ in range(reps):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code, spec.to_json(), *map(str, frames)],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - started)
        peaks.append(float(done.stdout.split()[-1]))
    return statistics.median(times), max(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="framesift:shapes")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--frames", type=int, default=60, help="frames per video")
    parser.add_argument("--clients", type=int, default=8, help="concurrent filter jobs")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--hash", default="phash", help="hash type asked for kept frames, or none (detection only)"
    )
    parser.add_argument(
        "--reference-videos", type=int, default=None, help="videos for the in-process run"
    )
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    detection = {"model": args.model, "conf": 0.25, "imgsz": args.imgsz, "batch": args.batch}
    settings = settings_for(
        {"filter": {**detection, "device": args.device}, "worker": {"idle_timeout": 120}}
    )
    spec = WorkerSpec.of(settings.filter, settings.worker)
    owner = os.getpid()
    setup = f"{args.model} imgsz {args.imgsz} batch {args.batch}, frames {args.size}"
    setup += f", hashes: {args.hash}"
    print(f"\n{setup}, median of {args.reps}\n\n| measure | value |\n|---|---|", flush=True)

    def row(name: str, value: str) -> None:
        print(f"| {name} | {value} |", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        os.chdir(tmp)
        frames = render_frames(Path(tmp) / "frames", args.frames, width, height)
        names = [str(f) for f in frames]

        started = time.perf_counter()
        client = WorkerClient(spec, owner=owner)
        first = next(iter(client.detect_paths(frames[:1])))
        cold = time.perf_counter() - started
        row(*("worker cold start + first frame", f"{cold:.2f} s on {client.device}"))
        assert first is not None

        cost, client_rss = client_process_cost(spec, frames[:1], owner, args.reps)
        row("filter client process, 1 frame (median)", f"{cost:.3f} s wall")
        row("filter client peak RSS", f"{client_rss:.0f} MB (no torch)")

        walls, busy, per_frame = [], [], []
        for _ in range(args.reps):
            before = client.ping()
            started = time.perf_counter()
            with ProcessPoolExecutor(args.clients) as pool:
                work = [(spec.to_json(), names, owner, args.hash)] * args.videos
                done = sum(pool.map(_one_video, work))
            wall = time.perf_counter() - started
            after = client.ping()
            served = (len(walls) + 1) * args.videos  # the worker streams: this stays flat
            row(f"worker peak RSS after {served} videos", f"{after['peak_rss_mb']:.0f} MB")
            assert done == args.videos * args.frames
            infer = after["infer_s"] - before["infer_s"]
            count = after["frames"] - before["frames"]
            walls.append(wall)
            busy.append(infer / wall)
            per_frame.append(infer / count)
        total = args.videos * args.frames
        wall = statistics.median(walls)
        row(
            *(
                f"worker: {args.videos} videos × {args.frames} frames, {args.clients} clients",
                f"{wall:.2f} s wall, {total / wall:.0f} frames/s",
            )
        )
        row(*("model time per frame in the worker", f"{statistics.median(per_frame) * 1e3:.2f} ms"))
        row(
            *(
                "model busy under load (projection for 1000 videos)",
                f"{statistics.median(busy):.0%}",
            )
        )
        client.stop()

        model = load_model(args.model)
        local = LocalDetector(model, DetectOptions.of(settings.filter))
        hashing = _hashing(args.hash)
        list(local.detect_paths(frames[: args.batch], hashing))  # warm-up, as the worker's
        local_walls = []
        videos = args.reference_videos or args.videos
        for _ in range(args.reps):
            started = time.perf_counter()
            for _ in range(videos):
                for _ in local.detect_paths(frames, hashing):
                    pass
            local_walls.append(time.perf_counter() - started)
        local_wall = statistics.median(local_walls) * args.videos / videos  # scaled to N
        row(
            *(
                "same frames, model in one process (reference)",
                f"{local_wall:.2f} s wall, {total / local_wall:.0f} frames/s "
                f"(worker: {local_wall / wall:.2f}× its throughput)",
            )
        )
        os.chdir("/")


if __name__ == "__main__":
    main()
