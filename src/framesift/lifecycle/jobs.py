"""Run one per-video stage job under the failure lifecycle (see docs/lifecycle.md).

A script adapter describes its stage with a :class:`StageJob` and hands :func:`run_video_stage`
a body (does the work, returns an :class:`Outcome` or raises :class:`StageFailed`) and a
placeholder writer (empty results for a video that failed). This module decides what a failure
means: retry now (exit non-zero while Snakemake has in-run attempts left), or complete the chain
with placeholders and a record so that the aggregate runs over everything that finished.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from framesift.core.layout import Layout, remove_staging
from framesift.core.stage_table import stage_named
from framesift.lifecycle.records import (
    DONE,
    EMPTY,
    PERMANENT,
    SKIPPED,
    TRANSIENT,
    StageRecord,
    conclude,
    now_iso,
    read_record,
    write_record,
)


class StageFailed(Exception):
    """A stage could not produce its result; ``permanent`` says whether retrying can help."""

    def __init__(self, reason: str, permanent: bool):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class Outcome:
    """How a stage body ended: ``done`` (or ``empty``, nothing matched), with a count."""

    outcome: str = DONE
    reason: str = ""
    count: int | None = None


@dataclass(frozen=True)
class StageJob:
    """One job: which stage of which video, and the retry settings it runs under."""

    stage: str
    video_id: str
    url: str
    layout: Layout
    max_attempts: int  # failed attempts across runs before a transient failure is permanent
    generation: int = 0
    attempt: int = 1  # Snakemake's in-run attempt, from 1
    in_run_attempts: int = 1  # the rule's retries + 1

    @property
    def record_path(self) -> Path:
        return self.layout.record(self.stage, self.video_id)


def remove_leftovers(job: StageJob) -> list[Path]:
    """Delete staging folders/files an interrupted earlier job of this video left behind."""
    removed = []
    for output in job.layout.stage_outputs(job.stage, job.video_id):
        removed += remove_staging(output.parent, f".{output.name}.")
    return removed


def upstream_problem(job: StageJob) -> str | None:
    """Why this stage has nothing to work on (an earlier stage did not finish), or None."""
    stage = stage_named(job.stage).upstream
    if stage is None:
        return None
    record = read_record(job.layout.record(stage, job.video_id))
    if record is None or record.outcome in (DONE, EMPTY):  # empty: still has frames (negatives)
        return None
    return f"{stage} {record.outcome}"


def run_video_stage(
    job: StageJob,
    body: Callable[[], Outcome],
    placeholder: Callable[[], None],
    log: logging.Logger,
) -> int:
    """Run ``body`` for ``job``; record the outcome; return the job's exit status."""
    previous = read_record(job.record_path)
    started = now_iso()
    for leftover in remove_leftovers(job):
        log.info(f"removed a leftover of an interrupted run: {leftover}")

    def finish(outcome: str, reason: str = "", count: int | None = None) -> StageRecord:
        record = conclude(
            previous,
            video_id=job.video_id,
            stage=job.stage,
            outcome=outcome,
            reason=reason,
            url=job.url,
            generation=job.generation,
            max_attempts=job.max_attempts,
            started=started,
            count=count,
        )
        write_record(job.record_path, record)
        return record

    problem = upstream_problem(job)
    if problem is not None:
        log.info(f"{job.video_id}: nothing to do ({problem}); empty result")
        placeholder()
        finish(SKIPPED, problem)
        return 0
    try:
        result = body()
    except StageFailed as failure:
        kind, reason = (PERMANENT if failure.permanent else TRANSIENT), failure.reason
    except Exception as error:  # noqa: BLE001 - any other error (OSError of a full disk too):
        kind, reason = TRANSIENT, f"{type(error).__name__}: {error}"  # transient, traceback logged
        log.info("".join(traceback.format_exception(error)))
    else:
        try:
            finish(result.outcome, result.reason, result.count)
        except OSError as error:  # the result is there, its record is not: the job fails
            log.error(f"{job.video_id}: {job.stage} record not written ({error}); job failed")
            return 1
        if result.outcome == EMPTY:
            log.warning(f"{job.video_id}: {result.reason}; recorded")
        return 0
    reason = " ".join(reason.split())
    if kind == TRANSIENT and job.attempt < job.in_run_attempts:
        log.error(
            f"{job.video_id}: {job.url}: {reason} (transient; in-run attempt "
            f"{job.attempt} of {job.in_run_attempts}, Snakemake retries it)"
        )
        return 1
    try:
        placeholder()
    except OSError as error:  # no empty result either: the job fails, its record says why
        reason = f"{reason}; the empty result could not be written either ({error})"
        record = finish(TRANSIENT, reason)
        log.error(f"{job.video_id}: {job.url}: {record.stage} {record.describe()}: {reason}")
        return 1
    record = finish(kind, reason)
    then = "retried on the next run" if record.outcome == TRANSIENT else "video skipped"
    log.warning(
        f"{job.video_id}: {job.url}: {record.stage} {record.describe()}: {record.reason} "
        f"(recorded; {then})"
    )
    return 0
