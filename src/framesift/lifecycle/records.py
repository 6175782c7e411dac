"""The failure lifecycle: one record per video and stage, and the retry policy.

Every per-video stage job ends by writing a :class:`StageRecord` (``results/state/{stage}/{vid}
.json``) with its outcome. Failures complete the video's chain with empty placeholders, so the
aggregate always runs over what finished. A later run retries a stage when its record says so
(:func:`generation`), a bounded number of times (``retry.max_attempts``). What the records mean
for ``framesift status`` and the reports is framesift.lifecycle.states. See docs/lifecycle.md.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path

from framesift.core.fsutil import atomic_write_text
from framesift.core.layout import Layout
from framesift.core.stage_table import STAGES

DONE = "done"
EMPTY = "empty"  # finished normally, nothing matched (no frame shows a wanted class)
SKIPPED = "skipped"  # an earlier stage of the video did not finish
TRANSIENT = "transient"
PERMANENT = "permanent"
FAILED = (TRANSIENT, PERMANENT)


def now_iso() -> str:
    """The current time in ISO 8601 (UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class StageRecord:
    """How the last job of one stage of one video ended."""

    video_id: str
    stage: str
    outcome: str
    reason: str = ""
    url: str = ""
    attempts: int = 0  # failed attempts in a row across runs (transient counting)
    max_attempts: int = 0
    generation: int = 0  # the retry generation the job ran with (see generation())
    retry_requested: bool = False  # set by `framesift retry-failed`
    count: int | None = None  # frames extracted / kept, where the stage has such a number
    started: str = ""
    finished: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome in FAILED

    def retry_due(self) -> bool:
        """Whether the next run should run this stage again."""
        return self.retry_requested or self.outcome == TRANSIENT

    def describe(self) -> str:
        """``failed-transient (attempt 1 of 3)``, ``failed-permanent``, ``empty``, ..."""
        if self.outcome == TRANSIENT:
            return f"failed-transient (attempt {self.attempts} of {self.max_attempts})"
        if self.outcome == PERMANENT:
            return "failed-permanent"
        return self.outcome


def read_record(path: str | Path) -> StageRecord | None:
    """The record at ``path``; None when there is none (or it is unreadable)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    known = {f.name for f in fields(StageRecord)}
    try:
        return StageRecord(**{k: v for k, v in data.items() if k in known})
    except TypeError:
        return None


def write_record(path: str | Path, record: StageRecord) -> None:
    """Write ``record`` atomically; the reason is always one line."""
    data = asdict(replace(record, reason=" ".join(record.reason.split())))
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def generation(layout: Layout, stage: str, vid: str) -> int:
    """The retry generation a job of ``stage`` for ``vid`` should run with now.

    It is a rule parameter: it stays what the last job ran with, and goes up by one when a retry
    is due, so Snakemake's params trigger reruns exactly the stages to retry (and, through their
    changed outputs, what follows them).
    """
    record = read_record(layout.record(stage, vid))
    if record is None:
        return 0
    return record.generation + int(record.retry_due())


def conclude(
    previous: StageRecord | None,
    *,
    video_id: str,
    stage: str,
    outcome: str,
    reason: str,
    url: str,
    generation: int,
    max_attempts: int,
    started: str,
    count: int | None = None,
) -> StageRecord:
    """The record a job writes when it ends with ``outcome``.

    Transient failures in a row are counted across runs; the one that reaches ``max_attempts``
    becomes permanent. A failure after a user-requested retry counts afresh.
    """
    attempts = 0
    if outcome in FAILED:
        carried = (
            previous is not None and previous.outcome == TRANSIENT and not previous.retry_requested
        )
        attempts = (previous.attempts if carried else 0) + 1
        if outcome == TRANSIENT and attempts >= max_attempts:
            outcome = PERMANENT
            reason = f"gave up after {attempts} attempts: {reason}"
    return StageRecord(
        video_id=video_id,
        stage=stage,
        outcome=outcome,
        reason=reason,
        url=url,
        attempts=attempts,
        max_attempts=max_attempts,
        generation=generation,
        count=count,
        started=started,
        finished=now_iso(),
    )


def records_of(layout: Layout, vid: str) -> dict[str, StageRecord]:
    """Every stage record of ``vid`` that exists, by stage."""
    found = {}
    for stage in STAGES:
        record = read_record(layout.record(stage, vid))
        if record is not None:
            found[stage] = record
    return found


def first_unfinished(records: dict[str, StageRecord]) -> StageRecord | None:
    """The record that decides the video's state: the first stage that did not end ``done``."""
    for stage in STAGES:
        record = records.get(stage)
        if record is not None and record.outcome != DONE:
            return record
    return None


def failures_of(layout: Layout, ids: Iterable[str]) -> list[StageRecord]:
    """The failed and empty records of the given videos, by stage then video id."""
    found = []
    for vid in ids:
        record = first_unfinished(records_of(layout, vid))
        if record is not None and record.outcome in (*FAILED, EMPTY):
            found.append(record)
    return sorted(found, key=lambda r: (STAGES.index(r.stage), r.video_id))


def request_retry(
    layout: Layout, ids: Sequence[str], stage: str | None = None
) -> list[StageRecord]:
    """Mark the failed stages of ``ids`` (only ``stage`` when given) for a retry next run."""
    marked = []
    for vid in ids:
        for record in records_of(layout, vid).values():
            if record.failed and stage in (None, record.stage):
                updated = replace(record, retry_requested=True)
                write_record(layout.record(record.stage, vid), updated)
                marked.append(updated)
    return marked


def archive_removed(layout: Layout, keep: Iterable[str]) -> list[str]:
    """Move records of videos not in ``keep`` to ``results/state/removed/``; their ids."""
    keep = set(keep)
    moved: set[str] = set()
    for stage in STAGES:
        folder = layout.record(stage, "x").parent
        if not folder.is_dir():
            continue
        for path in folder.glob("*.json"):
            if path.stem not in keep:
                target = layout.removed_records() / stage / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(path, target)
                moved.add(path.stem)
    return sorted(moved)
