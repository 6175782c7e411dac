"""Aggregate stage: cross-video near-duplicate removal, labels, and the dataset.

Reads only the per-video hash tables and detection files (never re-hashes an image). Labels come
from the filter's detections when the labelling model is the filter model; otherwise the labelling
model runs only on frames missing from its per-video label cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framesift.dataset import Box, DatasetImage, write_dataset
from framesift.dedup import Candidate, choose_representatives, cluster_labels, hex_to_words
from framesift.detect import Detection, DetectOptions, class_names, detect_frames, load_model
from framesift.filter import DETECTIONS, read_detections
from framesift.fsutil import atomic_write_text
from framesift.hashing import FrameHash, read_hash_table
from framesift.layout import Layout


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
        raise ValueError(f"hash tables use different settings {sorted(seen)}: rerun hash_frames")
    return seen.pop() if seen else ("phash", 8)


def candidate_pool(videos: Sequence[VideoFrames]) -> Pool:
    """Frames that survived the in-video collapse, in video order then time order."""
    pool = Pool()
    for index, video in enumerate(videos):
        for record in video.hashes:
            if not record.duplicate_of:
                pool.video_index.append(index)
                pool.records.append(record)
    return pool


def deduplicate(pool: Pool, hash_size: int, threshold: int, prefer: str) -> tuple[Any, dict]:
    """Cluster labels per pool entry and cluster → representative index."""
    if not pool.records:
        return [], {}
    words = hex_to_words([r.hash_hex for r in pool.records], hash_size * hash_size)
    labels = cluster_labels(words, threshold)
    candidates = [
        Candidate(f"{i}", r.sharpness, r.confidence, (pool.video_index[i], r.timestamp_ms))
        for i, r in enumerate(pool.records)
    ]
    return labels, choose_representatives(labels, candidates, prefer)


def write_clusters(
    path: Path, videos: Sequence[VideoFrames], pool: Pool, labels: Any, reps: dict
) -> None:
    """One row per candidate frame: its cluster, whether it is kept, and its representative."""
    lines = ["cluster\tvideo_id\tfile\ttimestamp_ms\thash\tkept\trepresentative"]
    for i, record in enumerate(pool.records):
        rep = reps[int(labels[i])]
        rep_video = videos[pool.video_index[rep]].video_id
        lines.append(
            f"{int(labels[i])}\t{videos[pool.video_index[i]].video_id}\t{record.file}"
            f"\t{record.timestamp_ms}\t{record.hash_hex}\t{int(rep == i)}"
            f"\t{rep_video}/{pool.records[rep].file}"
        )
    atomic_write_text(path, "\n".join(lines) + "\n")


def model_cache_tag(settings: dict[str, Any]) -> str:
    """Folder name of a labelling model's cache: changes when any inference setting changes."""
    keys = ("model", "conf", "imgsz", "classes", "min_box_area")
    text = json.dumps({k: settings[k] for k in keys}, sort_keys=True)
    stem = "".join(c if c.isalnum() else "_" for c in Path(settings["model"]).stem)[:32]
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
        self, video: VideoFrames, files: Sequence[str], settings: dict[str, Any], model: Any
    ) -> dict[str, tuple[int, int, list[Detection]]]:
        """(width, height, detections) for ``files`` of ``video``, running ``model`` on misses."""
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
            options = DetectOptions.from_settings(settings)
            for frame, width, height, dets in detect_frames(model(), missing, options):
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


def build(
    videos: Sequence[tuple[str, str]],
    layout: Layout,
    dedup: dict[str, Any],
    dataset: dict[str, Any],
    detect: dict[str, Any],
    log: logging.Logger,
) -> AggregateResult:
    """Deduplicate across videos, label the representatives and write ``results/dataset``."""
    loaded = load_videos(videos, layout)
    _, hash_size = hash_settings(loaded)
    pool = candidate_pool(loaded)
    labels, reps = deduplicate(pool, hash_size, dedup["threshold"], dedup["prefer"])
    write_clusters(layout.clusters, loaded, pool, labels, reps)
    chosen = sorted(reps.values())
    log.info(f"{len(pool.records)} candidate frames in {len(reps)} clusters")

    by_video: dict[int, list[str]] = {}
    for i in chosen:
        by_video.setdefault(pool.video_index[i], []).append(pool.records[i].file)
    if detect["reuse_filter"]:
        labeller: FilterLabels | ModelLabels = FilterLabels()
    else:
        labeller = ModelLabels(loaded, by_video, detect, layout.labels_cache)
    names = dataset_names(loaded, detect["classes"], labeller.names)
    index_of = {name: k for k, name in enumerate(names)}

    images = []
    per_video = {v.video_id: _video_counts(v) for v in loaded}
    for i in chosen:
        video = loaded[pool.video_index[i]]
        record = pool.records[i]
        width, height, dets = labeller.get(video, record.file)
        boxes = tuple(
            Box(index_of[d.class_name], d.class_name, d.confidence, d.xyxy)
            for d in dets
            if d.class_name in index_of
        )
        images.append(
            DatasetImage(
                video.kept_dir / record.file,
                video.video_id,
                video.url,
                record.timestamp_ms,
                width,
                height,
                boxes,
            )
        )
        per_video[video.video_id]["in_dataset"] += 1
    summary = write_dataset(images, names, layout.dataset, dataset["val_fraction"], dataset["seed"])
    return AggregateResult(
        per_video, len(pool.records), len(reps), summary, labeller.reused, labeller.computed
    )


def _video_counts(video: VideoFrames) -> dict[str, Any]:
    return {
        "url": video.url,
        "frames": video.frames_in,
        "filtered": video.filtered,
        "after_collapse": sum(1 for r in video.hashes if not r.duplicate_of),
        "in_dataset": 0,
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
        detect: dict[str, Any],
        cache_root: Path,
    ):
        self.cache = LabelCache(cache_root / model_cache_tag(detect))
        self.cache_model_spec = detect["model"]
        self._model: Any = None
        self.labelled = {
            videos[i].video_id: self.cache.label(videos[i], files, detect, self.model)
            for i, files in wanted.items()
        }
        self.names = class_names(self._model) if self._model is not None else {}
        self.reused, self.computed = self.cache.reused, self.cache.computed

    def model(self) -> Any:
        """The labelling model, loaded on first use only."""
        if self._model is None:
            self._model = load_model(self.cache_model_spec)
        return self._model

    def get(self, video: VideoFrames, name: str) -> tuple[int, int, list[Detection]]:
        return self.labelled[video.video_id][name]
