"""The synthetic training data of the tiny detector, and the shipped model on synthetic videos."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from testkit import REPO

import framesift
from framesift.cli.synthetic import CIRCLE_RGB, SQUARE_RGB, Shape, VideoSpec, make_video
from framesift.core.config import settings_for
from framesift.core.media import ffmpeg_binary
from framesift.detection.detector import DetectOptions, Detector, precision

sys.path.insert(0, str(REPO / "tools"))  # the training script is a tool, not in the package
from train_detector import CLASS_NAMES, EMPTY_FRACTION, generate_dataset  # noqa: E402

MODEL = Path(framesift.__file__).parent / "models" / "shapes.pt"
CLASS_RGB = {0: SQUARE_RGB, 1: CIRCLE_RGB}
IMGSZ = 320  # the inference size the pipeline uses for this model on 640x360 frames
CONF = 0.4  # the confidence threshold models/README.md asks for (0.25 lets bar pieces through)
STEP = 5  # keep every 5th frame of the 10 fps videos: frame n (1-based) shows t = (n - 1) / 2

needs_ffmpeg = pytest.mark.skipif(
    shutil.which(ffmpeg_binary()) is None and not Path(ffmpeg_binary()).exists(),
    reason="ffmpeg not available",
)


def _near(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: float = 90.0) -> np.ndarray:
    """Mask of the pixels within ``tolerance`` (Euclidean RGB distance) of ``rgb``."""
    return np.sqrt(((pixels.astype(np.float64) - np.asarray(rgb)) ** 2).sum(axis=-1)) < tolerance


# --------------------------------------------------------------------------- (a) the generator


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes-data")
    generate_dataset(root, n_train=48, n_val=12, seed=3, testsrc2_frames=4)
    return root


@needs_ffmpeg
def test_dataset_layout_and_empty_fraction(dataset: Path) -> None:
    import yaml

    data = yaml.safe_load((dataset / "data.yaml").read_text())
    assert data["names"] == dict(enumerate(CLASS_NAMES))
    assert (dataset / data["train"]).is_dir() and (dataset / data["val"]).is_dir()
    for split, count in (("train", 48), ("val", 12)):
        images = sorted((dataset / "images" / split).glob("*.jpg"))
        labels = sorted((dataset / "labels" / split).glob("*.txt"))
        assert [p.stem for p in images] == [p.stem for p in labels] and len(images) == count
        empty = sum(1 for p in labels if not p.read_text().strip())
        # exactly EMPTY_FRACTION are drawn without objects; a failed placement may add a few
        assert round(count * EMPTY_FRACTION) <= empty <= round(count * EMPTY_FRACTION) + 2


@needs_ffmpeg
def test_labels_sit_exactly_on_the_drawn_shapes(dataset: Path) -> None:
    checked = 0
    for label in sorted((dataset / "labels").glob("*/*.txt")):
        image_path = dataset / "images" / label.parent.name / f"{label.stem}.jpg"
        pixels = np.asarray(Image.open(image_path).convert("RGB"))
        height, width = pixels.shape[:2]
        for line in label.read_text().splitlines():
            cls, cx, cy, w, h = line.split()
            rgb = CLASS_RGB[int(cls)]
            cx, w = float(cx) * width, float(w) * width
            cy, h = float(cy) * height, float(h) * height
            assert abs(w - h) < 0.01, "both shapes have square boxes"
            x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
            # the middle of the box is the object's colour (square and disc alike)
            inset = max(1.5, 0.2 * w)
            core = pixels[
                round(y1 + inset) : round(y2 - inset), round(x1 + inset) : round(x2 - inset)
            ]
            assert _near(core, rgb).mean() > 0.9, f"{label.name}: {line}"
            # tight: the box edges touch the shape (the 1-px-inset border of a square, the
            # edge midpoints of a disc) and 2 px outside the box it is mostly not that colour
            edge = np.concatenate(
                [
                    pixels[round(y1 + 1), round(cx - 1) : round(cx + 1) + 1],
                    pixels[round(y2 - 2), round(cx - 1) : round(cx + 1) + 1],
                    pixels[round(cy - 1) : round(cy + 1) + 1, round(x1 + 1)],
                    pixels[round(cy - 1) : round(cy + 1) + 1, round(x2 - 2)],
                ]
            )
            assert _near(edge, rgb, 120).mean() >= 0.5, f"{label.name}: {line} edge"
            ring = np.concatenate(
                [
                    pixels[max(0, round(y1) - 3), round(x1) : round(x2)],
                    pixels[min(height - 1, round(y2) + 2), round(x1) : round(x2)],
                    pixels[round(y1) : round(y2), max(0, round(x1) - 3)],
                    pixels[round(y1) : round(y2), min(width - 1, round(x2) + 2)],
                ]
            )
            assert _near(ring, rgb, 60).mean() < 0.5, f"{label.name}: {line} ring"
            checked += 1
    assert checked >= 40


@needs_ffmpeg
def test_generator_is_reproducible(tmp_path: Path, dataset: Path) -> None:
    generate_dataset(tmp_path, n_train=48, n_val=12, seed=3, testsrc2_frames=4)
    for label in sorted((dataset / "labels" / "val").glob("*.txt")):
        assert (tmp_path / "labels" / "val" / label.name).read_text() == label.read_text()


# --------------------------------------------------------------------------- (b) the model

VIDEOS = {
    "testsrc2-square": VideoSpec(
        background="testsrc2", shapes=(Shape("square", 130, 200, 80, 1.2, 2.8),)
    ),
    "testsrc2-circle-small": VideoSpec(
        background="testsrc2", shapes=(Shape("circle", 560, 250, 40, 0.7, 3.3),)
    ),
    "testsrc2-both": VideoSpec(
        background="testsrc2",
        shapes=(
            Shape("circle", 225, 150, 90, 0.0, 2.3),
            Shape("square", 450, 60, 50, 1.2, 2.8),  # at t=3 the red part of the band touches it
        ),
    ),
    "smptehdbars-both": VideoSpec(
        background="smptehdbars",
        shapes=(
            Shape("square", 160, 40, 45, 0.2, 2.8),
            Shape("circle", 400, 250, 100, 1.2, 3.3),
        ),
    ),
    "smptehdbars-square-large": VideoSpec(
        background="smptehdbars", shapes=(Shape("square", 20, 230, 120, 1.2, 2.8),)
    ),
    "flat-both": VideoSpec(
        background="flat",
        flat_color="0x406080",
        shapes=(
            Shape("square", 60, 100, 120, 0.7, 2.8),
            Shape("circle", 400, 280, 30, 1.2, 3.3),
        ),
    ),
    "flat-empty": VideoSpec(background="flat", flat_color="0x305030"),
}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    """The shipped checkpoint, loaded with ultralytics kept offline and its config in a tmp dir."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YOLO_OFFLINE", "1")
        patch.setenv("YOLO_AUTOINSTALL", "False")
        patch.setenv("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("yolo-config")))
        from ultralytics import YOLO

        yield YOLO(str(MODEL))


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_shipped_checkpoint_is_small_with_the_class_contract(model) -> None:
    assert MODEL.stat().st_size < 2_000_000
    assert model.names == {0: "square", 1: "circle"}


@needs_ffmpeg
@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_shipped_model_finds_the_shapes_in_video_frames(model, name: str, tmp_path: Path) -> None:
    spec = VIDEOS[name]
    video = make_video(tmp_path / f"{name}.mp4", spec)
    args = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-i", str(video)]
    # exact frames (t = 0, 0.5, ...) rather than fps=2, whose picks sit up to 0.2 s off the grid;
    # the shapes' start/end times stay clear of that grid
    args += ["-vf", f"select=not(mod(n\\,{STEP}))", "-fps_mode", "passthrough"]
    subprocess.run([*args, str(tmp_path / "f_%03d.jpg")], check=True)
    frames = sorted(tmp_path.glob("f_*.jpg"))
    assert len(frames) == spec.duration * spec.fps / STEP
    problems = []
    for frame in frames:
        seconds = (int(frame.stem.split("_")[1]) - 1) * STEP / spec.fps
        truth = [s for s in spec.shapes if s.visible_at(seconds)]
        pixels = np.asarray(Image.open(frame).convert("RGB"))
        for shape in truth:  # the frame timing assumption holds: the shape is in the frame
            rgb = SQUARE_RGB if shape.kind == "square" else CIRCLE_RGB
            x1, y1, x2, y2 = shape.box()
            centre = pixels[(y1 + y2) // 2 - 1 : (y1 + y2) // 2 + 2, (x1 + x2) // 2]
            assert _near(centre, rgb).all(), f"{name} {frame.name}: {shape} not drawn"
        result = model.predict(str(frame), imgsz=IMGSZ, conf=CONF, device="cpu", verbose=False)[0]
        found = list(zip(result.boxes.cls.tolist(), result.boxes.xyxy.tolist(), strict=True))
        unmatched = list(found)
        for shape in truth:
            cls = CLASS_NAMES.index(shape.kind)
            hits = [d for d in unmatched if int(d[0]) == cls and _iou(d[1], shape.box()) > 0.5]
            if hits:
                unmatched.remove(hits[0])
            else:
                problems.append(f"t={seconds}: missed {shape}")
        problems += [f"t={seconds}: spurious {CLASS_NAMES[int(c)]} at {b}" for c, b in unmatched]
    assert not problems, problems


class _Messages(logging.Handler):
    """Keeps the messages logged to it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_inference_logs_no_deprecation_warning(model) -> None:
    """The options framesift passes to predict are the installed ultralytics' current ones:
    8.4 deprecates ``half`` (warning on every call) for ``quantize`` (16: fp16), so nothing
    in a detector's (or the worker's) log says "deprecated"."""
    ultralytics_log = logging.getLogger("ultralytics")
    quiet = ultralytics_log.level  # the tests quiet it (YOLO_VERBOSE=False)
    ultralytics_log.setLevel(logging.WARNING)
    handler = _Messages()
    ultralytics_log.addHandler(handler)
    try:
        settings = settings_for({"filter": {"imgsz": IMGSZ, "conf": CONF, "device": "cpu"}})
        detector = Detector(model, DetectOptions.of(settings.filter))
        frame = np.zeros((90, 160, 3), dtype=np.uint8)
        assert detector.detect([frame, frame]) == [(160, 90, []), (160, 90, [])]
        model.predict([frame], device="cpu", imgsz=IMGSZ, verbose=False, **precision(True))
    finally:
        ultralytics_log.removeHandler(handler)
        ultralytics_log.setLevel(quiet)
    assert not [m for m in handler.messages if "deprecated" in m], handler.messages
    assert precision(True) == {"quantize": 16} and precision(False) == {"quantize": None}
