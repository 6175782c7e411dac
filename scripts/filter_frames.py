"""Snakemake adapter: keep the frames of one video that show a wanted class, and write their
hash tables (rule filter_frames).

A cheap client of the shared detection worker (docs/worker.md): it never imports torch or
imagehash; the worker hashes the frames it decoded for detection. Settings come typed from the
config once (the rule's params only make Snakemake rerun the job when they change).
"""

import sys
import time
from pathlib import Path

from framesift.detection.client import WorkerClient, WorkerSpec
from framesift.detection.detector import DetectorFault, uses_detector
from framesift.hashing.tables import HashSpec, VideoTables
from framesift.lifecycle.jobs import Outcome, StageFailed, run_video_stage
from framesift.lifecycle.records import EMPTY
from framesift.lifecycle.snakemake_job import job_settings, run_stage, stage_job
from framesift.stages.filter import filter_frames, keep_all_frames, write_empty


def main(smk, log):
    settings = job_settings(smk)
    job = stage_job(smk, "filter", settings)
    flt = settings.filter
    frames_dir, out_dir = Path(smk.input.frames), Path(smk.output.kept)
    tables = VideoTables(Path(smk.output.hashes), Path(smk.output.negatives))
    hashing = HashSpec.of(settings.hash, settings.dataset)

    def body() -> Outcome:
        started = time.time()
        if not uses_detector(flt.model):
            summary = keep_all_frames(frames_dir, out_dir, str(flt.model), hashing)
        else:
            client = WorkerClient(WorkerSpec.of(flt, settings.worker))
            try:
                summary = filter_frames(frames_dir, out_dir, client, flt.model, log, hashing)
            except DetectorFault as error:
                raise StageFailed(str(error), permanent=False) from error
            log.info(
                f"{job.video_id}: detection worker {client.address} on {client.device}: "
                f"{summary.frames_in} frames in {time.time() - started:.3f} s"
            )
        heavy = ", ".join(name for name in ("torch", "imagehash") if name in sys.modules)
        log.info(f"{job.video_id}: imported by this job: {heavy or 'neither torch nor imagehash'}")
        for name in summary.unreadable:
            log.warning(f"{job.video_id}: frame {name} is unreadable and was skipped")
        log.info(f"{job.video_id}: kept {summary.kept} of {summary.frames_in} frames")
        unique = tables.write(summary.kept_signed, summary.negative_signed, settings.hash)
        log.info(
            f"{job.video_id}: hashed {len(summary.kept_signed)} kept frames; {unique} after "
            f"collapsing; {len(summary.negative_signed)} candidate negatives"
        )
        if summary.kept == 0:
            wanted = ", ".join(flt.classes) or "any class"
            reason = f"no frame shows {wanted} (of {summary.frames_in} frames)"
            return Outcome(EMPTY, reason, count=0)
        return Outcome(count=summary.kept)

    def placeholder() -> None:
        write_empty(out_dir, str(flt.model))
        tables.write([], [], settings.hash)

    sys.exit(run_video_stage(job, body, placeholder, log))


run_stage("filter_frames", main, snakemake)  # noqa: F821 - injected by Snakemake
