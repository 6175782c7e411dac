"""Benchmark: the whole framesift workflow against a single-process reference on synthetic videos.

Renders N synthetic 640x360 clips (10-20 s, red squares / blue discs in known time ranges,
deterministic from ``--seed``), serves them on 127.0.0.1 and runs, interleaved, ``--repeat``
times each:

- **framesift**: ``python -m snakemake`` on this checkout's Snakefile in a fresh temp directory
  (``--cores 2 --resources gpu=1``): one job per video and stage; the filter jobs are clients
  of one shared detection worker (one model load per run, docs/worker.md);
- **reference**: ``bench/reference_pipeline.py``, one Python process that loads the model once
  and runs download -> frames -> filter -> hash per video with the same library functions and
  the same config (no Snakemake, no lifecycle records, no aggregate).

Wall and CPU seconds are medians over the repetitions. CPU is user + sys of every process a run
starts, from ``getrusage(RUSAGE_CHILDREN)`` with this process as child subreaper
(``proctree.py``): the detection worker, started detached by a job that exits, is adopted here
and waited for (each run ends when its worker has exited and been reaped), so its model load,
inference and hashing are counted; the former measure, waited-for descendants only, is printed
beside it. Also printed: per-rule job times from framesift's Snakemake benchmark files, the
filter's per-frame inference time and fixed cost per video, the projected GPU busy fraction for
1000 videos x 60 frames, a no-op rerun and a dry run with 1000 URLs.

    python bench/bench_pipeline.py                                # 20 videos, 3 repetitions
    python bench/bench_pipeline.py --videos 3 --repeat 1 --skip-1000   # quick check
    python bench/bench_pipeline.py --selfcheck    # the CPU accounting on a detached process
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proctree import Counted, run_counted, selfcheck, slurm_stall_note

from framesift.cli.synthetic import BACKGROUNDS, Shape, VideoSpec, make_video, serve_directory

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).resolve().with_name("reference_pipeline.py")
WIDTH, HEIGHT, FPS = 640, 360, 10
FRAMES_FPS = 1.0
RULES = ("download_video", "extract_frames", "filter_frames")
# the reference's stage timings a framesift job compares with (the filter job also hashes)
STAGES_OF_RULE = {
    "download_video": ("download_s",),
    "extract_frames": ("frames_s",),
    "filter_frames": ("filter_s", "hash_s"),
}
ASSUMED_GPU_FRAME_S = 0.002  # per-frame GPU time assumed when no GPU was measured
# Measured by bench/bench_worker.py on an NVIDIA H200 (2026-11-26): model time per frame in the
# worker, framesift:shapes at 320 on 1280x720 frames (yolov8n at 640: 1.44 ms)
H200_FRAME_S = 0.00132
CONCURRENT_CLIENTS = (2, 8)  # filter jobs at once: --cores 2 here, --cores 8 (README)
PROJECTED_VIDEOS, PROJECTED_FRAMES = 1000, 60
MANY_URLS = 1000


Measured = Counted  # one run: wall, CPU of its whole tree (adopted descendants too), status


@dataclass
class Repetition:
    """The results of one repetition of both pipelines."""

    framesift: Measured
    reference: Measured
    framesift_kept: set[str]
    reference_kept: set[str]
    framesift_frames: int
    benchmarks: dict[str, list[tuple[str, float, float | None]]]  # rule -> (vid, s, cpu_time)
    requests: dict[str, float] = field(default_factory=dict)  # vid -> s in the worker's hands
    timings: dict[str, Any] = field(default_factory=dict)  # reference_pipeline's JSON


def video_specs(count: int, seed: int) -> dict[str, VideoSpec]:
    """``count`` clips (file name -> spec): 10-20 s, 0-2 shapes each, deterministic from ``seed``.

    Durations are whole seconds and shapes start and end on half seconds, so a frame sampled at
    1 fps (whole seconds) never sits on the edge of a shape's time range.
    """
    rng = random.Random(seed)
    specs = {}
    for index in range(count):
        duration = rng.randint(10, 20)
        shapes = []
        for _ in range(rng.choice((0, 1, 1, 2, 2))):
            size = rng.randint(60, 110)
            start = rng.randint(0, duration - 3) + 0.5
            end = min(start + rng.randint(2, 8), duration - 0.5)
            kind = rng.choice(("square", "circle"))
            x, y = rng.randint(0, WIDTH - size), rng.randint(0, HEIGHT - size)
            shapes.append(Shape(kind, x, y, size, start, end))
        specs[f"clip{index:03d}.mp4"] = VideoSpec(
            duration=float(duration),
            width=WIDTH,
            height=HEIGHT,
            fps=FPS,
            background=rng.choice(BACKGROUNDS),
            flat_color=f"0x{rng.randint(0x30, 0x90):02x}{rng.randint(0x30, 0x90):02x}60",
            shapes=tuple(shapes),
        )
    return specs


def expected_kept(specs: dict[str, VideoSpec], fps: float = FRAMES_FPS) -> int:
    """Frames sampled at ``fps`` that show a drawn object (what a perfect detector keeps)."""
    return sum(
        1
        for spec in specs.values()
        for n in range(int(spec.duration * fps))
        if any(shape.visible_at(n / fps) for shape in spec.shapes)
    )


def bench_config(device: str) -> dict[str, Any]:
    """The framesift config of both pipelines (loopback downloads: short timeouts, no retry)."""
    return {
        "urls": "config/urls.txt",
        "download": {"socket_timeout": 10, "retries": 1, "timeout": 120, "job_retries": 0},
        "frames": {"mode": "fps", "fps": FRAMES_FPS},
        "filter": {
            "model": "framesift:shapes",
            "classes": ["square", "circle"],
            "imgsz": 320,
            "conf": 0.4,
            "device": device,
        },
    }


def offline_env(root: Path) -> dict[str, str]:
    """This environment plus ultralytics kept offline and quiet, its settings under ``root``."""
    config_dir = root / "ultralytics-config"
    (config_dir / "Ultralytics").mkdir(parents=True, exist_ok=True)
    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if font.exists():  # ultralytics would try to download Arial.ttf otherwise
        shutil.copy(font, config_dir / "Ultralytics" / "Arial.ttf")
    return {
        **os.environ,
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "False",
        "YOLO_VERBOSE": "False",
        "YOLO_CONFIG_DIR": str(config_dir),
    }


def write_workdir(workdir: Path, config: dict[str, Any], urls: Sequence[str]) -> Path:
    """A workflow directory with ``config/config.yaml`` and ``config/urls.txt``; the config."""
    import yaml

    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "urls.txt").write_text("\n".join(urls) + "\n")
    path = workdir / "config" / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_measured(command: list[str], env: dict[str, str], log_path: Path) -> Measured:
    """Run ``command`` (output to ``log_path``); wall seconds and user+sys CPU of every process
    it starts: Snakemake's jobs, their ffmpeg and yt-dlp children and the detection worker,
    which outlives the job that started it and is waited for after the run (``proctree``)."""
    with log_path.open("w") as handle:
        return run_counted(command, env=env, stdout=handle, stderr=subprocess.STDOUT)


def snakemake_command(workdir: Path, *extra: str) -> list[str]:
    """``python -m snakemake`` on this checkout's Snakefile in ``workdir``, 2 cores, one GPU."""
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--cores", "2",
        *extra,
        "--resources=gpu=1",  # one token: nothing after it can be read as a resource
    ]  # fmt: skip


def check_ok(what: str, measured: Measured, log_path: Path, *expected: str) -> None:
    """Stop with the log's tail when a run failed or its log lacks an ``expected`` text."""
    text = log_path.read_text(errors="replace")
    missing = [e for e in expected if e not in text]
    if measured.returncode != 0 or missing:
        tail = "".join(text.splitlines(keepends=True)[-40:])
        why = f"exited {measured.returncode}" if measured.returncode else f"lacks {missing}"
        raise SystemExit(f"{what} {why}; last lines of {log_path}:\n{tail}")


def read_benchmarks(workdir: Path) -> dict[str, list[tuple[str, float, float | None]]]:
    """Snakemake benchmark files: rule -> [(video id or '', wall s, cpu_time or None)]."""
    found: dict[str, list[tuple[str, float, float | None]]] = {}
    for path in sorted((workdir / "benchmarks").rglob("*.tsv")):
        rule = path.parent.name if path.parent.name != "benchmarks" else path.stem
        vid = path.stem if path.parent.name != "benchmarks" else ""
        with path.open() as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                cpu = row.get("cpu_time", "NA")
                cpu_time = float(cpu) if cpu not in ("NA", "", None) else None
                found.setdefault(rule, []).append((vid, float(row["s"]), cpu_time))
    return found


def worker_request_seconds(workdir: Path) -> dict[str, float]:
    """Per video, the seconds its filter job spent sending frames to the shared worker and
    reading the answers (from the job's log line "detection worker ...: N frames in X s")."""
    found = {}
    for path in (workdir / "logs" / "filter_frames").glob("*.log"):
        match = re.search(
            r"detection worker \S+ on \S+: \d+ frames in ([\d.]+) s", path.read_text()
        )
        if match:
            found[path.stem] = float(match.group(1))
    return found


def kept_names(folder: Path) -> set[str]:
    """Names of the kept frames (``*/*.jpg``) under ``folder``."""
    return {path.name for path in folder.glob("*/*.jpg")}


def run_repetition(
    index: int, root: Path, config_path: Path, urls_path: Path, env: dict[str, str]
) -> Repetition:
    """One repetition: framesift and the reference, in alternating order across repetitions."""
    fs_dir, ref_dir = root / f"rep{index}-framesift", root / f"rep{index}-reference"
    shutil.copytree(config_path.parent, fs_dir / "config")
    fs_log, ref_log = root / f"rep{index}-framesift.log", root / f"rep{index}-reference.log"
    timings_path = ref_dir / "timings.json"
    reference_command = [
        sys.executable, str(REFERENCE),
        "--config", str(config_path), "--urls", str(urls_path),
        "--out", str(ref_dir), "--timings", str(timings_path),
    ]  # fmt: skip
    runs: dict[str, Measured] = {}
    order = ("framesift", "reference") if index % 2 == 0 else ("reference", "framesift")
    for name in order:
        if name == "framesift":
            runs[name] = run_measured(snakemake_command(fs_dir), env, fs_log)
            check_ok("snakemake", runs[name], fs_log)
        else:
            runs[name] = run_measured(reference_command, env, ref_log)
            check_ok("reference_pipeline.py", runs[name], ref_log)
        done = runs[name]
        log(
            f"repetition {index + 1}: {name} {done.wall:.1f} s wall, {done.cpu:.1f} s CPU "
            f"({done.cpu_waited:.1f} waited-for; {done.adopted} detached descendant(s) reaped "
            f"{done.settle:.2f} s after the run)"
        )
    return Repetition(
        framesift=runs["framesift"],
        reference=runs["reference"],
        framesift_kept=kept_names(fs_dir / "results" / "filtered"),
        reference_kept=kept_names(ref_dir / "kept"),
        framesift_frames=sum(1 for _ in (fs_dir / "results" / "frames").glob("*/*.jpg")),
        benchmarks=read_benchmarks(fs_dir),
        requests=worker_request_seconds(fs_dir),
        timings=json.loads(timings_path.read_text()),
    )


def log(message: str) -> None:
    """A progress line on stderr (the results go to stdout)."""
    print(f"[bench_pipeline] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    """Median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


def per_frame_inference(timings: dict[str, Any]) -> tuple[float, float]:
    """(seconds per frame, one-off warm-up seconds) of the reference's filter_frames calls.

    The first video's call also sets up the predictor, so the per-frame time comes from the
    other videos (all of them when there is only one); the warm-up is the first call's excess.
    """
    videos = [v for v in timings["videos"] if v["frames_in"] > 0]
    if not videos:
        return float("nan"), float("nan")
    steady = videos[1:] or videos
    per_frame = sum(v["filter_s"] for v in steady) / sum(v["frames_in"] for v in steady)
    warmup = videos[0]["filter_s"] - videos[0]["frames_in"] * per_frame
    return per_frame, warmup if len(videos) > 1 else float("nan")


def ratio(a: float, b: float) -> str:
    """``a/b`` formatted, '-' when undefined."""
    return f"{a / b:.2f}x" if b > 0 else "-"


def print_report(
    args: argparse.Namespace,
    specs: dict[str, VideoSpec],
    reps: list[Repetition],
    noop: Measured,
    dry: Measured | None,
    slurm_note: str | None,
) -> None:
    """The results tables (markdown) on stdout."""
    fs_wall = median([r.framesift.wall for r in reps])
    fs_cpu = median([r.framesift.cpu for r in reps])
    ref_wall = median([r.reference.wall for r in reps])
    ref_cpu = median([r.reference.cpu for r in reps])
    fs_waited = median([r.framesift.cpu_waited for r in reps])
    ref_waited = median([r.reference.cpu_waited for r in reps])
    adopted = sorted({r.framesift.adopted for r in reps})
    settle = max(r.framesift.settle for r in reps)
    aggregate = [sum(s for _, s, _ in r.benchmarks.get("build_dataset", [])) for r in reps]
    fs_wall_no_agg = median([r.framesift.wall - a for r, a in zip(reps, aggregate, strict=True)])
    fs_kept, ref_kept = reps[-1].framesift_kept, reps[-1].reference_kept
    seconds = sum(spec.duration for spec in specs.values())
    ref_frames = sum(v["frames_in"] for v in reps[-1].timings["videos"])

    print(
        f"# bench_pipeline {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}, "
        f"nproc {len(os.sched_getaffinity(0))}, device {args.device}"
    )
    print(f"# command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"# {len(specs)} videos {WIDTH}x{HEIGHT} {FPS} fps, {seconds:.0f} s in all, seed "
        f"{args.seed}; frames fps {FRAMES_FPS:g}, framesift:shapes imgsz 320 conf 0.4; "
        f"medians of {len(reps)} repetition(s)"
    )
    print(
        f"# CPU: every process of a run, from RUSAGE_CHILDREN with this process as child "
        f"subreaper; detached descendants reaped after each framesift run: "
        f"{'/'.join(map(str, adopted))} (the detection worker), at most {settle:.2f} s after it"
    )
    if slurm_note:
        print(f"# {slurm_note}")
    print()
    print("| | framesift | reference | framesift/reference |")
    print("|---|---:|---:|---:|")
    print(f"| wall s | {fs_wall:.1f} | {ref_wall:.1f} | {ratio(fs_wall, ref_wall)} |")
    print(f"| CPU s (user+sys, process tree) | {fs_cpu:.1f} | {ref_cpu:.1f} | "
          f"{ratio(fs_cpu, ref_cpu)} |")  # fmt: skip
    print(f"| CPU s, waited-for descendants only (former measure: no worker) | {fs_waited:.1f} | "
          f"{ref_waited:.1f} | {ratio(fs_waited, ref_waited)} |")  # fmt: skip
    print(
        f"| wall s without the aggregate (build_dataset) | {fs_wall_no_agg:.1f} | {ref_wall:.1f} | "
        f"{ratio(fs_wall_no_agg, ref_wall)} |"
    )
    print(f"| frames extracted | {reps[-1].framesift_frames} | {ref_frames} | |")
    same = "same" if fs_kept == ref_kept else "DIFFERENT"
    print(f"| frames kept | {len(fs_kept)} | {len(ref_kept)} | {same} |")
    print(f"| frames showing a drawn object (truth) | {expected_kept(specs)} | | |")
    for number, rep in enumerate(reps, start=1):
        if len(rep.framesift_kept) != len(rep.reference_kept) or (
            rep.framesift_kept != rep.reference_kept
        ):
            print(
                f"WARNING: repetition {number}: framesift kept {len(rep.framesift_kept)} frames, "
                f"the reference {len(rep.reference_kept)} "
                f"({len(rep.framesift_kept ^ rep.reference_kept)} names differ)"
            )

    print()
    print("Per video and stage (medians over videos and repetitions; framesift: Snakemake")
    print("benchmark files, one job each, cpu_time is psutil-sampled; reference: in-process):")
    print()
    print("| stage | framesift job s | framesift job CPU s | reference s | job - reference s |")
    print("|---|---:|---:|---:|---:|")
    for rule in RULES:
        rows = [row for r in reps for row in r.benchmarks.get(rule, [])]
        job_s = median([s for _, s, _ in rows])
        cpu = median([c for _, _, c in rows if c is not None])
        stages = STAGES_OF_RULE[rule]
        ref_s = median([sum(v[s] for s in stages) for r in reps for v in r.timings["videos"]])
        label = f"{rule} (reference: {' + '.join(s[:-2] for s in stages)})"
        print(f"| {label} | {job_s:.2f} | {cpu:.2f} | {ref_s:.2f} | {job_s - ref_s:.2f} |")
    agg_rows = [row for r in reps for row in r.benchmarks.get("build_dataset", [])]
    agg_cpu = median([c for _, _, c in agg_rows if c is not None])
    print(f"| build_dataset (once per run) | {median(aggregate):.2f} | {agg_cpu:.2f} | - | |")
    load = median([r.timings["model_load_s"] for r in reps])
    print(f"| reference: model load (once per run) | | | {load:.2f} | |")

    inference = [per_frame_inference(r.timings) for r in reps]
    per_frame, warmup = median([p for p, _ in inference]), median([w for _, w in inference])
    frames_of = {v["video_id"]: v["frames_in"] for v in reps[-1].timings["videos"]}
    filter_rows = [row for r in reps for row in r.benchmarks.get("filter_frames", [])]
    # fixed cost: the job's wall time outside its request to the worker (process start,
    # Snakemake's script preamble, imports, reading the manifest, linking, records)
    fixed = median([s - r.requests[vid] for r in reps for vid, s, _ in
                    r.benchmarks.get("filter_frames", []) if vid in r.requests])  # fmt: skip
    request = median([t for r in reps for t in r.requests.values()])
    print()
    print("Filter (jobs are clients of the shared worker; they overlap, the worker batches):")
    print(
        f"- inference per frame (reference, {args.device}, videos 2..N): "
        f"{per_frame * 1000:.1f} ms; one-off warm-up in the first video's call: {warmup:.2f} s"
    )
    print(
        f"- filter job wall per video (framesift, median): "
        f"{median([s for _, s, _ in filter_rows]):.2f} s for "
        f"{median(list(frames_of.values())):.0f} frames (median)"
    )
    print(f"- request to the worker per video (frames in, answers out; median): {request:.2f} s")
    print(f"- filter fixed cost per video (job s - request s, median): {fixed:.2f} s")
    # K clients at once keep the GPU busy unless all K are in their fixed part at once:
    # busy = min(1, K * i / (f + i)) with i = frames x GPU s/frame, f = the fixed cost
    for name, gpu_frame in (("2 ms/frame (assumed)", ASSUMED_GPU_FRAME_S),
                            ("1.32 ms/frame (H200, bench_worker.py)", H200_FRAME_S)):  # fmt: skip
        inference_s = PROJECTED_FRAMES * gpu_frame
        busy = [min(1.0, k * inference_s / (fixed + inference_s)) for k in CONCURRENT_CLIENTS]
        shares = ", ".join(
            f"{k} clients {b * 100:.0f} %" for k, b in zip(CONCURRENT_CLIENTS, busy, strict=True)
        )
        print(
            f"- projected GPU busy, {PROJECTED_VIDEOS} videos x {PROJECTED_FRAMES} frames at "
            f"{name}, fixed cost as measured here: {shares}"
        )

    print()
    print("Snakemake bookkeeping:")
    print(
        f"- no-op rerun of the {len(specs)}-video run: {noop.wall:.1f} s wall, {noop.cpu:.1f} s CPU"
        f" ({noop.adopted} detached descendant(s) reaped)"
    )
    print(
        f"  (a no-op rerun of {MANY_URLS} videos would need {MANY_URLS} finished videos; "
        f"this is the {len(specs)}-video one)"
    )
    if dry is None:
        print(f"- dry run (snakemake -n) with {MANY_URLS} URL lines: skipped (--skip-1000)")
    else:
        print(
            f"- dry run (snakemake -n) with {MANY_URLS} URL lines: {dry.wall:.1f} s wall, "
            f"{dry.cpu:.1f} s CPU"
        )


def main() -> None:
    """Render, serve, run both pipelines ``--repeat`` times interleaved, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=20, help="synthetic videos (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each pipeline")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic videos")
    parser.add_argument("--device", default="cpu", help="filter.device: cpu, cuda, cuda:0 ...")
    parser.add_argument("--keep", action="store_true", help="keep the temp directories")
    parser.add_argument(
        "--skip-1000", action="store_true", help=f"skip the dry run with {MANY_URLS} URL lines"
    )
    parser.add_argument(
        "--selfcheck", action="store_true",
        help="only check the CPU accounting: a detached grandchild is counted (exit 1 if not)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.selfcheck:
        sys.exit(selfcheck())
    if args.videos < 1 or args.repeat < 1:
        parser.error("--videos and --repeat must be at least 1")

    slurm_note = slurm_stall_note()
    if slurm_note:
        log(slurm_note)
    root = Path(tempfile.mkdtemp(prefix="framesift-bench-pipeline-"))
    try:
        env = offline_env(root)
        specs = video_specs(args.videos, args.seed)
        log(f"rendering {len(specs)} videos into {root / 'served'}")
        for name, spec in specs.items():
            make_video(root / "served" / name, spec)
        config = bench_config(args.device)
        with serve_directory(root / "served") as base:
            urls = [f"{base}/{name}" for name in specs]
            config_path = write_workdir(root / "inputs", config, urls)
            urls_path = config_path.with_name("urls.txt")
            reps = [
                run_repetition(index, root, config_path, urls_path, env)
                for index in range(args.repeat)
            ]
            last = root / f"rep{args.repeat - 1}-framesift"
            noop_log = root / "noop-rerun.log"
            noop = run_measured(snakemake_command(last), env, noop_log)
            check_ok("snakemake (no-op rerun)", noop, noop_log)
            if "Nothing to be done" not in noop_log.read_text(errors="replace"):
                log(f"WARNING: the no-op rerun ran jobs (see {noop_log})")
        dry = None
        if not args.skip_1000:
            many = [f"http://127.0.0.1:9/bench/clip{i:04d}.mp4" for i in range(MANY_URLS)]
            dry_dir = root / f"dry-{MANY_URLS}"
            write_workdir(dry_dir, config, many)
            dry_log = root / f"dry-{MANY_URLS}.log"
            log(f"dry run with {MANY_URLS} URL lines")
            dry = run_measured(snakemake_command(dry_dir, "-n"), env, dry_log)
            check_ok("snakemake -n", dry, dry_log)
        print_report(args, specs, reps, noop, dry, slurm_note)
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
