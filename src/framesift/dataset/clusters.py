"""The cross-video dedup table ``results/dedup/clusters.tsv``: its row type, writer and reader.

One row per candidate frame (a frame left after the in-video collapse): its cluster, whether it
is the cluster's kept frame, the kept frame as ``video_id/file`` and the Hamming ``distance`` to
it (0 for the kept frame). A TSV with a header row, written with the :mod:`csv` module (fields
holding a tab, newline or quote are quoted).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from framesift.core.fsutil import atomic_write_text


@dataclass(frozen=True)
class ClusterRow:
    """One candidate frame of the dedup table."""

    cluster: int
    video_id: str
    file: str
    timestamp_ms: int
    hash: str
    kept: bool
    representative: str  # the kept frame of the cluster, as ``video_id/file``
    distance: int  # Hamming distance to the kept frame (0 when kept)


COLUMNS = tuple(f.name for f in fields(ClusterRow))


def write_cluster_table(path: Path, rows: Iterable[ClusterRow]) -> None:
    """Write ``rows`` under a header row, atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(_fields(row) for row in rows)
    atomic_write_text(path, buffer.getvalue())


def read_cluster_table(path: Path) -> Iterator[ClusterRow]:
    """The rows of a table written by :func:`write_cluster_table`, streamed; none when the file
    does not exist. Raises ValueError for another header or a malformed row."""
    path = Path(path)
    if not path.exists():
        return
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = tuple(next(reader, ()))
        if header != COLUMNS:
            raise ValueError(f"{path}: expected columns {', '.join(COLUMNS)}; got {header}")
        for row in reader:
            yield _parse(row, path, reader.line_num)


def _fields(row: ClusterRow) -> tuple[str | int, ...]:
    return tuple(int(v) if isinstance(v, bool) else v for v in astuple(row))


def _parse(row: list[str], path: Path, line: int) -> ClusterRow:
    if len(row) != len(COLUMNS):
        raise ValueError(f"{path}:{line}: expected {len(COLUMNS)} columns, got {len(row)}")
    cluster, video_id, file, timestamp_ms, hash_hex, kept, representative, distance = row
    if kept not in ("0", "1"):
        raise ValueError(f"{path}:{line}: kept must be 0 or 1, got {kept!r}")
    try:
        numbers = int(cluster), int(timestamp_ms), int(distance)
    except ValueError as error:
        raise ValueError(f"{path}:{line}: {error}") from error
    return ClusterRow(
        numbers[0], video_id, file, numbers[1], hash_hex, kept == "1", representative, numbers[2]
    )
