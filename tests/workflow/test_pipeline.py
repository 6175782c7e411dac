"""End-to-end: synthetic videos on 127.0.0.1 → the real workflow → a trainable dataset.

Uses the shipped tiny detector, so the filter and labels are checked against the known
positions and time ranges of the drawn objects.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import imagehash
import pytest
import yaml
from PIL import Image
from testkit import new_workflow, wait_until, worker_processes

from framesift.cli.synthetic import Shape, VideoSpec, make_video, reencode, serve_directory
from framesift.core.urls import video_id
from framesift.dataset.writer import split_by_video
from framesift.hashing.tables import read_hash_table

pytestmark = pytest.mark.slow

SQUARE = Shape("square", 400, 120, 90, 0.8, 2.3)
CIRCLE = Shape("circle", 120, 140, 100, 0.8, 2.2)
SPECS = {
    "sq.mp4": VideoSpec(duration=3.5, background="testsrc2", shapes=(SQUARE,)),
    "ci.mp4": VideoSpec(duration=3.0, background="flat", shapes=(CIRCLE,)),
    "blank.mp4": VideoSpec(duration=2.0, background="smptehdbars"),
}
FPS = 2.0


@pytest.fixture(scope="module")
def shape_server(tmp_path_factory: pytest.TempPathFactory):
    """640x360 clips with known objects, plus the square clip re-encoded smaller."""
    root = tmp_path_factory.mktemp("shapes")
    for name, spec in SPECS.items():
        make_video(root / name, spec)
    reencode(root / "sq.mp4", root / "sq_small.mp4", 480, "250k")
    with serve_directory(root) as base:
        yield base


def _pipeline_config(workflow, **detect) -> None:
    workflow.config["frames"] = {"mode": "fps", "fps": FPS}
    workflow.config["filter"].update({"classes": ["square", "circle"]})
    workflow.config["dataset"] = {"val_fraction": 0.5, "seed": 0}
    if detect:
        workflow.config["detect"] = detect


def _read_labels(dataset: Path) -> dict[str, list[list[float]]]:
    labels = {}
    for path in dataset.glob("labels/*/*.txt"):
        rows = [list(map(float, line.split())) for line in path.read_text().splitlines()]
        labels[path.stem] = rows
    return labels


def _box_of(shape: Shape, width: int = 640, height: int = 360) -> list[float]:
    x1, y1, x2, y2 = shape.box()
    return [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height]


@pytest.fixture(scope="module")
def built(shape_server, tmp_path_factory):
    """One full run on the three clips, shared by the read-only checks below."""
    workflow = new_workflow(tmp_path_factory.mktemp("built") / "run")
    urls = [f"{shape_server}/{name}" for name in SPECS]
    workflow.write_urls(urls)
    _pipeline_config(workflow)
    # caps and negatives (test_caps_and_negatives): every kept frame a dedup candidate
    workflow.config["hash"] = {"consecutive_threshold": -1}
    workflow.config["dataset"].update(
        {"max_per_video": 2, "negatives": 0.5, "seed": _seed_splitting_the_objects(urls)}
    )
    workflow.run()
    return workflow, urls


def _seed_splitting_the_objects(urls: list[str]) -> int:
    """A dataset.seed that puts the square clip and the circle clip on different sides of the
    by-video split. Video ids carry the test server's random port, so a fixed seed would leave
    val with only the blank clip's negatives in about one session of six (nothing to score)."""
    ids = {name: video_id(url) for name, url in zip(SPECS, urls, strict=True)}
    for seed in range(1000):
        split = split_by_video(ids.values(), 0.5, seed)
        if split[ids["sq.mp4"]] != split[ids["ci.mp4"]]:
            return seed
    raise AssertionError("no seed splits the clips")


def test_dataset_from_synthetic_videos(built):
    """Frames with objects are kept, blank frames dropped; labels match the drawn boxes."""
    workflow, urls = built
    ids = {name: video_id(url) for name, url in zip(SPECS, urls, strict=True)}
    for name, spec in SPECS.items():
        kept_dir = workflow.path(f"results/filtered/{ids[name]}")
        kept = {int(p.stem.rsplit("_", 1)[1]) for p in kept_dir.glob("*.jpg")}
        expected = {
            round(i * 1000 / FPS)
            for i in range(int(spec.duration * FPS))
            if any(s.visible_at(i / FPS) for s in spec.shapes)
        }
        assert kept == expected, f"{name}: kept {sorted(kept)}, expected {sorted(expected)}"

    dataset = workflow.path("results/dataset")
    images = sorted(dataset.glob("images/*/*.jpg"))
    labels = _read_labels(dataset)
    assert images and {p.stem for p in images} == set(labels)
    data = yaml.safe_load((dataset / "data.yaml").read_text())
    assert data["names"] == {0: "square", 1: "circle"}
    truth = {ids["sq.mp4"]: (0, _box_of(SQUARE)), ids["ci.mp4"]: (1, _box_of(CIRCLE))}
    with open(dataset / "manifest.csv") as handle:
        negatives = {Path(r["image"]).stem for r in csv.DictReader(handle) if r["n_boxes"] == "0"}
    for stem, rows in labels.items():
        if stem in negatives:
            assert rows == [], stem  # a negative: no object, empty label file
            continue
        vid = stem.rsplit("_", 1)[0]
        class_id, box = truth[vid]
        assert len(rows) == 1, f"{stem}: {rows}"
        assert rows[0][0] == class_id
        assert rows[0][1:] == pytest.approx(box, abs=0.02), stem
    # by-video split: every video's frames on one side only
    with open(dataset / "manifest.csv") as handle:
        sides: dict[str, set[str]] = {}
        for row in csv.DictReader(handle):
            sides.setdefault(row["video_id"], set()).add(row["split"])
    assert all(len(s) == 1 for s in sides.values())
    report = workflow.path("results/report.md").read_text()
    assert ids["blank.mp4"] in report and "no frame shows square, circle" in report
    html = workflow.path("results/report/index.html").read_text()
    assert all(vid in html for vid in ids.values())
    assert "no frame shows square, circle" in html


def test_cross_video_duplicates_removed(workflow, shape_server):
    """The same clip at another resolution/bitrate adds no images to the dataset."""
    workflow.write_urls([f"{shape_server}/sq.mp4", f"{shape_server}/sq_small.mp4"])
    _pipeline_config(workflow)
    workflow.run()
    summary = json.loads(workflow.path("results/summary.json").read_text())
    videos = summary["videos"]
    assert all(v["filtered"] == 3 for v in videos.values()), videos
    # consecutive frames of a static object collapse; both videos hold the same frames
    after_collapse = sum(v["after_collapse"] for v in videos.values())
    in_dataset = summary["totals"]["in_dataset"]
    assert in_dataset == after_collapse // 2, summary["totals"]
    assert in_dataset >= 1
    with open(workflow.path("results/dedup/clusters.tsv")) as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    clusters = {row["cluster"] for row in rows}
    assert len(clusters) == in_dataset
    assert sum(int(r["kept"]) for r in rows) == in_dataset
    assert len({r["video_id"] for r in rows}) == 2


def test_one_worker_serves_every_filter_job_of_a_run(workflow, video_dir, server):
    """--cores 4 --resources gpu=1: the model is loaded once for the run, by the shared worker
    (started by check_model); every filter job is a client that never imports torch or
    imagehash, and writes hash tables bit-identical to imagehash on the kept files; no worker
    and no socket outlive the run."""
    names = ["alpha.mp4", "beta.mp4", "gamma.mp4"]
    workflow.write_urls([f"{server}/{name}" for name in names])
    workflow.config["filter"]["classes"] = []
    workflow.config["hash"] = {"type": "dhash", "size": 8, "consecutive_threshold": -1}
    workflow.run("--cores=4", "--resources=gpu=1", "filtered")
    addresses = set()
    for log in workflow.path("logs/filter_frames").glob("*.log"):
        text = log.read_text()
        assert "imported by this job: neither torch nor imagehash" in text, text
        addresses.update(re.findall(r"detection worker (\S+\.sock) on cpu", text))
    hashed = 0
    for name in names:
        vid = video_id(f"{server}/{name}")
        meta, records = read_hash_table(workflow.path(f"results/hashes/{vid}.tsv"))
        kept = sorted(workflow.path(f"results/filtered/{vid}").glob("*.jpg"))
        assert meta == {"hash_type": "dhash", "hash_size": 8}
        assert sorted(r.file for r in records) == [p.name for p in kept]
        for record in records:
            with Image.open(workflow.path(f"results/filtered/{vid}/{record.file}")) as image:
                assert record.hash_hex == str(imagehash.dhash(image)), record
        hashed += len(records)
    assert hashed > 0
    assert len(list(workflow.path("logs/filter_frames").glob("*.log"))) == 3
    assert len(addresses) == 1, addresses
    (worker_log,) = workflow.path("logs/worker").glob("*.log")
    assert worker_log.read_text().count("loaded on cpu") == 1, worker_log.read_text()
    assert wait_until(lambda: not worker_processes(workflow.root), 10)
    assert "exiting: its run (process" in worker_log.read_text()
    assert not list(workflow.path(".framesift").glob("*.sock"))


def test_dataset_trains_and_loads_in_pycocotools(built, tmp_path, shapes_model):
    """data.yaml validates in ultralytics with the tiny model; COCO JSON loads in pycocotools."""
    from pycocotools.coco import COCO
    from ultralytics import YOLO

    workflow, _ = built
    dataset = workflow.path("results/dataset")
    moved = tmp_path / "moved-dataset"
    shutil.copytree(dataset, moved)  # relocatable: paths are relative to data.yaml
    metrics = YOLO(str(shapes_model)).val(
        data=str(moved / "data.yaml"),
        imgsz=320,
        batch=4,
        device="cpu",
        plots=False,
        project=str(tmp_path / "runs"),
        verbose=False,
    )
    assert metrics.box.map50 > 0.5
    for split in ("train", "val"):
        coco = COCO(str(moved / "annotations" / f"instances_{split}.json"))
        names = {c["name"] for c in coco.loadCats(coco.getCatIds())}
        assert names == {"square", "circle"}
        for ann in coco.loadAnns(coco.getAnnIds()):
            image = coco.loadImgs(ann["image_id"])[0]
            assert (moved / "images" / split / image["file_name"]).exists()


def _mtimes(root: Path, pattern: str) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.glob(pattern)}


def test_adding_a_url_reuses_old_work(workflow, shape_server, shapes_model):
    """A new URL runs only its own chain; the aggregate re-hashes and re-labels no old frame."""
    other_model = workflow.root.parent / "labeller.pt"
    shutil.copy(shapes_model, other_model)  # a different model spec: labels come from the cache
    _pipeline_config(workflow, model=str(other_model))
    workflow.write_urls([f"{shape_server}/sq.mp4"])
    workflow.run()
    first = json.loads(workflow.path("results/summary.json").read_text())
    assert first["labels"]["computed"] == first["totals"]["in_dataset"] > 0
    before = _mtimes(workflow.root, "results/*/*") | _mtimes(workflow.root, "results/*/*/*.jpg")

    workflow.write_urls([f"{shape_server}/sq.mp4", f"{shape_server}/ci.mp4"])
    dry = workflow.run("-n", "--quiet", "rules")
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout, re.MULTILINE))
    for rule in ("download_video", "extract_frames", "filter_frames"):
        assert counts.get(rule) == "1", dry.stdout
    assert counts.get("build_dataset") == "1"
    workflow.run()
    second = json.loads(workflow.path("results/summary.json").read_text())
    new_vid = video_id(f"{shape_server}/ci.mp4")
    assert second["labels"]["computed"] == second["videos"][new_vid]["in_dataset"] > 0
    assert second["labels"]["reused"] == first["totals"]["in_dataset"]
    after = _mtimes(workflow.root, "results/*/*") | _mtimes(workflow.root, "results/*/*/*.jpg")
    old_vid = video_id(f"{shape_server}/sq.mp4")
    for path, mtime in before.items():
        if old_vid in path and "dataset" not in path and "report" not in path:
            assert after[path] == mtime, f"{path} was rewritten"
    assert os.path.exists(workflow.path(f"results/hashes/{new_vid}.tsv"))


def test_detector_free_mode_keeps_every_frame_without_torch(workflow, server):
    """filter.model: none keeps every extracted frame (no model, torch never imported in the
    filter job), hashes and deduplicates them, and writes a dataset without boxes."""
    urls = [f"{server}/alpha.mp4", f"{server}/gamma.mp4"]
    workflow.write_urls(urls)
    workflow.config["filter"] = {"model": "none"}
    workflow.run()
    summary = json.loads(workflow.path("results/summary.json").read_text())
    for url in urls:
        vid = video_id(url)
        frames = summary["videos"][vid]["frames"]
        assert frames > 0 and summary["videos"][vid]["filtered"] == frames
        log = workflow.path(f"logs/filter_frames/{vid}.log").read_text()
        assert "imported by this job: imagehash\n" in log, log  # no torch: no detector
    dataset = workflow.path("results/dataset")
    data = yaml.safe_load((dataset / "data.yaml").read_text())
    assert data["nc"] == 0 and not data["names"]
    images = list(dataset.glob("images/*/*.jpg"))
    assert len(images) == summary["totals"]["in_dataset"] > 0
    assert all(p.read_text() == "" for p in dataset.glob("labels/*/*.txt"))
    for split in ("train", "val"):
        coco = json.loads((dataset / "annotations" / f"instances_{split}.json").read_text())
        assert coco["categories"] == [] and coco["annotations"] == []

    # classes without a detector: one line, before any download
    other = new_workflow(workflow.root.parent / "classes")
    other.write_urls(urls)
    other.config["filter"] = {"model": None, "classes": ["square"]}
    proc = other.run(check=False)
    assert proc.returncode != 0 and "filter.classes needs a detector" in proc.stderr
    assert not other.path("results/videos").exists()


def test_caps_and_negatives(built):
    """dataset.max_per_video caps each video's images; dataset.negatives adds frames without a
    detection (from the filter's dropped frames, never near a kept frame), with empty labels."""
    workflow, urls = built
    dataset = workflow.path("results/dataset")
    with open(dataset / "manifest.csv") as handle:
        rows = list(csv.DictReader(handle))
    positives = [r for r in rows if int(r["n_boxes"]) > 0]
    negatives = [r for r in rows if int(r["n_boxes"]) == 0]
    per_video: dict[str, int] = {}
    for row in positives:
        per_video[row["video_id"]] = per_video.get(row["video_id"], 0) + 1
    assert per_video and max(per_video.values()) <= 2, per_video
    log = workflow.path("logs/build_dataset.log").read_text()
    assert re.search(r"caps: [1-9]\d* of \d+ images left out", log), log  # the cap did bind
    summary = json.loads(workflow.path("results/summary.json").read_text())
    assert len(negatives) == summary["dataset"]["negatives"] == len(positives)  # half the set
    for row in negatives:
        assert row["source"].startswith("results/frames/"), row
        label = dataset / "labels" / row["split"] / Path(row["image"]).with_suffix(".txt").name
        assert label.read_text() == ""
    assert {r["video_id"] for r in negatives} >= {video_id(urls[2])}  # blank.mp4
