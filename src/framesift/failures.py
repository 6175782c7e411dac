"""Failure records: one small JSON file per (stage, video) that the report and the user read.

A permanent failure (dead URL, corrupt video, no matching frame) completes its rule with an empty
result plus a record; a transient one (timeout, HTTP 5xx) leaves a record and fails the job so a
retry or a later run picks it up. A later success removes the stage's record.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PERMANENT = "permanent"
TRANSIENT = "transient"
EMPTY = "empty"  # finished normally but produced nothing (e.g. no frame matched the classes)


@dataclass(frozen=True)
class FailureRecord:
    """Why one video stopped at one stage."""

    video_id: str
    stage: str
    kind: str
    reason: str
    url: str = ""
    time: float = 0.0


def record_path(results_dir: str | Path, stage: str, video_id: str) -> Path:
    """Where the record of ``video_id`` at ``stage`` lives."""
    return Path(results_dir) / "failures" / stage / f"{video_id}.json"


def write_record(path: str | Path, record: FailureRecord) -> None:
    """Write ``record`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(record)
    data["time"] = record.time or time.time()
    data["reason"] = " ".join(record.reason.split())  # always one line
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def clear_record(path: str | Path) -> None:
    """Remove a stale record after the stage succeeded."""
    Path(path).unlink(missing_ok=True)


def load_records(results_dir: str | Path) -> list[FailureRecord]:
    """All records under ``results_dir/failures``, sorted by stage then video id."""
    records = []
    for path in sorted((Path(results_dir) / "failures").glob("*/*.json")):
        try:
            data = json.loads(path.read_text())
            records.append(FailureRecord(**data))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(records, key=lambda r: (r.stage, r.video_id))
