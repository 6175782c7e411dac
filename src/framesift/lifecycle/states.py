"""What ``framesift status``, the run summary and the reports call each video: its state, read
from the lifecycle's stage records (framesift.lifecycle.records) and the last aggregate's counts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from framesift.core.layout import Layout
from framesift.core.stage_table import AGGREGATE, PER_VIDEO_STAGES, STAGES
from framesift.lifecycle.records import DONE, EMPTY, SKIPPED, first_unfinished, records_of

# what `framesift status` calls a video whose furthest finished stage is this one
STATE_AFTER = {stage.name: stage.done_state for stage in PER_VIDEO_STAGES}
IN_DATASET = AGGREGATE.done_state
# finished, but none of its frames made it into the dataset (near-duplicates of other videos'
# frames, or over a dataset cap): done, and said plainly
NO_IMAGES = "done, 0 images"
NO_IMAGES_REASON = (
    "every frame it kept is a near-duplicate of a dataset image from another video, or over "
    "dataset.max_per_video / max_per_class"
)
PENDING = "pending"


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
    title = video_title(layout, vid)
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
        if not in_dataset:
            return VideoState(
                vid, url, title, NO_IMAGES, frames, kept, 0, AGGREGATE.name, NO_IMAGES_REASON
            )
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


def video_title(layout: Layout, vid: str) -> str:
    """The video's title from its metadata ("" when unknown)."""
    return str(read_info(layout, vid).get("title") or "")


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
    done = sum(1 for s in states if s.state in (IN_DATASET, NO_IMAGES))
    return Totals(len(states), done, failed, len(states) - failed - empty - done, empty)
