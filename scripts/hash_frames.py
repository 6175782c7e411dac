"""Snakemake adapter: perceptual hashes of one video's kept frames (rule hash_frames)."""

from pathlib import Path

from framesift.filter import DETECTIONS, read_detections
from framesift.hashing import FrameInput, hash_frames, write_hash_table
from framesift.stagelog import run_stage


def main(smk, log):
    vid, settings = smk.wildcards.vid, smk.params.settings
    kept_dir = Path(smk.input.kept)
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
    write_hash_table(Path(smk.output.hashes), records, settings["type"], settings["size"])
    unique = sum(1 for r in records if not r.duplicate_of)
    log.info(f"{vid}: hashed {len(records)} frames; {unique} after collapsing consecutive")


run_stage("hash_frames", main, snakemake)  # noqa: F821 - injected by Snakemake
