"""Filter stage: keep the frames of one video in which a wanted class is detected.

Kept frames are hard-linked (copied across filesystems) into the output folder, beside
``detections.json`` holding every kept frame's boxes. With a :class:`HashSpec` the detector also
hashes the kept frames (and the dropped ones when negatives are wanted) from the same decode;
the summary carries those signatures for the hash tables (docs/worker.md).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framesift.core.fsutil import link_or_copy, publish_dir, staging_dir
from framesift.core.progress import Progress
from framesift.detection.detector import DetectorFault, FrameDetector, signature_due
from framesift.hashing.tables import HashSpec, SignedFrame
from framesift.stages.frames import MANIFEST, read_manifest

DETECTIONS = "detections.json"


@dataclass(frozen=True)
class FilterSummary:
    """What the filter did for one video."""

    frames_in: int
    kept: int
    unreadable: list[str]
    kept_signed: list[SignedFrame] = field(default_factory=list)  # with hashing only
    negative_signed: list[SignedFrame] = field(default_factory=list)  # and negatives wanted


def filter_frames(
    frames_dir: Path,
    out_dir: Path,
    detector: FrameDetector,
    model_name: str,
    log: logging.Logger | None = None,
    hashing: HashSpec | None = None,
) -> FilterSummary:
    """Run ``detector`` over the frames listed in ``frames_dir``'s manifest; publish kept frames.

    The detector is the shared worker in a pipeline run (see docs/worker.md), or a model in
    this process. With ``hashing``, the summary has the kept (and negative) frames' signatures.
    """
    frames = read_manifest(Path(frames_dir) / MANIFEST)
    timestamps = {frame.file: frame.timestamp_ms for frame in frames}
    tmp = staging_dir(out_dir)
    kept_rows: list[dict[str, Any]] = []
    unreadable: list[str] = []
    paths = [Path(frames_dir) / frame.file for frame in frames]
    progress = Progress(log, "filter", total=len(paths))
    kept_signed: list[SignedFrame] = []
    negative_signed: list[SignedFrame] = []
    try:
        for path, width, height, detections, signature in detector.detect_paths(paths, hashing):
            progress.advance()
            if detections is None:
                unreadable.append(path.name)
                continue
            if signature_due(hashing, detections):
                if signature is None:
                    raise DetectorFault(f"the detector returned no hash for {path.name}")
                best = max((d.confidence for d in detections), default=0.0)
                signed = SignedFrame(path.name, timestamps[path.name], signature, best)
                (kept_signed if detections else negative_signed).append(signed)
            if not detections:
                continue
            link_or_copy(path, tmp / path.name)
            kept_rows.append(
                {
                    "file": path.name,
                    "timestamp_ms": timestamps[path.name],
                    "width": width,
                    "height": height,
                    "boxes": [d.as_dict() for d in detections],
                }
            )
        write_detections(
            tmp / DETECTIONS, model_name, detector.names, len(frames), kept_rows, unreadable
        )
        publish_dir(tmp, out_dir)
        progress.finish()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when published
    return FilterSummary(len(frames), len(kept_rows), unreadable, kept_signed, negative_signed)


def keep_all_frames(
    frames_dir: Path, out_dir: Path, model_name: str, hashing: HashSpec | None = None
) -> FilterSummary:
    """Detector-free mode: keep every decodable frame, with no boxes (no model, no torch);
    with ``hashing``, each one is hashed in this process from the same decode."""
    from PIL import Image

    frames = read_manifest(Path(frames_dir) / MANIFEST)
    tmp = staging_dir(out_dir)
    rows: list[dict[str, Any]] = []
    unreadable: list[str] = []
    signed: list[SignedFrame] = []
    if hashing is not None:
        from framesift.hashing.image_hash import (
            signature,  # imagehash, scipy: only this mode, in-process
        )
    try:
        for frame in frames:
            path = Path(frames_dir) / frame.file
            try:
                with Image.open(path) as image:
                    image.load()
                    width, height = image.size
                    if hashing is not None:
                        signed.append(
                            SignedFrame(frame.file, frame.timestamp_ms, signature(image, hashing))
                        )
            except (OSError, ValueError, SyntaxError):  # Pillow's errors for broken files
                unreadable.append(frame.file)
                continue
            link_or_copy(path, tmp / frame.file)
            rows.append(
                {
                    "file": frame.file,
                    "timestamp_ms": frame.timestamp_ms,
                    "width": width,
                    "height": height,
                    "boxes": [],
                }
            )
        write_detections(tmp / DETECTIONS, model_name, {}, len(frames), rows, unreadable)
        publish_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return FilterSummary(len(frames), len(rows), unreadable, signed)


def write_detections(
    path: Path,
    model_name: str,
    names: dict[int, str],
    frames_in: int,
    rows: list[dict[str, Any]],
    unreadable: Sequence[str] = (),
) -> None:
    """The per-video detections file: the kept frames' boxes, and the undecodable frames."""
    data = {
        "model": model_name,
        "names": {str(k): v for k, v in names.items()},
        "frames_in": frames_in,
        "frames": rows,
        "unreadable": list(unreadable),
    }
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def read_detections(path: Path) -> dict[str, Any]:
    """The detections file; a missing one reads as no frames."""
    path = Path(path)
    if not path.exists():
        return {"model": None, "names": {}, "frames_in": 0, "frames": []}
    return json.loads(path.read_text())


def write_empty(out_dir: Path, model_name: str, frames_in: int = 0) -> None:
    """An empty filtered folder (no kept frame)."""
    tmp = staging_dir(out_dir)
    write_detections(tmp / DETECTIONS, model_name, {}, frames_in, [])
    publish_dir(tmp, out_dir)
