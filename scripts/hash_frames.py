"""Snakemake adapter: perceptual hashes of one video's kept frames (rule hash_frames)."""

import sys
from pathlib import Path

from framesift.filter import DETECTIONS, read_detections
from framesift.hashing import FrameInput, hash_frames, write_hash_table
from framesift.stagejob import Outcome, run_video_stage
from framesift.stagelog import run_stage, stage_job


def main(smk, log):
    job = stage_job(smk, "hash")
    settings = smk.params.settings
    kept_dir, table = Path(smk.input.kept), Path(smk.output.hashes)

    def write(records) -> None:
        write_hash_table(table, records, settings["type"], settings["size"])

    def body() -> Outcome:
        frames = [
            FrameInput(
                kept_dir / row["file"],
                int(row["timestamp_ms"]),
                max((box["confidence"] for box in row["boxes"]), default=0.0),
            )
            for row in read_detections(kept_dir / DETECTIONS)["frames"]
        ]
        records = hash_frames(
            frames,
            hash_type=settings["type"],
            hash_size=settings["size"],
            collapse_threshold=settings["consecutive_threshold"],
        )
        write(records)
        unique = sum(1 for r in records if not r.duplicate_of)
        log.info(f"{job.video_id}: hashed {len(records)} frames; {unique} after collapsing")
        return Outcome(count=len(records))

    sys.exit(run_video_stage(job, body, lambda: write([]), log))


run_stage("hash_frames", main, snakemake)  # noqa: F821 - injected by Snakemake
