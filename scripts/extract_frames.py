"""Snakemake adapter: extract frames of one video (rule extract_frames)."""

import json
from pathlib import Path

from framesift.failures import PERMANENT, FailureRecord, clear_record, write_record
from framesift.frames import ExtractionFailed, FrameOptions, extract_frames, write_empty
from framesift.stagelog import run_stage


def main(smk, log):
    vid = smk.wildcards.vid
    video, out_dir = Path(smk.input.video), Path(smk.output.frames)
    if video.stat().st_size == 0:
        log.info(f"{vid}: no video (download failed permanently); empty frames folder")
        write_empty(out_dir)
        return
    options = FrameOptions(**smk.params.settings)
    try:
        frames = extract_frames(video, vid, out_dir, options)
    except ExtractionFailed as failure:
        reason = f"cannot extract frames: {failure}"
        url = json.loads(Path(smk.input.info).read_text()).get("url", "")
        write_record(smk.params.failure, FailureRecord(vid, "frames", PERMANENT, reason, url))
        log.warning(f"{vid}: {reason} (permanent: recorded, video skipped)")
        write_empty(out_dir)
        return
    clear_record(smk.params.failure)
    log.info(f"{vid}: {len(frames)} frames ({options.mode}) -> {out_dir}")


run_stage("extract_frames", main, snakemake)  # noqa: F821 - injected by Snakemake
