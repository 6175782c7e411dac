"""Snakemake adapter: keep the frames of one video that show a wanted class (rule filter_frames).

A cheap client of the shared detection worker (docs/worker.md): it never imports torch.
"""

import sys
import time
from pathlib import Path

from framesift.detect import DetectOptions, DetectorFault, uses_detector
from framesift.filter import filter_frames, keep_all_frames, write_empty
from framesift.lifecycle import EMPTY
from framesift.stagejob import Outcome, StageFailed, run_video_stage
from framesift.stagelog import run_stage, stage_job
from framesift.worker_client import WorkerClient, WorkerSpec


def main(smk, log):
    job = stage_job(smk, "filter")
    settings = smk.params.settings
    frames_dir, out_dir = Path(smk.input.frames), Path(smk.output.kept)
    options = DetectOptions.from_settings(settings)

    def body() -> Outcome:
        started = time.time()
        if not uses_detector(settings["model"]):
            summary = keep_all_frames(frames_dir, out_dir, str(settings["model"]))
        else:
            client = WorkerClient(WorkerSpec.from_settings(settings, smk.params.idle_timeout))
            try:
                summary = filter_frames(frames_dir, out_dir, client, settings["model"], log)
            except DetectorFault as error:
                raise StageFailed(str(error), permanent=False) from error
            log.info(
                f"{job.video_id}: detection worker {client.address} on {client.device}: "
                f"{summary.frames_in} frames in {time.time() - started:.3f} s"
            )
        log.info(f"{job.video_id}: torch {'loaded' if 'torch' in sys.modules else 'not loaded'}")
        for name in summary.unreadable:
            log.warning(f"{job.video_id}: frame {name} is unreadable and was skipped")
        log.info(f"{job.video_id}: kept {summary.kept} of {summary.frames_in} frames")
        if summary.kept == 0:
            wanted = ", ".join(options.classes) or "any class"
            reason = f"no frame shows {wanted} (of {summary.frames_in} frames)"
            return Outcome(EMPTY, reason, count=0)
        return Outcome(count=summary.kept)

    def placeholder() -> None:
        write_empty(out_dir, str(settings["model"]))

    sys.exit(run_video_stage(job, body, placeholder, log))


run_stage("filter_frames", main, snakemake)  # noqa: F821 - injected by Snakemake
