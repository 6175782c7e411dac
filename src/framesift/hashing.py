"""Perceptual hash and sharpness of a frame: exact imagehash, one decode per frame.

The heavy half of hashing (imagehash, numpy, scipy): the detection worker imports it once and
hashes the frames it has already decoded (docs/worker.md); the in-process paths use it too.
A frame's hash is imagehash's on the full-resolution grayscale image (no JPEG draft mode), so it
is bit-identical to ``imagehash.<type>(Image.open(frame))``; its sharpness is the variance of a
Laplacian at a reduced working scale (:func:`sharpness`). Tables and collapsing live in
:mod:`framesift.hash_table`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from framesift.hash_table import (
    FrameHash,
    HashSpec,
    Signature,
    SignedFrame,
    check_hash_params,
    collapse,
)

SHARPNESS_SIDE = 320  # long side, in pixels, of the working scale :func:`sharpness` measures at

_HASHERS: dict[str, Callable[..., imagehash.ImageHash]] = {
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "ahash": imagehash.average_hash,
    "whash": imagehash.whash,
}


@dataclass(frozen=True)
class FrameInput:
    """A frame of one video to hash: image path, time and best detection confidence."""

    path: Path
    timestamp_ms: int
    confidence: float


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


def signature(image: Image.Image, spec: HashSpec) -> Signature:
    """Hash and sharpness from one decoded image (converted to grayscale once).

    ``spec`` is trusted (checked where it was built: :meth:`HashSpec.from_settings`)."""
    gray = image if image.mode == "L" else image.convert("L")
    value = _HASHERS[spec.hash_type](gray, hash_size=spec.hash_size)
    return Signature(str(value), sharpness(gray))


def file_signature(path: Path, spec: HashSpec) -> Signature:
    """Hash and sharpness of one image file from a single decode."""
    with Image.open(path) as image:
        return signature(image, spec)


def hash_frames(
    frames: Sequence[FrameInput],
    hash_type: str = "phash",
    hash_size: int = 8,
    collapse_threshold: int = 4,
) -> list[FrameHash]:
    """Hash the frames of one video (each file decoded once) and collapse consecutive
    near-duplicates (:func:`framesift.hash_table.collapse`)."""
    check_hash_params(hash_type, hash_size)
    spec = HashSpec(hash_type, hash_size)
    signed = [
        SignedFrame(
            Path(f.path).name, int(f.timestamp_ms), file_signature(Path(f.path), spec), f.confidence
        )
        for f in frames
    ]
    return collapse(signed, collapse_threshold)
