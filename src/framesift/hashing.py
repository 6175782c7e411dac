"""Perceptual hashes of the kept frames of one video, with consecutive near-duplicates collapsed.

Each frame is decoded once; its hash (exact imagehash on the full-resolution grayscale image, no
JPEG draft mode) and its sharpness (variance of a Laplacian at a reduced working scale, see
:func:`sharpness`) come from that one grayscale image. Walking the frames in time order,
a frame within ``collapse_threshold`` bits of the last *kept* frame is marked ``duplicate_of``
that frame (comparing with the last kept frame, not the previous one, stops slow drift from
chaining a whole scene together). The table is a TSV with a ``#`` metadata line.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

HASH_TYPES = ("phash", "dhash", "ahash", "whash")
COLUMNS = ("file", "timestamp_ms", "hash_hex", "sharpness", "confidence", "duplicate_of")
_MAGIC = "framesift-hashes"
SHARPNESS_SIDE = 320  # long side, in pixels, of the working scale :func:`sharpness` measures at

_HASHERS: dict[str, Callable[..., imagehash.ImageHash]] = {
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "ahash": imagehash.average_hash,
    "whash": imagehash.whash,
}


@dataclass(frozen=True)
class FrameInput:
    """A kept frame of one video: image path, time and best detection confidence."""

    path: Path
    timestamp_ms: int
    confidence: float


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


def hash_bits(hash_size: int) -> int:
    """Number of bits of a ``hash_size`` hash (all four types are ``hash_size**2`` bits)."""
    return hash_size * hash_size


def hash_image(
    image: Image.Image, hash_type: str = "phash", hash_size: int = 8
) -> imagehash.ImageHash:
    """Perceptual hash of ``image`` (``hash_size**2`` bits)."""
    check_hash_params(hash_type, hash_size)
    return _HASHERS[hash_type](image, hash_size=hash_size)


def sharpness(image: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian of the grayscale image at a working scale.

    The grayscale image is first box-reduced (:meth:`PIL.Image.Image.reduce`) by the integer
    factor ``max(width, height) // SHARPNESS_SIDE``, so the measure is taken at a long side of
    ``SHARPNESS_SIDE``..``2*SHARPNESS_SIDE - 1`` pixels whatever the frame's resolution (smaller
    frames as they are). Higher is sharper; blur and defocus still lower it, sensor noise counts
    less than at full resolution, and a 720p frame is measured on 1/16 of its pixels (under
    1 ms instead of 5-10 ms).
    """
    gray = image if image.mode == "L" else image.convert("L")
    factor = max(gray.size) // SHARPNESS_SIDE
    if factor > 1:
        gray = gray.reduce(factor)
    pixels = np.asarray(gray).astype(np.int16)  # the Laplacian spans -1020..1020: exact
    if pixels.shape[0] < 3 or pixels.shape[1] < 3:
        return 0.0
    laplacian = (
        pixels[:-2, 1:-1]
        + pixels[2:, 1:-1]
        + pixels[1:-1, :-2]
        + pixels[1:-1, 2:]
        - 4 * pixels[1:-1, 1:-1]
    )
    return float(laplacian.var(dtype=np.float64))


def _signature(
    image: Image.Image, hasher: Callable[..., imagehash.ImageHash], hash_size: int
) -> tuple[imagehash.ImageHash, float]:
    """Hash and sharpness from one grayscale image (no parameter check: callers check once)."""
    gray = image if image.mode == "L" else image.convert("L")
    return hasher(gray, hash_size=hash_size), sharpness(gray)


def _hash_file(
    path: Path, hasher: Callable[..., imagehash.ImageHash], hash_size: int
) -> tuple[imagehash.ImageHash, float]:
    """Hash and sharpness of one image file from a single decode."""
    with Image.open(path) as image:
        return _signature(image, hasher, hash_size)


def hash_frames(
    frames: Sequence[FrameInput],
    hash_type: str = "phash",
    hash_size: int = 8,
    collapse_threshold: int = 4,
) -> list[FrameHash]:
    """Hash the frames of one video in time order and collapse consecutive near-duplicates.

    A frame within ``collapse_threshold`` bits (Hamming) of the last kept frame gets
    ``duplicate_of`` = that frame's file name; ``collapse_threshold < 0`` disables collapsing.
    """
    check_hash_params(hash_type, hash_size)
    hasher = _HASHERS[hash_type]
    records: list[FrameHash] = []
    kept: tuple[str, imagehash.ImageHash] | None = None
    for frame in sorted(frames, key=lambda f: (f.timestamp_ms, Path(f.path).name)):
        path = Path(frame.path)
        value, sharp = _hash_file(path, hasher, hash_size)
        duplicate_of = ""
        if kept is not None and collapse_threshold >= 0 and value - kept[1] <= collapse_threshold:
            duplicate_of = kept[0]
        else:
            kept = (path.name, value)
        records.append(
            FrameHash(
                file=path.name,
                timestamp_ms=int(frame.timestamp_ms),
                hash_hex=str(value),
                sharpness=sharp,
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"# {_MAGIC} hash_type={hash_type} hash_size={hash_size}\n"
    text += "\t".join(COLUMNS) + "\n" + "".join(_row(r) for r in records)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
