"""Hashing frame files in one process, the way the detection worker signs the frames it decoded:
for the benchmarks' reference runs (``reference_pipeline.py``, ``bench_hash.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from framesift.hashing.image_hash import signature
from framesift.hashing.tables import FrameHash, HashSpec, SignedFrame, collapse


def hash_files(
    frames: Sequence[tuple[Path, int, float]], spec: HashSpec, collapse_threshold: int
) -> list[FrameHash]:
    """Hash frame files in this process, each decoded once, and collapse consecutive
    near-duplicates; ``frames``: (path, time, best confidence) of one video's frames."""
    signed = []
    for path, timestamp_ms, confidence in frames:
        with Image.open(path) as image:
            signed.append(SignedFrame(path.name, timestamp_ms, signature(image, spec), confidence))
    return collapse(signed, collapse_threshold)
