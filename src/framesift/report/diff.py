"""What changed since the previous report: dataset images added or removed, videos new or gone.

Each report keeps a snapshot (``report/previous_run.json``: video ids and dataset image names)
for the next one to compare with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framesift.core.fsutil import atomic_write_text
from framesift.lifecycle.records import now_iso

SNAPSHOT = "previous_run.json"


@dataclass(frozen=True)
class Changes:
    """What changed since the previous report (``since`` is "" for the first report)."""

    since: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    new_videos: tuple[str, ...]
    gone_videos: tuple[str, ...]


def snapshot(video_ids: Sequence[str], images: Sequence[str]) -> dict[str, Any]:
    """What the next report compares with: video ids and dataset image names (the file names of
    the manifest's ``images``)."""
    return {
        "generated": now_iso(),
        "videos": list(video_ids),
        "images": sorted(Path(image).name for image in images),
    }


def compare(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> Changes:
    """Images added/removed (by name: a split move is no change) and videos new/gone."""
    if not previous:
        return Changes("", (), (), (), ())
    old_images, new_images = set(previous.get("images", [])), set(current["images"])
    old_videos, new_videos = list(previous.get("videos", [])), list(current["videos"])
    old_set, new_set = set(old_videos), set(new_videos)
    return Changes(
        str(previous.get("generated", "")) or "unknown",
        tuple(sorted(new_images - old_images)),
        tuple(sorted(old_images - new_images)),
        tuple(v for v in new_videos if v not in old_set),
        tuple(v for v in old_videos if v not in new_set),
    )


def read_snapshot(path: Path) -> dict[str, Any] | None:
    """The previous report's snapshot; None when there is none (or it is unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_snapshot(path: Path, current: Mapping[str, Any]) -> None:
    """Keep ``current`` (a :func:`snapshot`) for the next report."""
    atomic_write_text(path, json.dumps(current) + "\n")
