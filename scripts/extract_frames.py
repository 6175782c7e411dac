"""Snakemake adapter: extract frames of one video (rule extract_frames)."""

import sys
from pathlib import Path

from framesift.lifecycle.jobs import Outcome, run_video_stage
from framesift.lifecycle.snakemake_job import job_settings, run_stage, stage_job
from framesift.stages.frames import extract_frames, write_empty


def main(smk, log):
    settings = job_settings(smk)
    job = stage_job(smk, "frames", settings)
    video, out_dir = Path(smk.input.video), Path(smk.output.frames)
    frames_settings = settings.frames

    def body() -> Outcome:
        # threads: the rule's, handed to every ffmpeg process (its default is one per core)
        frames = extract_frames(video, job.video_id, out_dir, frames_settings, log, smk.threads)
        log.info(f"{job.video_id}: {len(frames)} frames ({frames_settings.mode}) -> {out_dir}")
        return Outcome(count=len(frames))

    sys.exit(run_video_stage(job, body, lambda: write_empty(out_dir), log))


run_stage("extract_frames", main, snakemake)  # noqa: F821 - injected by Snakemake
