"""Tests for framesift.dataset.writer: video-level split and the YOLO/COCO dataset writer."""

from __future__ import annotations

import csv
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw
from pycocotools.coco import COCO

from framesift.dataset import writer as ds
from framesift.dataset.writer import Box, DatasetImage, split_by_video, write_dataset
from framesift.report.markdown import render_markdown

CLASSES = ["square", "circle"]
W, H = 64, 48
SQUARE = (8.0, 8.0, 24.0, 24.0)  # 16x16 red square drawn into every frame


# --------------------------------------------------------------------------- helpers


def _frame(path: Path) -> Path:
    """Write a small JPEG with a red square at SQUARE."""
    img = Image.new("RGB", (W, H), (90, 90, 90))
    x1, y1, x2, y2 = SQUARE
    ImageDraw.Draw(img).rectangle((x1, y1, x2 - 1, y2 - 1), fill=(230, 20, 20))
    img.save(path, quality=90)
    return path


def _image(frames: Path, vid: str, ts: int, boxes: tuple[Box, ...] | None = None) -> DatasetImage:
    if boxes is None:
        boxes = (Box(0, "square", 0.9, SQUARE),)
    src = _frame(frames / f"{vid}-{ts}.jpg")
    return DatasetImage(src, vid, f"http://example.test/{vid}", ts, W, H, boxes)


def _images(frames: Path, n_videos: int = 4, per_video: int = 2) -> list[DatasetImage]:
    return [_image(frames, f"vid{v}", t * 500) for v in range(n_videos) for t in range(per_video)]


def _manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    d = tmp_path / "frames"
    d.mkdir()
    return d


# --------------------------------------------------------------------------- split_by_video


def test_split_is_deterministic_and_seeded() -> None:
    ids = [f"video-{i}" for i in range(200)]
    a = split_by_video(ids, 0.3, seed=1)
    assert a == split_by_video(reversed(ids), 0.3, seed=1)
    assert set(a) == set(ids) and set(a.values()) == {"train", "val"}
    assert a != split_by_video(ids, 0.3, seed=2)


def test_split_is_stable_when_adding_videos() -> None:
    base = [f"yt-{i:03d}" for i in range(50)]
    before = split_by_video(base, 0.2)
    after = split_by_video(base + [f"new-{i:03d}" for i in range(50)], 0.2)
    assert 0 < list(before.values()).count("val") < 50  # guarantee rule not involved
    assert {v: after[v] for v in base} == before


def test_split_fraction_roughly_respected() -> None:
    ids = [f"id{i}" for i in range(1000)]
    for frac in (0.1, 0.2, 0.5):
        n_val = list(split_by_video(ids, frac).values()).count("val")
        assert abs(n_val / 1000 - frac) < 0.05


def test_split_edge_cases() -> None:
    assert split_by_video([], 0.2) == {}
    for frac in (0.0, 0.5, 1.0):
        assert split_by_video(["only"], frac) == {"only": "train"}
    many = [f"v{i}" for i in range(20)]
    assert set(split_by_video(many, 0.0).values()) == {"train"}
    all_val = split_by_video(many, 1.0)
    assert list(all_val.values()).count("train") == 1
    assert split_by_video(["a", "a", "b"], 0.0) == {"a": "train", "b": "train"}
    with pytest.raises(ValueError):
        split_by_video(many, 1.5)
    with pytest.raises(ValueError):
        split_by_video(many, -0.1)


def test_split_guarantee_rule_is_documented_choice() -> None:
    ids = ["alpha", "beta", "gamma"]
    scores = {v: ds._score(v, 0) for v in ids}
    tiny = split_by_video(ids, 1e-9)  # nothing lands in val naturally
    assert [v for v, s in tiny.items() if s == "val"] == [min(ids, key=scores.get)]
    full = split_by_video(ids, 1.0)  # everything lands in val naturally
    assert [v for v, s in full.items() if s == "train"] == [max(ids, key=scores.get)]


# --------------------------------------------------------------------------- write_dataset


def test_labels_are_exact_and_every_image_has_one(tmp_path: Path, frames: Path) -> None:
    boxes = (
        Box(0, "square", 0.9, SQUARE),
        Box(1, "circle", 0.8, (-10.0, 40.0, 20.0, 60.0)),  # clipped to (0, 40, 20, 48)
        Box(1, "circle", 0.7, (100.0, 0.0, 120.0, 10.0)),  # fully outside: dropped
    )
    images = [_image(frames, "a", 0, boxes), _image(frames, "a", 1000, ())]
    out = tmp_path / "ds"
    summary = write_dataset(images, CLASSES, out, val_fraction=0.0)

    lines = (out / "labels/train/a_000000000.txt").read_text().splitlines()
    assert lines == [
        "0 0.250000 0.333333 0.250000 0.333333",
        "1 0.156250 0.916667 0.312500 0.166667",
    ]
    assert (out / "labels/train/a_000001000.txt").read_text() == ""
    for split in ("train", "val"):
        imgs = sorted(p.stem for p in (out / "images" / split).iterdir())
        lbls = sorted(p.stem for p in (out / "labels" / split).iterdir())
        assert imgs == lbls
    assert summary["splits"]["train"] == {"images": 2, "boxes": 2, "videos": 1}


def test_images_are_hard_links(tmp_path: Path, frames: Path) -> None:
    images = _images(frames, n_videos=2)
    out = tmp_path / "ds"
    write_dataset(images, CLASSES, out)
    for row in _manifest(out):
        dst, src = out / row["image"], Path(row["source"])
        assert dst.stat().st_ino == src.stat().st_ino


def test_copy_fallback_when_linking_fails(
    tmp_path: Path, frames: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(ds.os, "link", no_link)
    images = _images(frames, n_videos=1, per_video=1)
    out = tmp_path / "ds"
    write_dataset(images, CLASSES, out)
    dst = out / "images/train" / images[0].name
    assert dst.read_bytes() == images[0].source.read_bytes()
    assert dst.stat().st_ino != images[0].source.stat().st_ino


def test_manifest_and_split_by_video(tmp_path: Path, frames: Path) -> None:
    images = _images(frames, n_videos=6, per_video=3)
    out = tmp_path / "ds"
    summary = write_dataset(images, CLASSES, out, val_fraction=0.5, seed=3)
    rows = _manifest(out)
    assert list(rows[0]) == list(ds.MANIFEST_FIELDS)
    assert len(rows) == len(images)
    sides: dict[str, set[str]] = {}
    for row in rows:
        sides.setdefault(row["video_id"], set()).add(row["split"])
        assert (out / row["image"]).is_file()
        assert (
            row["image"]
            == f"images/{row['split']}/{row['video_id']}_{int(row['timestamp_ms']):09d}.jpg"
        )
        assert row["url"] == f"http://example.test/{row['video_id']}"
        assert row["n_boxes"] == "1"
    assert all(len(s) == 1 for s in sides.values())  # no video on both sides
    expected = split_by_video([f"vid{v}" for v in range(6)], 0.5, seed=3)
    assert {v: s.pop() for v, s in sides.items()} == expected
    splits = summary["splits"]
    assert splits["train"]["images"] + splits["val"]["images"] == 18
    assert splits["val"]["videos"] == list(expected.values()).count("val") > 0
    assert summary["classes"] == CLASSES and summary["val_is_train"] is False
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data == {
        "train": "images/train",
        "val": "images/val",
        "nc": 2,
        "names": {0: "square", 1: "circle"},
    }


def test_coco_json_loads_in_pycocotools(tmp_path: Path, frames: Path) -> None:
    boxes = (Box(0, "square", 0.9, SQUARE), Box(1, "circle", 0.5, (30.0, 10.0, 50.0, 40.0)))
    images = [_image(frames, "a", 0, boxes), _image(frames, "a", 40, ())]
    out = tmp_path / "ds"
    write_dataset(images, CLASSES, out, val_fraction=0.0)

    coco = COCO(str(out / "annotations/instances_train.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == CLASSES
    assert coco.getCatIds() == [1, 2]  # category_id = class_id + 1
    (img,) = coco.loadImgs(coco.getImgIds(imgIds=[1]))
    assert (img["file_name"], img["width"], img["height"]) == ("a_000000000.jpg", W, H)
    assert (out / "images/train" / img["file_name"]).is_file()
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
    assert [(a["category_id"], a["bbox"]) for a in anns] == [
        (1, [8.0, 8.0, 16.0, 16.0]),
        (2, [30.0, 10.0, 20.0, 30.0]),
    ]
    assert [a["area"] for a in anns] == [256.0, 600.0] and {a["iscrowd"] for a in anns} == {0}
    assert coco.getAnnIds(imgIds=[2]) == []

    empty = COCO(str(out / "annotations/instances_val.json"))  # split with nothing in it
    assert empty.getAnnIds() == [] and empty.getImgIds() == [] and empty.getCatIds() == [1, 2]


def test_coco_masks_match_boxes(tmp_path: Path, frames: Path) -> None:
    """annToMask works on every annotation of both splits: mask = box, pixel count ~ area."""
    boxes = (
        Box(0, "square", 0.9, SQUARE),
        Box(1, "circle", 0.6, (30.5, 10.25, 50.75, 40.5)),  # fractional corners
        Box(1, "circle", 0.4, (-10.0, 40.0, 20.0, 60.0)),  # clipped to (0, 40, 20, 48)
    )
    images = [_image(frames, vid, ts, boxes) for vid in ("a", "b") for ts in (0, 500)]
    out = tmp_path / "ds"
    summary = write_dataset(images, CLASSES, out, val_fraction=0.5)
    assert summary["splits"]["train"]["images"] == summary["splits"]["val"]["images"] == 2

    n_checked = 0
    for split in ("train", "val"):
        coco = COCO(str(out / f"annotations/instances_{split}.json"))
        anns = coco.loadAnns(coco.getAnnIds())
        assert len(anns) == 2 * len(boxes)
        for ann in anns:
            x, y, w, h = ann["bbox"]
            assert ann["iscrowd"] == 0 and ann["area"] == pytest.approx(w * h)
            assert ann["segmentation"] == [[x, y, x + w, y, x + w, y + h, x, y + h]]
            mask = coco.annToMask(ann)
            img = coco.loadImgs(ann["image_id"])[0]
            assert mask.shape == (img["height"], img["width"])
            assert abs(int(mask.sum()) - ann["area"]) <= w + h + 1  # at most a border row/column
            ys, xs = np.nonzero(mask)
            assert abs(xs.min() - x) <= 1 and abs(xs.max() + 1 - (x + w)) <= 1
            assert abs(ys.min() - y) <= 1 and abs(ys.max() + 1 - (y + h)) <= 1
            n_checked += 1
    assert n_checked == 4 * len(boxes)
    square = COCO(str(out / "annotations/instances_train.json")).loadAnns(1)[0]
    assert square["bbox"] == [8.0, 8.0, 16.0, 16.0]
    assert int(COCO(str(out / "annotations/instances_train.json")).annToMask(square).sum()) == 256


# --------------------------------------------------------------------------- split warning


def _imbalanced(frames: Path, seed: int) -> tuple[list[DatasetImage], dict[str, str]]:
    """5 videos: every val video has 10 images, every train video 1."""
    ids = [f"clip{v}" for v in range(5)]
    sides = split_by_video(ids, 0.2, seed)
    images = [
        _image(frames, vid, t * 100) for vid in ids for t in range(10 if sides[vid] == "val" else 1)
    ]
    return images, sides


def test_imbalanced_split_warns(tmp_path: Path, frames: Path) -> None:
    images, sides = _imbalanced(frames, seed=0)
    summary = write_dataset(images, CLASSES, tmp_path / "ds", val_fraction=0.2, seed=0)
    n_val_videos = list(sides.values()).count("val")
    n_val = 10 * n_val_videos
    assert 1 <= n_val_videos <= 4  # both sides non-empty by split_by_video's guarantee
    splits = summary["splits"]
    assert splits["val"]["images"] == n_val and splits["val"]["videos"] == n_val_videos
    assert splits["train"]["images"] == len(images) - n_val
    assert splits["train"]["videos"] == 5 - n_val_videos
    pct = round(100 * n_val / len(images))
    assert summary["warning"] == (
        f"val holds {n_val} of {len(images)} images ({pct}%) from {n_val_videos} of 5 videos,"
        " far from dataset.val_fraction 0.2: the split is by video; add videos or change"
        " dataset.seed"
    )


def test_split_warning_thresholds() -> None:
    warn = ds.split_warning
    assert warn(13, 14, 1, 5, 0.2) == (
        "val holds 13 of 14 images (93%) from 1 of 5 videos, far from dataset.val_fraction 0.2:"
        " the split is by video; add videos or change dataset.seed"
    )
    assert warn(6, 20, 2, 10, 0.2) is None  # 0.30: off by 0.10 <= 0.15
    assert warn(8, 20, 2, 10, 0.2) is not None  # 0.40
    assert warn(0, 20, 0, 10, 0.2) is not None  # val empty
    assert warn(3, 20, 1, 10, 0.5) is not None  # 0.15 vs 0.5: off by more than 0.25
    assert warn(6, 20, 1, 10, 0.5) is None  # 0.30 vs 0.5
    assert warn(0, 20, 0, 10, 0.0) is None  # nothing wanted in val
    assert warn(17, 20, 1, 2, 1.0) is None  # train keeps one video by design: 0.85 is fine
    assert warn(3, 20, 1, 2, 1.0) is not None  # 0.15 vs 1.0
    assert warn(0, 0, 0, 0, 0.2) is None  # no images at all
    single = warn(0, 6, 0, 1, 0.2)
    assert single is not None and "only one, so val = train" in single
    assert warn(0, 6, 0, 1, 0.0) is None


def test_balanced_split_has_no_warning(tmp_path: Path, frames: Path) -> None:
    # 4 equal videos at 0.5: val holds 1..3 of them (25%..75%), within max(0.15, 0.25) of 0.5.
    for seed in range(3):
        summary = write_dataset(
            _images(frames, n_videos=4), CLASSES, tmp_path / "ds", val_fraction=0.5, seed=seed
        )
        assert summary["warning"] is None, seed
        assert summary["splits"]["val"]["images"] == 2 * summary["splits"]["val"]["videos"]
    no_val = write_dataset(_images(frames, n_videos=3), CLASSES, tmp_path / "ds", val_fraction=0)
    assert no_val["warning"] is None and no_val["val_is_train"] is True


def _report_summary(dataset: dict) -> dict:
    totals = dict.fromkeys(
        ("videos", "frames", "filtered", "after_collapse", "in_dataset", "clusters"), 0
    )
    return {
        "totals": totals,
        "dataset": dataset,
        "labels": {"reused": 0, "computed": 0},
        "videos": {},
        "failures": [],
        "skipped_url_lines": [],
    }


def test_report_shows_split_warning_under_table(tmp_path: Path, frames: Path) -> None:
    images, _ = _imbalanced(frames, seed=1)
    summary = write_dataset(images, CLASSES, tmp_path / "ds", val_fraction=0.2, seed=1)
    assert summary["warning"]
    lines = render_markdown(_report_summary(summary)).splitlines()
    val_row = next(i for i, line in enumerate(lines) if line.startswith("| val |"))
    assert lines[val_row + 1 : val_row + 3] == ["", f"**Warning:** {summary['warning']}"]

    balanced = write_dataset(_images(frames, n_videos=4), CLASSES, tmp_path / "ds", 0.5)
    assert "Warning" not in render_markdown(_report_summary(balanced))
    legacy = {k: v for k, v in balanced.items() if k != "warning"}  # summary.json from before
    assert "Warning" not in render_markdown(_report_summary(legacy))


def test_atomic_replace(tmp_path: Path, frames: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out" / "ds"
    write_dataset(_images(frames, n_videos=3), CLASSES, out)
    (out / "stale.txt").write_text("old")
    write_dataset(_images(frames, n_videos=2), CLASSES, out)
    assert not (out / "stale.txt").exists()
    assert len(_manifest(out)) == 4
    assert sorted(p.name for p in out.parent.iterdir()) == ["ds"]  # no temp / old dirs left

    def boom(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ds, "_write_manifest", boom)
    with pytest.raises(RuntimeError):
        write_dataset(_images(frames, n_videos=1), CLASSES, out)
    assert len(_manifest(out)) == 4  # old dataset untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["ds"]


def test_single_video_val_is_train(tmp_path: Path, frames: Path) -> None:
    out = tmp_path / "ds"
    summary = write_dataset(_images(frames, n_videos=1), CLASSES, out, val_fraction=0.5)
    assert summary["val_is_train"] is True
    assert summary["splits"]["val"] == {"images": 0, "boxes": 0, "videos": 0}
    assert summary["warning"] is not None and "0 of 2 images" in summary["warning"]
    assert yaml.safe_load((out / "data.yaml").read_text())["val"] == "images/train"


def test_empty_images_write_valid_layout(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    summary = write_dataset([], CLASSES, out)
    for sub in ("images/train", "images/val", "labels/train", "labels/val"):
        assert (out / sub).is_dir()
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "square", 1: "circle"} and data["nc"] == 2
    assert summary["val_is_train"] is True and summary["warning"] is None
    assert COCO(str(out / "annotations/instances_train.json")).getImgIds() == []
    assert _manifest(out) == []


def test_invalid_inputs_raise(tmp_path: Path, frames: Path) -> None:
    out = tmp_path / "ds"
    dup = [_image(frames, "a", 5), _image(frames, "a", 5)]
    with pytest.raises(ValueError, match="duplicate"):
        write_dataset(dup, CLASSES, out)
    with pytest.raises(ValueError, match="class_id"):
        write_dataset([_image(frames, "a", 0, (Box(7, "x", 1.0, SQUARE),))], CLASSES, out)
    with pytest.raises(ValueError, match="filesystem-safe"):
        write_dataset([replace(_image(frames, "a", 0), video_id="a/b")], CLASSES, out)
    assert not out.exists()


# --------------------------------------------------------------------------- ultralytics


@pytest.fixture
def offline_ultralytics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline Ultralytics config dir with a local Arial.ttf, so nothing tries to download."""
    cfg = tmp_path / "yolo-config"
    (cfg / "Ultralytics").mkdir(parents=True)
    shutil.copy("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", cfg / "Ultralytics/Arial.ttf")
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_AUTOINSTALL", "False")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(cfg))
    import ultralytics.utils.checks as checks  # config dir is fixed at first import: patch it too

    monkeypatch.setattr(checks, "USER_CONFIG_DIR", cfg / "Ultralytics")
    return cfg


@pytest.mark.usefixtures("offline_ultralytics")
def test_data_yaml_resolves_from_any_cwd_and_after_moving(
    tmp_path: Path, frames: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ultralytics.data.utils import check_det_dataset

    write_dataset(_images(frames, n_videos=4), CLASSES, tmp_path / "ds", val_fraction=0.5)
    moved = tmp_path / "elsewhere" / "moved-ds"
    moved.parent.mkdir()
    os.rename(tmp_path / "ds", moved)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for arg in (str(moved / "data.yaml"), os.path.relpath(moved / "data.yaml")):
        data = check_det_dataset(arg)
        assert Path(data["train"]) == (moved / "images/train").resolve()
        assert Path(data["val"]) == (moved / "images/val").resolve()
        assert data["names"] == {0: "square", 1: "circle"} and data["nc"] == 2


@pytest.mark.usefixtures("offline_ultralytics")
def test_yolo_val_smoke_run(tmp_path: Path, frames: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ultralytics import YOLO

    out = tmp_path / "ds"
    write_dataset(_images(frames, n_videos=3), CLASSES, out, val_fraction=0.5)
    monkeypatch.chdir(tmp_path / "frames")
    metrics = YOLO("yolov8n.yaml").val(  # random weights: only proves the dataset loads
        data=str(out / "data.yaml"),
        imgsz=64,
        batch=2,
        device="cpu",
        plots=False,
        verbose=False,
        project=str(tmp_path / "runs"),
        name="val",
    )
    n_val = sum(1 for r in _manifest(out) if r["split"] == "val")
    assert n_val > 0 and metrics.box.map50 >= 0.0
    assert (out / "labels/val.cache").is_file()  # ultralytics scanned our labels
