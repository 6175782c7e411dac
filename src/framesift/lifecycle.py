"""The failure lifecycle: one record per video and stage, the retry policy, and a video's state.

Every per-video stage job ends by writing a :class:`StageRecord` (``results/state/{stage}/{vid}
.json``) with its outcome. Failures complete the video's chain with empty placeholders, so the
aggregate always runs over what finished. A later run retries a stage when its record says so
(:func:`generation`), a bounded number of times (``retry.max_attempts``). See docs/lifecycle.md.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from framesift.layout import STAGES, Layout

DONE = "done"
EMPTY = "empty"  # finished normally, nothing matched (no frame shows a wanted class)
SKIPPED = "skipped"  # an earlier stage of the video did not finish
TRANSIENT = "transient"
PERMANENT = "permanent"
FAILED = (TRANSIENT, PERMANENT)

# what `framesift status` calls a video whose furthest finished stage is this one
STATE_AFTER = {
    "download": "downloaded",
    "frames": "frames",
    "filter": "filtered",
}
IN_DATASET = "in dataset"
PENDING = "pending"


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(replace(record, reason=" ".join(record.reason.split())))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


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


@dataclass(frozen=True)
class VideoState:
    """One row of ``framesift status``."""

    video_id: str
    url: str
    title: str
    state: str
    frames: int | None
    kept: int | None
    in_dataset: int | None
    stage: str = ""
    reason: str = ""
    retry_next_run: bool = False

    @property
    def failed(self) -> bool:
        return self.state.startswith("failed")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def video_state(
    layout: Layout, vid: str, url: str, aggregated: dict[str, dict[str, Any]]
) -> VideoState:
    """The state of ``vid`` from its stage records and the last aggregate's per-video counts."""
    records = records_of(layout, vid)
    frames = records["frames"].count if "frames" in records else None
    kept = records["filter"].count if "filter" in records else None
    in_dataset = aggregated.get(vid, {}).get("in_dataset")
    title = _title(layout, vid)
    blocker = first_unfinished(records)
    if blocker is not None and blocker.outcome != SKIPPED:
        return VideoState(
            vid,
            url,
            title,
            blocker.describe(),
            frames,
            kept,
            in_dataset,
            stage=blocker.stage,
            reason=blocker.reason,
            retry_next_run=blocker.retry_due(),
        )
    done = [stage for stage in STAGES if stage in records and records[stage].outcome == DONE]
    if vid in aggregated and len(done) == len(STAGES):
        state = IN_DATASET
    else:
        state = STATE_AFTER[done[-1]] if done else PENDING
    return VideoState(vid, url, title, state, frames, kept, in_dataset)


def read_info(layout: Layout, vid: str) -> dict[str, Any]:
    """The video's metadata written by the download stage ({} when there is none)."""
    try:
        info = json.loads(layout.info(vid).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def aggregated_counts(layout: Layout) -> dict[str, dict[str, Any]]:
    """Per-video counts of the last aggregate (``summary.json``), {} before the first one."""
    try:
        videos = json.loads(layout.summary.read_text()).get("videos", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return videos if isinstance(videos, dict) else {}


def video_states(layout: Layout, videos: Sequence[tuple[str, str]]) -> list[VideoState]:
    """The state of each (video id, URL), in the given order."""
    aggregated = aggregated_counts(layout)
    return [video_state(layout, vid, url, aggregated) for vid, url in videos]


def summary_lines(states: Sequence[VideoState], limit: int = 20) -> list[str]:
    """The end-of-run summary: the totals line, then one line per failed video (capped)."""
    failed = [s for s in states if s.failed]
    lines = [totals(states).line()]
    for state in failed[:limit]:
        lines.append(f"{state.video_id}: {state.stage} {state.state}: {state.reason}")
    if len(failed) > limit:
        lines.append(f"... and {len(failed) - limit} more: framesift status --failed")
    return lines


def _title(layout: Layout, vid: str) -> str:
    return str(read_info(layout, vid).get("title") or "")


def job_retries(stage: str, config: dict[str, Any]) -> int:
    """Snakemake's in-run retries of a stage's job (the rule's ``retries:``)."""
    return int(config["download"]["job_retries"]) if stage == "download" else 0


def max_attempts(config: dict[str, Any]) -> int:
    """Failed attempts across runs after which a transient failure becomes permanent."""
    return int(config["retry"]["max_attempts"])


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


@dataclass(frozen=True)
class Totals:
    """Counts of video states for the one-line run summary."""

    videos: int
    done: int
    failed: int
    pending: int
    empty: int

    def line(self, hint: bool = True) -> str:
        text = (
            f"{self.videos} video{'s' if self.videos != 1 else ''}: {self.done} done, "
            f"{self.failed} failed, {self.pending} pending"
        )
        if self.empty:
            text += f", {self.empty} with no matching frame"
        return text + ("; see `framesift status`" if hint else "")


def totals(states: Sequence[VideoState]) -> Totals:
    """Summarise states: done = in the dataset (or finished every stage)."""
    failed = sum(1 for s in states if s.failed)
    empty = sum(1 for s in states if s.state == EMPTY)
    done = sum(1 for s in states if s.state == IN_DATASET)
    return Totals(len(states), done, failed, len(states) - failed - empty - done, empty)
