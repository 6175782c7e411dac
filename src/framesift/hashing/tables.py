"""Hash tables: per-video perceptual hashes with consecutive near-duplicates collapsed.

Light on purpose (no imagehash, numpy or scipy): the filter job imports it to collapse and
write what the detection worker hashed (:class:`VideoTables`, docs/worker.md); the aggregate
reads the tables. Walking a video's frames in time order, a frame within
``collapse_threshold`` bits of the last *kept* frame is marked ``duplicate_of`` that frame
(comparing with the last kept frame, not the previous one, stops slow drift from chaining a
whole scene together). A table is a TSV with a ``#`` metadata line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from framesift.core.fsutil import atomic_write_text

if TYPE_CHECKING:
    from framesift.core.settings import DatasetSettings, HashSettings

HASH_TYPES = ("phash", "dhash", "ahash", "whash")
COLUMNS = ("file", "timestamp_ms", "hash_hex", "sharpness", "confidence", "duplicate_of")
_MAGIC = "framesift-hashes"


@dataclass(frozen=True)
class HashSpec:
    """What to hash: the imagehash type and size; ``negatives``: also frames with no detection."""

    hash_type: str
    hash_size: int
    negatives: bool

    @classmethod
    def of(cls, hashing: HashSettings, dataset: DatasetSettings) -> HashSpec:
        """From the ``hash`` settings; negatives are hashed when ``dataset.negatives > 0``.
        Raises ValueError for a type or size imagehash cannot do."""
        check_hash_params(hashing.type, hashing.size)
        return cls(hashing.type, hashing.size, dataset.negatives > 0)


@dataclass(frozen=True)
class Signature:
    """A frame's perceptual hash (hex, as ``str(imagehash.ImageHash)``) and sharpness."""

    hash_hex: str
    sharpness: float


@dataclass(frozen=True)
class SignedFrame:
    """A frame of one video with its signature, time and best detection confidence."""

    file: str
    timestamp_ms: int
    signature: Signature
    confidence: float = 0.0


@dataclass(frozen=True)
class FrameHash:
    """Hash record of one frame; ``duplicate_of`` is "" when kept, else the kept frame's name."""

    file: str
    timestamp_ms: int
    hash_hex: str
    sharpness: float
    confidence: float
    duplicate_of: str


def check_hash_params(hash_type: str, hash_size: int) -> None:
    """Raise ValueError for an unknown ``hash_type`` or an invalid ``hash_size``."""
    if hash_type not in HASH_TYPES:
        raise ValueError(f"unknown hash_type {hash_type!r}; valid types: {', '.join(HASH_TYPES)}")
    if isinstance(hash_size, bool) or not isinstance(hash_size, int) or hash_size < 2:
        raise ValueError(f"hash_size must be an integer >= 2, got {hash_size!r}")
    if hash_type == "whash" and hash_size & (hash_size - 1):
        raise ValueError(f"whash needs a power-of-two hash_size, got {hash_size}")


def hex_distance(a: str, b: str) -> int:
    """Hamming distance of two hex hashes of the same width (as ``ImageHash - ImageHash``)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def collapse(frames: Sequence[SignedFrame], collapse_threshold: int = 4) -> list[FrameHash]:
    """Records of one video's frames in time order, consecutive near-duplicates collapsed.

    A frame within ``collapse_threshold`` bits (Hamming) of the last kept frame gets
    ``duplicate_of`` = that frame's file name; ``collapse_threshold < 0`` disables collapsing.
    """
    records: list[FrameHash] = []
    kept: tuple[str, str] | None = None  # (file, hash) of the last kept frame
    for frame in sorted(frames, key=lambda f: (f.timestamp_ms, f.file)):
        value = frame.signature.hash_hex
        duplicate_of = ""
        if (
            kept is not None
            and collapse_threshold >= 0
            and hex_distance(value, kept[1]) <= collapse_threshold
        ):
            duplicate_of = kept[0]
        else:
            kept = (frame.file, value)
        records.append(
            FrameHash(
                file=frame.file,
                timestamp_ms=int(frame.timestamp_ms),
                hash_hex=value,
                sharpness=float(frame.signature.sharpness),
                confidence=float(frame.confidence),
                duplicate_of=duplicate_of,
            )
        )
    return records


def _row(record: FrameHash) -> str:
    for name in (record.file, record.duplicate_of):
        if any(c in name for c in "\t\r\n"):
            raise ValueError(f"file name {name!r} contains a tab or newline")
    fields = (
        record.file,
        str(int(record.timestamp_ms)),
        record.hash_hex,
        repr(float(record.sharpness)),
        repr(float(record.confidence)),
        record.duplicate_of,
    )
    return "\t".join(fields) + "\n"


def write_hash_table(
    path: Path, records: Sequence[FrameHash], hash_type: str, hash_size: int
) -> None:
    """Write ``records`` as a TSV (``#`` metadata line, column header, rows), atomically."""
    check_hash_params(hash_type, hash_size)
    text = f"# {_MAGIC} hash_type={hash_type} hash_size={hash_size}\n"
    text += "\t".join(COLUMNS) + "\n" + "".join(_row(r) for r in records)
    atomic_write_text(path, text)


@dataclass(frozen=True)
class VideoTables:
    """One video's two hash tables: its kept frames', and its candidate negatives' (frames
    without a detection, hashed when ``dataset.negatives > 0``; else the table is empty)."""

    kept: Path
    negatives: Path

    def write(
        self,
        kept: Sequence[SignedFrame],
        negatives: Sequence[SignedFrame],
        hashing: HashSettings,
    ) -> int:
        """Collapse consecutive near-duplicates in each (``hash.consecutive_threshold``) and
        write both tables, atomically; how many kept frames are left after collapsing."""
        records = [collapse(frames, hashing.consecutive_threshold) for frames in (kept, negatives)]
        for path, rows in zip((self.kept, self.negatives), records, strict=True):
            write_hash_table(path, rows, hashing.type, hashing.size)
        return sum(1 for record in records[0] if not record.duplicate_of)


def _parse_meta(line: str, path: Path) -> dict:
    tokens = line.lstrip("#").split()
    if not tokens or tokens[0] != _MAGIC:
        raise ValueError(f"{path}: not a framesift hash table (first line {line.strip()!r})")
    fields = dict(token.split("=", 1) for token in tokens[1:] if "=" in token)
    try:
        meta = {"hash_type": fields["hash_type"], "hash_size": int(fields["hash_size"])}
    except (KeyError, ValueError) as error:
        raise ValueError(f"{path}: bad metadata line {line.strip()!r}") from error
    check_hash_params(meta["hash_type"], meta["hash_size"])
    return meta


def _parse_row(line: str, path: Path, number: int) -> FrameHash:
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != len(COLUMNS):
        raise ValueError(f"{path}:{number}: expected {len(COLUMNS)} columns, got {len(fields)}")
    try:
        return FrameHash(
            file=fields[0],
            timestamp_ms=int(fields[1]),
            hash_hex=fields[2],
            sharpness=float(fields[3]),
            confidence=float(fields[4]),
            duplicate_of=fields[5],
        )
    except ValueError as error:
        raise ValueError(f"{path}:{number}: {error}") from error


def read_hash_table(path: Path) -> tuple[dict, list[FrameHash]]:
    """Read a table written by :func:`write_hash_table`: ({hash_type, hash_size}, records)."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    if len(lines) < 2 or not lines[0].startswith("#"):
        raise ValueError(f"{path}: missing the '#' metadata line and column header")
    meta = _parse_meta(lines[0], path)
    if tuple(lines[1].split("\t")) != COLUMNS:
        raise ValueError(f"{path}:2: expected columns {COLUMNS}, got {lines[1]!r}")
    records = [_parse_row(line, path, n) for n, line in enumerate(lines[2:], start=3) if line]
    return meta, records
