"""Minimal single-process reference for ``bench_pipeline.py``: one model load, stages in a loop.

Runs download -> frames -> filter -> hash for every URL of a URL file, one video after the
other, in this one Python process (hashing as a plain second pass over the kept files), with
the framesift library functions and the settings of a framesift config file (resolved like
the workflow does: schema defaults filled in). The
detector is loaded once for all videos. No Snakemake, no lifecycle records, no aggregate.

    python bench/reference_pipeline.py --config run/config/config.yaml --urls run/urls.txt \\
        --out /tmp/ref --timings /tmp/ref/timings.json

Outputs under ``--out``: ``videos/<vid>.<ext>``, ``frames/<vid>/``, ``kept/<vid>/`` (the kept
frames and ``detections.json``) and ``hashes/<vid>.tsv``. ``--timings`` gets a JSON with the
model load time and, per video, the wall seconds of each stage, the frames in and kept.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from frame_hashes import hash_files  # this folder is on sys.path

from framesift.core.config import resolve_config
from framesift.core.settings import Settings
from framesift.core.urls import read_url_file
from framesift.detection.detector import DetectOptions, LocalDetector, load_model
from framesift.hashing.tables import HashSpec, write_hash_table
from framesift.stages.download import download_video
from framesift.stages.filter import DETECTIONS, filter_frames, read_detections
from framesift.stages.frames import extract_frames


def kept_inputs(kept_dir: Path) -> list[tuple[Path, int, float]]:
    """The kept frames: (path, time, best detection confidence), what the hash table records."""
    rows = read_detections(kept_dir / DETECTIONS)["frames"]
    return [
        (
            kept_dir / row["file"],
            int(row["timestamp_ms"]),
            max((box["confidence"] for box in row["boxes"]), default=0.0),
        )
        for row in rows
    ]


def run_video(url: str, vid: str, out: Path, config: dict[str, Any], model: Any) -> dict[str, Any]:
    """All four stages of one video; returns its per-stage wall seconds and frame counts."""
    settings = Settings.from_config(config)
    flt, hsh = settings.filter, settings.hash
    video = out / "videos" / f"{vid}.{settings.download.container}"
    timing: dict[str, Any] = {"video_id": vid}

    started = time.perf_counter()
    download_video(url, vid, video, video.with_suffix(".info.json"), settings.download)
    timing["download_s"] = time.perf_counter() - started

    started = time.perf_counter()
    frames = extract_frames(video, vid, out / "frames" / vid, settings.frames)
    timing["frames_s"] = time.perf_counter() - started

    started = time.perf_counter()
    detector = LocalDetector(model, DetectOptions.of(flt))
    summary = filter_frames(out / "frames" / vid, out / "kept" / vid, detector, str(flt.model))
    timing["filter_s"] = time.perf_counter() - started

    started = time.perf_counter()
    spec = HashSpec.of(hsh, settings.dataset)
    records = hash_files(kept_inputs(out / "kept" / vid), spec, hsh.consecutive_threshold)
    write_hash_table(out / "hashes" / f"{vid}.tsv", records, hsh.type, hsh.size)
    timing["hash_s"] = time.perf_counter() - started

    timing.update(frames_in=len(frames), kept=summary.kept)
    return timing


def main() -> int:
    """Run every URL of ``--urls`` through the four stages; write ``--timings``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="framesift config.yaml to take from")
    parser.add_argument("--urls", required=True, help="URL file (framesift format)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--timings", default=None, help="write per-stage timings (JSON) here")
    args = parser.parse_args()

    config = resolve_config([Path(args.config).resolve()])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = load_model(config["filter"]["model"])
    model_load_s = time.perf_counter() - started
    videos = []
    for entry in read_url_file(args.urls).entries:
        videos.append(run_video(entry.url, entry.video_id, out, config, model))
    result = {"model_load_s": model_load_s, "device": config["filter"]["device"], "videos": videos}
    if args.timings:
        Path(args.timings).write_text(json.dumps(result, indent=1) + "\n")
    kept = sum(video["kept"] for video in videos)
    frames_in = sum(video["frames_in"] for video in videos)
    print(f"reference: {len(videos)} videos, {frames_in} frames, {kept} kept", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
