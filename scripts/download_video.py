"""Snakemake adapter: download one video (rule download_video)."""

import json
import sys
from pathlib import Path

from framesift.core.fsutil import atomic_write_text
from framesift.lifecycle.jobs import Outcome, run_video_stage
from framesift.lifecycle.snakemake_job import job_settings, run_stage, stage_job
from framesift.stages.download import download_video


def main(smk, log):
    settings = job_settings(smk)
    job = stage_job(smk, "download", settings)
    video, info = Path(smk.output.video), Path(smk.output.info)
    options = settings.download

    def body() -> Outcome:
        log.info(f"downloading {job.url} as {job.video_id}")
        meta, lines = download_video(job.url, job.video_id, video, info, options, log)
        for line in lines:
            log.info(line)
        log.info(f"done: {meta.get('title')!r}, {video.stat().st_size} bytes")
        return Outcome()

    def placeholder() -> None:
        video.parent.mkdir(parents=True, exist_ok=True)
        video.write_bytes(b"")
        meta = {"video_id": job.video_id, "url": job.url, "failed": True}
        atomic_write_text(info, json.dumps(meta) + "\n")

    sys.exit(run_video_stage(job, body, placeholder, log))


run_stage("download_video", main, snakemake)  # noqa: F821 - injected by Snakemake
