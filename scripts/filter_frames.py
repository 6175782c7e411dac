"""Snakemake adapter: keep the frames of one video that show a wanted class, and write their
hash tables (rule filter_frames).

A cheap client of the shared detection worker (docs/worker.md): it never imports torch or
imagehash; the worker hashes the frames it decoded for detection.
"""

import sys
import time
from pathlib import Path

from framesift.detect import DetectOptions, DetectorFault, uses_detector
from framesift.filter import filter_frames, keep_all_frames, write_empty
from framesift.hash_table import HashSpec, collapse, write_hash_table
from framesift.lifecycle import EMPTY
from framesift.stagejob import Outcome, StageFailed, run_video_stage
from framesift.stagelog import run_stage, stage_job
from framesift.worker_client import WorkerClient, WorkerSpec


def main(smk, log):
    job = stage_job(smk, "filter")
    settings = smk.params.settings
    frames_dir, out_dir = Path(smk.input.frames), Path(smk.output.kept)
    tables = Path(smk.output.hashes), Path(smk.output.negatives)
    options = DetectOptions.from_settings(settings)
    hashing = HashSpec.from_settings(smk.params.hash, smk.params.negatives)

    def write_tables(kept, negatives) -> None:
        threshold = smk.params.hash["consecutive_threshold"]
        records = [collapse(signed, threshold) for signed in (kept, negatives)]
        for table, rows in zip(tables, records, strict=True):
            write_hash_table(table, rows, hashing.hash_type, hashing.hash_size)
        unique = sum(1 for record in records[0] if not record.duplicate_of)
        log.info(
            f"{job.video_id}: hashed {len(kept)} kept frames; {unique} after collapsing; "
            f"{len(negatives)} candidate negatives"
        )

    def body() -> Outcome:
        started = time.time()
        if not uses_detector(settings["model"]):
            summary = keep_all_frames(frames_dir, out_dir, str(settings["model"]), hashing)
        else:
            client = WorkerClient(WorkerSpec.from_settings(settings, smk.params.idle_timeout))
            try:
                summary = filter_frames(
                    frames_dir, out_dir, client, settings["model"], log, hashing
                )
            except DetectorFault as error:
                raise StageFailed(str(error), permanent=False) from error
            log.info(
                f"{job.video_id}: detection worker {client.address} on {client.device}: "
                f"{summary.frames_in} frames in {time.time() - started:.3f} s"
            )
        for heavy in ("torch", "imagehash"):  # the worker's, not this job's (docs/worker.md)
            state = "loaded" if heavy in sys.modules else "not loaded"
            log.info(f"{job.video_id}: {heavy} {state}")
        for name in summary.unreadable:
            log.warning(f"{job.video_id}: frame {name} is unreadable and was skipped")
        log.info(f"{job.video_id}: kept {summary.kept} of {summary.frames_in} frames")
        write_tables(summary.kept_signed, summary.negative_signed)
        if summary.kept == 0:
            wanted = ", ".join(options.classes) or "any class"
            reason = f"no frame shows {wanted} (of {summary.frames_in} frames)"
            return Outcome(EMPTY, reason, count=0)
        return Outcome(count=summary.kept)

    def placeholder() -> None:
        write_empty(out_dir, str(settings["model"]))
        for table in tables:
            write_hash_table(table, [], hashing.hash_type, hashing.hash_size)

    sys.exit(run_video_stage(job, body, placeholder, log))


run_stage("filter_frames", main, snakemake)  # noqa: F821 - injected by Snakemake
