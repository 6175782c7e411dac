"""What the HTML report reads from the results folder: the dataset's manifest, class names and
labels, a contact-sheet sample, and dedup examples from ``clusters.tsv``."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from framesift.dataset.clusters import ClusterRow, read_cluster_table

YoloBox = tuple[int, float, float, float, float]  # class, cx, cy, w, h (normalised)


@dataclass(frozen=True)
class DatasetEntry:
    """One row of the dataset's ``manifest.csv`` (the columns the report uses)."""

    image: str  # images/{split}/{name}.jpg, relative to the dataset folder
    split: str
    video_id: str
    timestamp_ms: int
    n_boxes: int


def read_dataset_manifest(path: Path) -> list[DatasetEntry]:
    """The rows of the dataset's ``manifest.csv`` ([] when there is none)."""
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return []
    return [
        DatasetEntry(
            r["image"], r["split"], r["video_id"], int(r["timestamp_ms"]), int(r["n_boxes"])
        )
        for r in rows
    ]


def read_class_names(data_yaml: Path, fallback: Sequence[str] = ()) -> list[str]:
    """Class names from ``data.yaml`` (``names`` as a list or an id → name map)."""
    try:
        names = (yaml.safe_load(data_yaml.read_text()) or {}).get("names")
    except (OSError, yaml.YAMLError, AttributeError):
        names = None
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names, key=int)]
    if isinstance(names, list):
        return [str(n) for n in names]
    return list(fallback)


def label_path(dataset: Path, image: str) -> Path:
    """The YOLO label file of a manifest ``image`` (``images/{split}/x.jpg``)."""
    parts = Path(image).parts
    return dataset.joinpath("labels", *parts[1:]).with_suffix(".txt")


def read_yolo_labels(path: Path) -> list[YoloBox]:
    """``class cx cy w h`` lines of a label file; malformed lines are skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    boxes = []
    for line in lines:
        parts = line.split()
        if len(parts) != 5:
            continue
        try:
            cx, cy, w, h = (float(p) for p in parts[1:])
            boxes.append((int(parts[0]), cx, cy, w, h))
        except ValueError:
            continue
    return boxes


def read_dataset_labels(dataset: Path, entries: Sequence[DatasetEntry]) -> dict[str, list[YoloBox]]:
    """The boxes of every entry that has any, by manifest ``image``."""
    return {e.image: read_yolo_labels(label_path(dataset, e.image)) for e in entries if e.n_boxes}


def boxes_per_class(
    entries: Sequence[DatasetEntry], labels: Mapping[str, Sequence[YoloBox]]
) -> dict[int, Counter[str]]:
    """Box counts per class id, split by split."""
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for entry in entries:
        for box in labels.get(entry.image, ()):
            counts[box[0]][entry.split] += 1
    return dict(counts)


def sample_images(entries: Sequence[DatasetEntry], limit: int) -> list[DatasetEntry]:
    """At most ``limit`` entries spread over videos, in video then time order.

    Each video gets an equal share (videos with fewer images give their unused share to the
    others); within a video the picks are evenly spaced in time. Deterministic.
    """
    by_video: dict[str, list[DatasetEntry]] = defaultdict(list)
    for entry in entries:
        by_video[entry.video_id].append(entry)
    for frames in by_video.values():
        frames.sort(key=lambda e: (e.timestamp_ms, e.image))
    if len(entries) > limit:
        remaining = max(limit, 0)
        ranked = sorted(by_video, key=lambda v: (len(by_video[v]), v))
        for left, vid in zip(range(len(ranked), 0, -1), ranked, strict=True):
            frames = by_video[vid]
            take = min(len(frames), remaining // left)
            remaining -= take
            by_video[vid] = [frames[(2 * i + 1) * len(frames) // (2 * take)] for i in range(take)]
    return [entry for vid in sorted(by_video) for entry in by_video[vid]]


@dataclass(frozen=True)
class DedupExample:
    """One cluster: its kept frame and up to a few of the frames it replaced."""

    cluster: int
    kept: ClusterRow
    replaced: tuple[ClusterRow, ...]
    dropped: int  # all frames the cluster dropped


@dataclass(frozen=True)
class DedupSummary:
    """Examples plus totals over the whole clusters table."""

    examples: tuple[DedupExample, ...]
    clusters_with_drops: int
    dropped: int


def dedup_examples(path: Path, limit: int, per_cluster: int) -> DedupSummary:
    """The ``limit`` clusters of ``clusters.tsv`` that dropped most frames (two passes over the
    file, little memory). Replaced frames are listed farthest first: they show what the
    threshold lets through."""
    dropped = Counter(row.cluster for row in read_cluster_table(path) if not row.kept)
    chosen = sorted(dropped, key=lambda c: (-dropped[c], c))[:limit]
    members: dict[int, list[ClusterRow]] = {c: [] for c in chosen}
    for row in read_cluster_table(path):
        if row.cluster in members:
            members[row.cluster].append(row)
    examples = []
    for cluster in chosen:
        kept = next((r for r in members[cluster] if r.kept), None)
        if kept is None:
            continue
        replaced = sorted(
            (r for r in members[cluster] if not r.kept),
            key=lambda r: (-r.distance, r.video_id, r.timestamp_ms),
        )
        examples.append(
            DedupExample(cluster, kept, tuple(replaced[:per_cluster]), dropped[cluster])
        )
    return DedupSummary(tuple(examples), len(dropped), sum(dropped.values()))
