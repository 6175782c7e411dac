"""Aggregate stage: cross-video near-duplicate removal, labels, and the dataset.

Reads only the per-video hash tables and detection files (never re-hashes an image). Labels come
from the filter's detections when the labelling model is the filter model; otherwise the labelling
model runs only on frames missing from its per-video label cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from framesift.core.fsutil import atomic_write_text
from framesift.core.layout import Layout
from framesift.core.settings import DatasetSettings, DedupSettings, FilterSettings
from framesift.dataset.balance import cap_images, negatives_quota, spread_over_videos
from framesift.dataset.clusters import ClusterRow, write_cluster_table
from framesift.dataset.writer import Box, DatasetImage, write_dataset
from framesift.detection.detector import (
    Detection,
    DetectOptions,
    FrameDetector,
    Labelling,
    LocalDetector,
    load_model,
)
from framesift.hashing.dedup import (
    Candidate,
    greedy_cover,
    hex_to_words,
    near_any,
    preference_order,
)
from framesift.hashing.tables import FrameHash, read_hash_table
from framesift.stages.filter import DETECTIONS, read_detections


@dataclass
class VideoFrames:
    """Everything the aggregate knows about one video's kept frames."""

    video_id: str
    url: str
    frames_in: int
    filtered: int
    hashes: list[FrameHash]
    rows: dict[str, dict[str, Any]]  # file -> detections row (width, height, boxes, ...)
    names: dict[int, str]
    kept_dir: Path
    hash_meta: tuple[str, int]  # (hash type, hash size) of the video's hash table


@dataclass
class Pool:
    """The candidate frames (kept after in-video collapse) across all videos, in a fixed order."""

    video_index: list[int] = field(default_factory=list)
    records: list[FrameHash] = field(default_factory=list)


def load_videos(videos: Sequence[tuple[str, str]], layout: Layout) -> list[VideoFrames]:
    """Read each video's hash table and detections file."""
    loaded = []
    for vid, url in videos:
        kept_dir = layout.filtered(vid)
        det = read_detections(kept_dir / DETECTIONS)
        meta, hashes = read_hash_table(layout.hashes(vid))
        rows = {row["file"]: row for row in det["frames"]}
        names = {int(k): v for k, v in det["names"].items()}
        hash_meta = (meta["hash_type"], int(meta["hash_size"]))
        loaded.append(
            VideoFrames(
                vid, url, det["frames_in"], len(rows), hashes, rows, names, kept_dir, hash_meta
            )
        )
    return loaded


def hash_settings(videos: Sequence[VideoFrames]) -> tuple[str, int]:
    """The hash type and size shared by all tables; mixing settings is an error."""
    seen = {video.hash_meta for video in videos}
    if len(seen) > 1:
        raise ValueError(
            f"hash tables use different settings {sorted(seen)}: "
            "rerun with --forcerun filter_frames"
        )
    return seen.pop() if seen else ("phash", 8)


def candidate_pool(tables: Iterable[tuple[int, Sequence[FrameHash]]]) -> Pool:
    """The frames of (video index, hash table rows) that survived the in-video collapse, in
    the order given (video order, then time order)."""
    pool = Pool()
    for index, records in tables:
        for record in records:
            if not record.duplicate_of:
                pool.video_index.append(index)
                pool.records.append(record)
    return pool


def pool_words(pool: Pool, hash_size: int) -> np.ndarray:
    """The pool's hashes as rows of 64-bit words (see framesift.hashing.dedup.hex_to_words)."""
    return hex_to_words([r.hash_hex for r in pool.records], hash_size * hash_size)


def deduplicate(
    words: np.ndarray, order: np.ndarray, threshold: int
) -> tuple[Any, dict[int, int], Any]:
    """Greedy cover of the pool walked in ``order`` (most preferred first; every dropped entry
    is within ``threshold`` bits of its representative): cluster per pool entry, cluster →
    representative index, and each entry's Hamming distance to its representative."""
    if len(words) == 0:
        return [], {}, []
    assignment = greedy_cover(words, threshold, order)
    return assignment.cluster, assignment.representatives(), assignment.distance


def candidates_of(pool: Pool) -> list[Candidate]:
    """The pool's entries as dedup candidates (preference: sharpness, confidence, time)."""
    return [
        Candidate(r.sharpness, r.confidence, (pool.video_index[i], r.timestamp_ms))
        for i, r in enumerate(pool.records)
    ]


def write_clusters(
    path: Path,
    videos: Sequence[VideoFrames],
    pool: Pool,
    labels: Any,
    reps: dict[int, int],
    distance: Any,
) -> None:
    """``clusters.tsv`` (framesift.dataset.clusters): one row per candidate frame, its cluster,
    whether it is kept, its representative and the Hamming distance to it (0 when kept)."""
    rows = []
    for i, record in enumerate(pool.records):
        cluster = int(labels[i])
        rep = reps[cluster]
        rows.append(
            ClusterRow(
                cluster,
                videos[pool.video_index[i]].video_id,
                record.file,
                record.timestamp_ms,
                record.hash_hex,
                rep == i,
                f"{videos[pool.video_index[rep]].video_id}/{pool.records[rep].file}",
                int(distance[i]),
            )
        )
    write_cluster_table(path, rows)


def model_cache_tag(detection: FilterSettings) -> str:
    """Folder name of a labelling model's cache: changes when any inference setting changes."""
    keys = ("model", "conf", "imgsz", "classes", "min_box_area")
    values = {key: getattr(detection, key) for key in keys}
    text = json.dumps({**values, "classes": list(detection.classes)}, sort_keys=True)
    stem = "".join(c if c.isalnum() else "_" for c in Path(str(detection.model)).stem)[:32]
    return f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def _frame_key(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


class LabelCache:
    """Per-video cache of a labelling model's boxes, keyed by frame file and its size+mtime."""

    def __init__(self, root: Path):
        self.root = root
        self.computed = 0
        self.reused = 0

    def label(
        self, video: VideoFrames, files: Sequence[str], detector: Callable[[], FrameDetector]
    ) -> dict[str, tuple[int, int, list[Detection]]]:
        """(width, height, detections) for ``files`` of ``video``, running ``detector()`` on
        misses only."""
        path = self.root / f"{video.video_id}.json"
        cache = json.loads(path.read_text()) if path.exists() else {}
        out: dict[str, tuple[int, int, list[Detection]]] = {}
        missing = []
        for name in files:
            entry = cache.get(name)
            if entry and entry["key"] == _frame_key(video.kept_dir / name):
                dets = [Detection.from_dict(d) for d in entry["boxes"]]
                out[name] = (entry["width"], entry["height"], dets)
            else:
                missing.append(video.kept_dir / name)
        self.reused += len(out)
        if missing:
            for frame, width, height, dets, _ in detector().detect_paths(missing):
                found = dets or []
                out[frame.name] = (width, height, found)
                cache[frame.name] = {
                    "key": _frame_key(frame),
                    "width": width,
                    "height": height,
                    "boxes": [d.as_dict() for d in found],
                }
            self.computed += len(missing)
            atomic_write_text(path, json.dumps(cache) + "\n")
        return out


def dataset_names(videos: Sequence[VideoFrames], wanted: Sequence[str], labeller_names: dict):
    """Class names of the dataset: the configured classes, else all the labelling model's."""
    if wanted:
        return list(wanted)
    names = labeller_names or next((v.names for v in videos if v.names), {})
    return [names[k] for k in sorted(names)]


@dataclass
class AggregateResult:
    """Counts for the report."""

    per_video: dict[str, dict[str, Any]]
    candidates: int
    clusters: int
    dataset: dict[str, Any]
    labels_reused: int
    labels_computed: int


def local_detector(detection: FilterSettings) -> FrameDetector:
    """A detector loaded in this process (the pipeline uses the shared worker instead)."""
    return LocalDetector(load_model(str(detection.model)), DetectOptions.of(detection))


def build(
    videos: Sequence[tuple[str, str]],
    layout: Layout,
    dedup: DedupSettings,
    dataset: DatasetSettings,
    labelling: Labelling,
    log: logging.Logger,
    detector_for: Callable[[FilterSettings], FrameDetector] = local_detector,
) -> AggregateResult:
    """Deduplicate across videos, label the representatives and write ``results/dataset``.

    ``detector_for(labelling.detection)`` gives the labelling detector when labels do not come
    from the filter (the pipeline passes the shared worker's client).
    """
    loaded = load_videos(videos, layout)
    _, hash_size = hash_settings(loaded)
    pool = candidate_pool((index, video.hashes) for index, video in enumerate(loaded))
    words = pool_words(pool, hash_size)
    order = preference_order(candidates_of(pool), dedup.prefer)  # ranked once, used twice
    labels, reps, distance = deduplicate(words, order, dedup.threshold)
    write_clusters(layout.clusters, loaded, pool, labels, reps, distance)
    chosen = sorted(reps.values())
    log.info(f"{len(pool.records)} candidate frames in {len(reps)} clusters")

    by_video: dict[int, list[str]] = {}
    for i in chosen:
        by_video.setdefault(pool.video_index[i], []).append(pool.records[i].file)
    if labelling.reuse_filter:
        labeller: FilterLabels | ModelLabels = FilterLabels()
    else:
        labeller = ModelLabels(
            loaded, by_video, labelling.detection, layout.labels_cache, detector_for
        )
    names = dataset_names(loaded, labelling.detection.classes, labeller.names)
    index_of = {name: k for k, name in enumerate(names)}

    labelled: dict[int, DatasetImage] = {}
    for i in chosen:
        video = loaded[pool.video_index[i]]
        record = pool.records[i]
        width, height, dets = labeller.get(video, record.file)
        boxes = tuple(
            Box(index_of[d.class_name], d.class_name, d.confidence, d.xyxy)
            for d in dets
            if d.class_name in index_of
        )
        labelled[i] = DatasetImage(
            video.kept_dir / record.file,
            video.video_id,
            video.url,
            record.timestamp_ms,
            width,
            height,
            boxes,
        )
    chosen_set = set(chosen)
    capped = cap_images(
        [int(i) for i in order if i in chosen_set],
        {i: image.video_id for i, image in labelled.items()},
        {i: frozenset(b.class_name for b in image.boxes) for i, image in labelled.items()},
        dataset.max_per_video,
        dataset.max_per_class,
    )
    if len(capped) < len(chosen):
        log.info(f"caps: {len(chosen) - len(capped)} of {len(chosen)} images left out")
    images = [labelled[i] for i in sorted(capped)]
    negatives = pick_negatives(loaded, layout, words, images, hash_size, dedup, dataset)
    if negatives:
        log.info(f"negatives: {len(negatives)} frames with no detection added")
    per_video = {v.video_id: _video_counts(v) for v in loaded}
    for image in images + negatives:
        per_video[image.video_id]["in_dataset"] += 1
    for image in negatives:
        per_video[image.video_id]["negatives"] += 1
    all_images = images + negatives
    summary = write_dataset(all_images, names, layout.dataset, dataset.val_fraction, dataset.seed)
    summary["negatives"] = len(negatives)
    return AggregateResult(
        per_video, len(pool.records), len(reps), summary, labeller.reused, labeller.computed
    )


def pick_negatives(
    videos: Sequence[VideoFrames],
    layout: Layout,
    positive_words: np.ndarray,
    positives: Sequence[DatasetImage],
    hash_size: int,
    dedup: DedupSettings,
    dataset: DatasetSettings,
) -> list[DatasetImage]:
    """Frames the filter dropped, as images without boxes (``dataset.negatives``).

    Candidates are the negative hash tables' frames left after the in-video collapse. A
    candidate within ``dedup.threshold`` of any frame the filter kept is left out (it may show
    the object after all), the rest are deduplicated among themselves like the positives, and
    the quota is taken in preference order, round-robin over videos.
    """
    quota = negatives_quota(len(positives), dataset.negatives)
    if quota == 0:
        return []
    tables = (
        (index, read_hash_table(path)[1])
        for index, video in enumerate(videos)
        if (path := layout.negative_hashes(video.video_id)).exists()
    )
    negative_pool = candidate_pool(tables)
    if not negative_pool.records:
        return []
    words = pool_words(negative_pool, hash_size)
    clear = ~near_any(words, positive_words, dedup.threshold)
    keep = np.flatnonzero(clear)
    if len(keep) == 0:
        return []
    order = preference_order(candidates_of(negative_pool), dedup.prefer)
    position = np.full(len(words), -1, dtype=np.int64)
    position[keep] = np.arange(len(keep))
    assignment = greedy_cover(words[keep], dedup.threshold, position[order[clear[order]]])
    kept = set(keep[assignment.kept].tolist())
    reps = [int(i) for i in order if int(i) in kept]  # in preference order
    video_of = {i: videos[negative_pool.video_index[i]].video_id for i in reps}
    picked = spread_over_videos(reps, video_of, quota)
    images = []
    for i in sorted(picked):
        video = videos[negative_pool.video_index[i]]
        record = negative_pool.records[i]
        source = layout.frames(video.video_id) / record.file
        with Image.open(source) as frame:
            width, height = frame.size
        images.append(
            DatasetImage(source, video.video_id, video.url, record.timestamp_ms, width, height, ())
        )
    return images


def _video_counts(video: VideoFrames) -> dict[str, Any]:
    return {
        "url": video.url,
        "frames": video.frames_in,
        "filtered": video.filtered,
        "after_collapse": sum(1 for r in video.hashes if not r.duplicate_of),
        "in_dataset": 0,
        "negatives": 0,
    }


class FilterLabels:
    """Labels taken from the filter's detections (the labelling model is the filter model)."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.reused = 0
        self.computed = 0

    def get(self, video: VideoFrames, name: str) -> tuple[int, int, list[Detection]]:
        row = video.rows[name]
        self.reused += 1
        return row["width"], row["height"], [Detection.from_dict(b) for b in row["boxes"]]


class ModelLabels:
    """Labels from a separate labelling model, cached per frame so each frame is labelled once."""

    def __init__(
        self,
        videos: Sequence[VideoFrames],
        wanted: dict[int, list[str]],
        detection: FilterSettings,
        cache_root: Path,
        detector_for: Callable[[FilterSettings], FrameDetector],
    ):
        self.cache = LabelCache(cache_root / model_cache_tag(detection))
        self.settings = detection
        self.detector_for = detector_for
        self._detector: FrameDetector | None = None
        self.labelled = {
            videos[i].video_id: self.cache.label(videos[i], files, self.detector)
            for i, files in wanted.items()
        }
        self.names = self._detector.names if self._detector is not None else {}
        self.reused, self.computed = self.cache.reused, self.cache.computed

    def detector(self) -> FrameDetector:
        """The labelling detector, made on first use only (no miss: no model at all)."""
        if self._detector is None:
            self._detector = self.detector_for(self.settings)
        return self._detector

    def get(self, video: VideoFrames, name: str) -> tuple[int, int, list[Detection]]:
        return self.labelled[video.video_id][name]
