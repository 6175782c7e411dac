"""Snakemake adapter: perceptual hashes of one video's kept frames, and of the frames the
filter dropped when negatives are wanted (rule hash_frames)."""

import sys
from pathlib import Path

from framesift.filter import DETECTIONS, read_detections
from framesift.frames import MANIFEST, read_manifest
from framesift.hashing import FrameInput, hash_frames, write_hash_table
from framesift.stagejob import Outcome, run_video_stage
from framesift.stagelog import run_stage, stage_job


def main(smk, log):
    job = stage_job(smk, "hash")
    settings = smk.params.settings
    kept_dir, frames_dir = Path(smk.input.kept), Path(smk.input.frames)
    tables = Path(smk.output.hashes), Path(smk.output.negatives)

    def hashed(frames):
        return hash_frames(
            frames,
            hash_type=settings["type"],
            hash_size=settings["size"],
            collapse_threshold=settings["consecutive_threshold"],
        )

    def write(kept, negatives) -> None:
        for table, records in zip(tables, (kept, negatives), strict=True):
            write_hash_table(table, records, settings["type"], settings["size"])

    def body() -> Outcome:
        detections = read_detections(kept_dir / DETECTIONS)
        kept = [
            FrameInput(
                kept_dir / row["file"],
                int(row["timestamp_ms"]),
                max((box["confidence"] for box in row["boxes"]), default=0.0),
            )
            for row in detections["frames"]
        ]
        negatives = []
        if smk.params.negatives:  # frames without a detection, decodable ones only
            skip = {row["file"] for row in detections["frames"]}
            skip.update(detections.get("unreadable", ()))
            negatives = [
                FrameInput(frames_dir / frame.file, frame.timestamp_ms, 0.0)
                for frame in read_manifest(frames_dir / MANIFEST)
                if frame.file not in skip
            ]
        records, negative_records = hashed(kept), hashed(negatives)
        write(records, negative_records)
        unique = sum(1 for r in records if not r.duplicate_of)
        log.info(
            f"{job.video_id}: hashed {len(records)} frames; {unique} after collapsing; "
            f"{len(negative_records)} candidate negatives"
        )
        return Outcome(count=len(records))

    sys.exit(run_video_stage(job, body, lambda: write([], []), log))


run_stage("hash_frames", main, snakemake)  # noqa: F821 - injected by Snakemake
