"""Perceptual hash and sharpness of a frame: exact imagehash, one decode per frame.

The heavy half of hashing (imagehash, numpy, scipy): the detection worker imports it once and
hashes the frames it has already decoded (docs/worker.md); the in-process paths (the
detector-free mode, :class:`framesift.detection.detector.LocalDetector`) use it too.
A frame's hash is imagehash's on the full-resolution grayscale image (no JPEG draft mode), so it
is bit-identical to ``imagehash.<type>(Image.open(frame))``; its sharpness is the variance of a
Laplacian at a reduced working scale (:func:`sharpness`). Tables and collapsing live in
:mod:`framesift.hashing.tables`.
"""

from __future__ import annotations

from collections.abc import Callable

import imagehash
import numpy as np
from PIL import Image

from framesift.hashing.tables import HashSpec, Signature

SHARPNESS_SIDE = 320  # long side, in pixels, of the working scale :func:`sharpness` measures at

_HASHERS: dict[str, Callable[..., imagehash.ImageHash]] = {
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "ahash": imagehash.average_hash,
    "whash": imagehash.whash,
}


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

    ``spec`` is trusted (checked where it was built: :meth:`HashSpec.of`)."""
    gray = image if image.mode == "L" else image.convert("L")
    value = _HASHERS[spec.hash_type](gray, hash_size=spec.hash_size)
    return Signature(str(value), sharpness(gray))
