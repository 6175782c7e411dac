"""Write the final training dataset: Ultralytics YOLO layout plus COCO JSON and a manifest.

Layout written by :func:`write_dataset` (``out_dir`` is replaced atomically)::

    out_dir/
      data.yaml                      # train/val relative to this file's folder, no 'path:' key
      images/{train,val}/<video_id>_<timestamp_ms:09d>.jpg   # hard links to the frames
      labels/{train,val}/<same stem>.txt                     # YOLO 'class cx cy w h', may be empty
      annotations/instances_{train,val}.json                 # COCO detection
      manifest.csv

Conventions:

* Splits are by video (never by frame), see :func:`split_by_video`.
* ``data.yaml`` has no ``path:`` key. Ultralytics (``check_det_dataset``) then resolves ``train``
  and ``val`` against the folder holding the yaml, so the dataset folder can be moved or copied
  and used from any working directory. (A relative ``path:`` would be resolved against the current
  directory or the global datasets dir, which is why it is left out.)
* COCO ``category_id`` is ``class_id + 1`` (COCO ids are 1-based; 0 is often "background" in
  other tools, and Ultralytics' own COCO→YOLO converter subtracts 1). ``image_id`` and annotation
  ``id`` count from 1 within each split file. Annotations carry an extra ``score`` (the detector
  confidence), which pycocotools ignores for ground truth.
* Every annotation has ``area`` (clipped box w*h in pixels), ``iscrowd: 0`` and a
  ``segmentation`` that is the box as one 4-point polygon, so pycocotools' ``annToMask`` and
  segmentation-aware tools load it (the mask is the box, not an object outline).
* The split is by video, so the image fraction in ``val`` can be far from ``val_fraction`` when
  there are few videos or their sizes differ; the summary then carries a ``warning``.
* Boxes are clipped to the image; a box with no area left after clipping is dropped everywhere
  (labels, COCO, counts).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from framesift.core.fsutil import link_or_copy, publish_dir, staging_dir

SPLITS = ("train", "val")
MANIFEST_FIELDS = ("split", "image", "video_id", "url", "timestamp_ms", "source", "n_boxes")


@dataclass(frozen=True)
class Box:
    """One detection in pixel coordinates of its image."""

    class_id: int
    class_name: str
    confidence: float
    xyxy: tuple[float, float, float, float]  # pixel corners in the image


@dataclass(frozen=True)
class DatasetImage:
    """One frame to include in the dataset, with its boxes."""

    source: Path  # the frame JPEG to include
    video_id: str  # filesystem-safe id
    url: str
    timestamp_ms: int
    width: int
    height: int
    boxes: tuple[Box, ...]

    @property
    def name(self) -> str:
        """File name inside ``images/<split>/``."""
        return f"{self.video_id}_{self.timestamp_ms:09d}.jpg"


# --------------------------------------------------------------------------- splitting


def _score(video_id: str, seed: int) -> float:
    """Stable pseudo-random number in [0, 1) for a video."""
    digest = hashlib.sha256(f"{seed}:{video_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_video(video_ids: Iterable[str], val_fraction: float, seed: int = 0) -> dict[str, str]:
    """Assign each video to ``"train"`` or ``"val"``.

    A video goes to val when ``sha256(f"{seed}:{video_id}")`` mapped to [0, 1) is below
    ``val_fraction``, so its side depends only on (video_id, seed) and adding videos never moves
    existing ones. Guarantees, applied afterwards for small sets (the only case where a side can
    change when videos are added):

    * ``val_fraction == 0`` → everything is train; a single video is always train.
    * With >= 2 videos and ``val_fraction > 0``: if val is empty, the video with the smallest
      score (the one closest to the threshold) moves to val; if train is empty, the video with the
      largest score moves to train. Ties are broken by video id.

    Duplicate ids are allowed and collapse to one entry.
    """
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    scores = {vid: _score(vid, seed) for vid in video_ids}
    split = {vid: "val" if s < val_fraction else "train" for vid, s in scores.items()}
    if val_fraction == 0 or len(split) < 2:
        return dict.fromkeys(split, "train")
    ranked = sorted(scores, key=lambda v: (scores[v], v))
    if "val" not in split.values():
        split[ranked[0]] = "val"
    if "train" not in split.values():
        split[ranked[-1]] = "train"
    return split


# --------------------------------------------------------------------------- labels


def _clip_box(box: Box, width: int, height: int) -> tuple[float, float, float, float] | None:
    """Box corners clipped to the image, or None when nothing is left."""
    x1, y1, x2, y2 = box.xyxy
    x1, x2 = sorted((min(max(x1, 0.0), width), min(max(x2, 0.0), width)))
    y1, y2 = sorted((min(max(y1, 0.0), height), min(max(y2, 0.0), height)))
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        return None
    return (float(x1), float(y1), float(x2), float(y2))


def _clipped_boxes(img: DatasetImage) -> list[tuple[Box, tuple[float, float, float, float]]]:
    """(box, clipped xyxy) for every box of ``img`` that keeps some area."""
    out = []
    for box in img.boxes:
        xyxy = _clip_box(box, img.width, img.height)
        if xyxy is not None:
            out.append((box, xyxy))
    return out


def yolo_line(
    class_id: int, xyxy: tuple[float, float, float, float], width: int, height: int
) -> str:
    """YOLO label line ``class cx cy w h`` normalised to [0, 1] with 6 decimals."""
    x1, y1, x2, y2 = xyxy
    cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
    w, h = (x2 - x1) / width, (y2 - y1) / height
    return f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


# --------------------------------------------------------------------------- validation


def _validate(images: Sequence[DatasetImage], n_classes: int) -> None:
    """Raise ValueError for unsafe ids, bad sizes, unknown classes or duplicate output names."""
    seen: dict[str, Path] = {}
    for img in images:
        vid = img.video_id
        if not vid or vid in {".", ".."} or any(c in vid for c in ("/", "\\", "\0", os.sep)):
            raise ValueError(f"video_id is not filesystem-safe: {vid!r}")
        if img.width <= 0 or img.height <= 0:
            raise ValueError(f"{img.source}: bad image size {img.width}x{img.height}")
        for box in img.boxes:
            if not 0 <= box.class_id < n_classes:
                raise ValueError(f"{img.source}: class_id {box.class_id} not in 0..{n_classes - 1}")
        if img.name in seen:
            raise ValueError(f"duplicate output name {img.name}: {seen[img.name]} and {img.source}")
        seen[img.name] = img.source
        if not Path(img.source).is_file():
            raise FileNotFoundError(f"frame not found: {img.source}")


# --------------------------------------------------------------------------- writers


def _write_split_files(root: Path, split: str, images: Sequence[DatasetImage]) -> None:
    """Images and YOLO label files of one split."""
    img_dir, lbl_dir = root / "images" / split, root / "labels" / split
    img_dir.mkdir(parents=True)
    lbl_dir.mkdir(parents=True)
    for img in images:
        link_or_copy(Path(img.source), img_dir / img.name)
        lines = [
            yolo_line(b.class_id, xyxy, img.width, img.height) for b, xyxy in _clipped_boxes(img)
        ]
        text = "".join(f"{line}\n" for line in lines)
        (lbl_dir / img.name).with_suffix(".txt").write_text(text)


def coco_dict(images: Sequence[DatasetImage], class_names: Sequence[str]) -> dict:
    """COCO detection dict for one split (category_id = class_id + 1, ids from 1).

    ``segmentation`` is the clipped box as one polygon ``[[x1, y1, x2, y1, x2, y2, x1, y2]]``:
    detection labels have no outline, but pycocotools' ``annToMask`` needs a polygon (or RLE).
    ``area`` is the clipped box's w*h and ``iscrowd`` is always 0.
    """
    coco_images, annotations = [], []
    for image_id, img in enumerate(images, start=1):
        coco_images.append(
            {
                "id": image_id,
                "file_name": img.name,
                "width": img.width,
                "height": img.height,
                "video_id": img.video_id,
                "timestamp_ms": img.timestamp_ms,
            }
        )
        for box, (x1, y1, x2, y2) in _clipped_boxes(img):
            w, h = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": box.class_id + 1,
                    "bbox": [x1, y1, w, h],
                    "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]],
                    "area": w * h,
                    "iscrowd": 0,
                    "score": float(box.confidence),
                }
            )
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(class_names)]
    return {
        "info": {"description": "framesift dataset"},
        "licenses": [],
        "images": coco_images,
        "annotations": annotations,
        "categories": categories,
    }


def _data_yaml_text(class_names: Sequence[str], val_is_train: bool) -> str:
    """data.yaml contents; no 'path:' so paths resolve against the yaml's own folder."""
    data = {
        "train": "images/train",
        "val": "images/train" if val_is_train else "images/val",
        "nc": len(class_names),
        "names": dict(enumerate(class_names)),
    }
    header = (
        "# framesift dataset. No 'path:' key on purpose: Ultralytics resolves train/val against\n"
        "# this file's folder, so the dataset folder can be moved.\n"
    )
    if val_is_train:
        header += "# Only one video: there is no separate validation split, val = train.\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _write_manifest(path: Path, by_split: dict[str, list[DatasetImage]]) -> None:
    """manifest.csv: one row per dataset image."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_FIELDS)
        for split in SPLITS:
            for img in by_split[split]:
                row = (
                    split,
                    f"images/{split}/{img.name}",
                    img.video_id,
                    img.url,
                    img.timestamp_ms,
                    str(img.source),
                    len(_clipped_boxes(img)),
                )
                writer.writerow(row)


def split_warning(
    n_val: int, n_images: int, val_videos: int, n_videos: int, val_fraction: float
) -> str | None:
    """One-line warning when the actual split is far from ``val_fraction``, else None.

    Warns when there are videos, ``0 < val_fraction < 1`` and val or train holds no image, or when
    there are >= 2 videos and the image fraction in val differs from ``val_fraction`` by more than
    ``max(0.15, 0.5 * val_fraction)``.
    """
    if n_videos == 0 or n_images == 0:
        return None
    actual = n_val / n_images
    one_side_empty = n_val == 0 or n_val == n_images
    if 0.0 < val_fraction < 1.0 and one_side_empty:
        far = True
    else:
        far = n_videos >= 2 and abs(actual - val_fraction) > max(0.15, 0.5 * val_fraction)
    if not far:
        return None
    what = (
        f"val holds {n_val} of {n_images} images ({actual:.0%}) from {val_videos} of {n_videos}"
        f" video{'s' if n_videos != 1 else ''}, far from dataset.val_fraction {val_fraction:g}"
    )
    if n_videos == 1:
        return f"{what}: the split is by video and there is only one, so val = train; add videos"
    return f"{what}: the split is by video; add videos or change dataset.seed"


def _summary(
    by_split: dict[str, list[DatasetImage]],
    class_names: Sequence[str],
    val_is_train: bool,
    val_fraction: float,
) -> dict:
    """Actual counts per split, class names, whether val is the train split, split warning."""
    splits = {
        split: {
            "images": len(imgs),
            "boxes": sum(len(_clipped_boxes(i)) for i in imgs),
            "videos": len({i.video_id for i in imgs}),
        }
        for split, imgs in by_split.items()
    }
    n_videos = len({i.video_id for imgs in by_split.values() for i in imgs})
    warning = split_warning(
        splits["val"]["images"],
        sum(s["images"] for s in splits.values()),
        splits["val"]["videos"],
        n_videos,
        val_fraction,
    )
    return {
        "splits": splits,
        "classes": list(class_names),
        "val_is_train": val_is_train,
        "warning": warning,
    }


def _build(
    root: Path,
    by_split: dict[str, list[DatasetImage]],
    class_names: Sequence[str],
    val_is_train: bool,
) -> None:
    """Write the whole dataset into the empty folder ``root``."""
    (root / "annotations").mkdir(parents=True)
    for split in SPLITS:
        _write_split_files(root, split, by_split[split])
        coco = coco_dict(by_split[split], class_names)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco, indent=1))
    _write_manifest(root / "manifest.csv", by_split)
    (root / "data.yaml").write_text(_data_yaml_text(class_names, val_is_train))


def write_dataset(
    images: Sequence[DatasetImage],
    class_names: Sequence[str],
    out_dir: Path,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> dict:
    """Write the YOLO/COCO dataset for ``images`` to ``out_dir`` and return a summary.

    The dataset is built in a hidden temp folder beside ``out_dir`` and renamed into place; a
    previous ``out_dir`` is renamed aside and deleted afterwards, so readers see either the old or
    the new dataset, never a half-written one. Images are split by video with
    :func:`split_by_video`; when the val split is empty (one video, no images or
    ``val_fraction == 0``) ``data.yaml`` points ``val`` at ``images/train`` and the summary has
    ``"val_is_train": True``.

    Returns ``{"splits": {"train"|"val": {"images", "boxes", "videos"}}, "classes": [...],
    "val_is_train": bool, "warning": str | None}``: the counts are the actual split, and
    ``warning`` (see :func:`split_warning`) says when it is far from ``val_fraction``.

    Raises ValueError on duplicate output names, unknown class ids or unsafe video ids,
    FileNotFoundError on a missing source frame.
    """
    out_dir = Path(out_dir).absolute()
    _validate(images, len(class_names))
    sides = split_by_video((i.video_id for i in images), val_fraction, seed)
    ordered = sorted(images, key=lambda i: (i.video_id, i.timestamp_ms))
    by_split = {s: [i for i in ordered if sides[i.video_id] == s] for s in SPLITS}
    val_is_train = not by_split["val"]

    tmp = staging_dir(out_dir)
    try:
        _build(tmp, by_split, class_names, val_is_train)
        publish_dir(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _summary(by_split, class_names, val_is_train, val_fraction)
