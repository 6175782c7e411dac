"""The filter stage on real frames with the shipped tiny detector (real ultralytics inference)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from framesift.cli.synthetic import Shape, VideoSpec, make_video
from framesift.core.config import settings_for
from framesift.detection.detector import (
    DetectOptions,
    DetectorFault,
    LocalDetector,
    ModelError,
    labelling_settings,
    load_model,
    model_roles,
    resolve_classes,
)
from framesift.stages.filter import DETECTIONS, filter_frames
from framesift.stages.frames import extract_frames

SQUARE = Shape("square", 300, 100, 80, 0.8, 2.2)
CIRCLE = Shape("circle", 80, 200, 90, 2.3, 3.7)


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames at 2 fps of a 4 s clip: square visible 0.8-2.2 s, circle 2.3-3.7 s."""
    root = tmp_path_factory.mktemp("filter")
    video = make_video(
        root / "clip.mp4", VideoSpec(duration=4.0, background="testsrc2", shapes=(SQUARE, CIRCLE))
    )
    out = root / "frames"
    extract_frames(video, "clip", out, settings_for({"frames": {"mode": "fps", "fps": 2.0}}).frames)
    return out


@pytest.fixture(scope="module")
def model(shapes_model: Path):
    return load_model(str(shapes_model))


def _kept_times(out: Path) -> list[int]:
    return sorted(int(p.stem.rsplit("_", 1)[1]) for p in out.glob("*.jpg"))


def _options(**detection) -> DetectOptions:
    """Detection options of a ``filter`` section (schema defaults for the rest)."""
    flt = {"imgsz": 320, "conf": 0.4, "device": "cpu", "batch": 3, **detection}
    return DetectOptions.of(settings_for({"filter": flt}).filter)


def test_keeps_exactly_the_frames_with_the_object(frames_dir, model, tmp_path):
    out = tmp_path / "kept"
    summary = filter_frames(frames_dir, out, LocalDetector(model, _options()), "shapes")
    assert summary.frames_in == 8
    assert _kept_times(out) == [1000, 1500, 2000, 2500, 3000, 3500]
    assert summary.kept == 6
    data = json.loads((out / DETECTIONS).read_text())
    by_time = {row["timestamp_ms"]: row for row in data["frames"]}
    for ms, shape in [(1500, SQUARE), (3000, CIRCLE)]:
        (box,) = by_time[ms]["boxes"]
        assert box["class_name"] == shape.kind
        assert box["xyxy"] == pytest.approx(list(shape.box()), abs=8)
    # kept frames are hard links of the extracted ones (no copy)
    kept = next(out.glob("*.jpg"))
    assert os.stat(kept).st_ino == os.stat(frames_dir / kept.name).st_ino


def test_class_selection(frames_dir, model, tmp_path):
    detector = LocalDetector(model, _options(classes=["circle"]))
    summary = filter_frames(frames_dir, tmp_path / "c", detector, "shapes")
    assert _kept_times(tmp_path / "c") == [2500, 3000, 3500]
    assert summary.kept == 3


def test_min_box_area_drops_small_boxes(frames_dir, model, tmp_path):
    # the square covers 80*80/(640*360) = 2.8 % of the frame, the circle 3.5 %
    detector = LocalDetector(model, _options(min_box_area=0.031))
    filter_frames(frames_dir, tmp_path / "a", detector, "shapes")
    assert _kept_times(tmp_path / "a") == [2500, 3000, 3500]


def test_video_without_the_object_gives_empty_folder(tmp_path, model):
    video = make_video(tmp_path / "blank.mp4", VideoSpec(duration=2.0, background="smptehdbars"))
    frames = tmp_path / "frames"
    extract_frames(video, "blank", frames, settings_for({"frames": {"fps": 2.0}}).frames)
    summary = filter_frames(frames, tmp_path / "kept", LocalDetector(model, _options()), "shapes")
    assert summary.kept == 0 and summary.frames_in == 4
    assert list((tmp_path / "kept").iterdir()) == [tmp_path / "kept" / DETECTIONS]


def test_unreadable_frame_is_skipped_not_fatal(frames_dir, model, tmp_path):
    broken = tmp_path / "frames"
    broken.mkdir()
    for item in frames_dir.iterdir():
        os.link(item, broken / item.name)
    victim = broken / "clip_000001500.jpg"
    victim.unlink()
    victim.write_bytes(b"not a jpeg")
    summary = filter_frames(broken, tmp_path / "kept", LocalDetector(model, _options()), "shapes")
    assert summary.unreadable == ["clip_000001500.jpg"]
    assert 1500 not in _kept_times(tmp_path / "kept")
    assert 1000 in _kept_times(tmp_path / "kept")


def test_unknown_class_lists_valid_names(model):
    with pytest.raises(ModelError, match="unknown class.*dog.*this model knows: square, circle"):
        resolve_classes({0: "square", 1: "circle"}, ["dog"])


def test_missing_model_offline_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as caught:
        load_model("no-such-model-xyz.pt")
    message = str(caught.value)
    assert "\n" not in message and "set filter.model to a local .pt path" in message
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "missing" / "model.pt"))


def test_a_failing_detector_raises_and_publishes_nothing(frames_dir, model, tmp_path):
    """A device that is not there: every batch fails. That is a DetectorFault (the job is
    transient), never frames recorded as unreadable or "no frame matched"."""
    detector = LocalDetector(model, _options(device="cuda:7"))
    with pytest.raises(DetectorFault, match="the detector failed"):
        filter_frames(frames_dir, tmp_path / "kept", detector, "shapes")
    assert list(tmp_path.iterdir()) == []  # no result, no staging folder left


FILTER = {"model": "m.pt", "conf": 0.4, "imgsz": 320, "classes": ["square"], "device": "cpu"}


@pytest.mark.parametrize(
    ("detect", "reuse", "conf", "imgsz"),
    [
        ({"model": None, "conf": None, "imgsz": None}, True, 0.4, 320),
        ({"model": "m.pt", "conf": None, "imgsz": None}, True, 0.4, 320),
        ({"model": None, "conf": 0.6, "imgsz": None}, False, 0.6, 320),
        ({"model": None, "conf": None, "imgsz": 640}, False, 0.4, 640),
        ({"model": "other.pt", "conf": None, "imgsz": None}, False, 0.4, 320),
    ],
    ids=["defaults", "same-model", "conf", "imgsz", "other-model"],
)
def test_detect_settings_apply_without_a_separate_model(detect, reuse, conf, imgsz):
    settings = settings_for({"filter": FILTER, "detect": detect})
    labelling = labelling_settings(settings.filter, settings.detect)
    assert labelling.reuse_filter is reuse
    assert (labelling.detection.conf, labelling.detection.imgsz) == (conf, imgsz)
    assert labelling.detection.model == (detect["model"] or "m.pt")
    assert labelling.detection.classes == ("square",) and labelling.detection.device == "cpu"
    separate = detect["model"] not in (None, "m.pt")
    assert model_roles(settings) == {
        "filter": settings.filter,
        **({"detect": labelling.detection} if separate else {}),
    }


def test_labelling_params_keep_their_keys_and_order():
    """The params dict (rules/common.smk: detect_settings) is Snakemake's rerun trigger: the
    same repr as before settings were typed, so an upgrade reruns nothing."""
    settings = settings_for({"filter": FILTER, "detect": {"conf": 0.6}})
    labelling = labelling_settings(settings.filter, settings.detect)
    params = labelling.as_params()
    assert repr(params) == repr(
        {
            "model": "m.pt",
            "conf": 0.6,
            "imgsz": 320,
            "classes": ["square"],
            "min_box_area": 0.0,
            "batch": 16,
            "device": "cpu",
            "half": True,
            "reuse_filter": False,
        }
    )


def test_no_detector_means_no_model_role():
    assert model_roles(settings_for({"filter": {"model": "none"}})) == {}
    only_labels = settings_for({"filter": {"model": "none"}, "detect": {"model": "m.pt"}})
    assert set(model_roles(only_labels)) == {"detect"}
