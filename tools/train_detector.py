"""Train the tiny shipped YOLO detector (``models/shapes.pt``) on synthetic images, on CPU.

Classes (a fixed contract, see :mod:`framesift.cli.synthetic`): ``0 = square``, a red filled square,
and ``1 = circle``, a blue filled disc. Training images mimic what the pipeline sees when it runs
the model at ``imgsz=320`` on 640x360 video frames: each sample is a 320x320 window of a 640x360
frame (ffmpeg ``testsrc2``/``smptehdbars`` frames passed through H.264, flat colours with noise,
or smooth random noise) with the shapes and distractors drawn at full resolution, downscaled by 2
to 160x160 and JPEG-compressed. A quarter of the images hold no labelled object.

Usage::

    python tools/train_detector.py --out src/framesift/models/shapes.pt
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFilter

from framesift.cli.synthetic import CIRCLE_RGB, SQUARE_RGB
from framesift.core.media import ffmpeg_binary

CLASS_NAMES: tuple[str, ...] = ("square", "circle")
CLASS_RGB: tuple[tuple[int, int, int], ...] = (SQUARE_RGB, CIRCLE_RGB)
FRAME_W, FRAME_H = 640, 360  # video frame size the pipeline feeds the model
WINDOW = 320  # square window of the full-resolution frame that becomes one training image
IMAGE_SIZE = 160  # training image side: WINDOW downscaled by 2, as imgsz=320 does to a frame
MIN_SIDE, MAX_SIDE = 16, 130  # object side in full-resolution pixels (5-35 % of 360, with margin)
EMPTY_FRACTION = 0.25
EDGE_MARGIN = 4  # full-resolution pixels kept free between an object and the window's edge
DISTRACTOR_RGB: tuple[tuple[int, int, int], ...] = (
    (20, 200, 40),  # green
    (240, 230, 30),  # yellow
    (245, 245, 245),  # white
    (30, 220, 220),  # cyan
    (220, 30, 220),  # magenta
    (128, 128, 128),  # grey
    (10, 10, 10),  # black
    (250, 140, 20),  # orange
)
TINY_SCALE = {"n": [0.33, 0.125, 256]}  # depth, width, max channels: ~0.35 M parameters


@dataclass(frozen=True)
class DrawnObject:
    """An object drawn into a training image: class id and pixel box (x1, y1, x2, y2)."""

    cls: int
    box: tuple[float, float, float, float]


# --------------------------------------------------------------------------- backgrounds


def render_backgrounds(workdir: Path, testsrc2_frames: int = 48) -> list[np.ndarray]:
    """Render 640x360 ``testsrc2`` frames (several times) and a ``smptehdbars`` frame with ffmpeg.

    The frames go through libx264 (crf 30, yuv420p) like the synthetic videos do, so colours and
    edges carry the same compression. Returns RGB uint8 arrays of shape (360, 640, 3): the
    ``testsrc2`` frames, then one ``smptehdbars`` frame (last).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    frames: list[np.ndarray] = []
    sources = {
        "testsrc2": (f"testsrc2=size={FRAME_W}x{FRAME_H}:rate=2:duration={testsrc2_frames / 2}"),
        "smptehdbars": f"smptehdbars=size={FRAME_W}x{FRAME_H}:rate=1:duration=1",
    }
    for name, source in sources.items():
        video = workdir / f"{name}.mp4"
        encode = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
        encode += ["-i", source, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "30"]
        encode += ["-preset", "veryfast", str(video)]
        subprocess.run(encode, check=True)
        decode = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-i", str(video)]
        decode += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        raw = subprocess.run(decode, check=True, capture_output=True).stdout
        frame_bytes = FRAME_W * FRAME_H * 3
        for start in range(0, len(raw) - frame_bytes + 1, frame_bytes):
            frame = np.frombuffer(raw[start : start + frame_bytes], dtype=np.uint8)
            frames.append(frame.reshape(FRAME_H, FRAME_W, 3).copy())
    return frames


def _flat_background(rng: np.random.Generator) -> np.ndarray:
    colour = rng.integers(0, 256, size=3)
    sigma = rng.uniform(2.0, 9.0)
    noise = rng.normal(0.0, sigma, size=(FRAME_H, FRAME_W, 3))
    return np.clip(colour + noise, 0, 255).astype(np.uint8)


def _smooth_noise_background(rng: np.random.Generator) -> np.ndarray:
    coarse = rng.integers(0, 256, size=(int(rng.integers(2, 7)), int(rng.integers(3, 10)), 3))
    image = Image.fromarray(coarse.astype(np.uint8)).resize((FRAME_W, FRAME_H), Image.BICUBIC)
    noise = rng.normal(0.0, rng.uniform(1.0, 6.0), size=(FRAME_H, FRAME_W, 3))
    return np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)


def _background(rng: np.random.Generator, rendered: list[np.ndarray]) -> np.ndarray:
    pick = rng.random()
    if pick < 0.4 and rendered:  # testsrc2 (all rendered frames but the last)
        return rendered[int(rng.integers(max(1, len(rendered) - 1)))].copy()
    if pick < 0.58 and rendered:  # smptehdbars (static: the last rendered frame)
        return rendered[-1].copy()
    if pick < 0.88:
        return _flat_background(rng)
    return _smooth_noise_background(rng)


# --------------------------------------------------------------------------- drawing


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], amount: int) -> tuple[int, ...]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _side(rng: np.random.Generator, low: int = MIN_SIDE, high: int = MAX_SIDE) -> int:
    return int(round(np.exp(rng.uniform(np.log(low), np.log(high)))))


def _overlaps(box: tuple[int, int, int, int], boxes: list[tuple[int, int, int, int]]) -> bool:
    margin = 6
    return any(
        box[0] < b[2] + margin
        and b[0] < box[2] + margin
        and box[1] < b[3] + margin
        and b[1] < box[3] + margin
        for b in boxes
    )


def _camouflaged(frame: np.ndarray, box: tuple[int, int, int, int], rgb: tuple[int, ...]) -> bool:
    """Whether over 20 % of the background under ``box`` is close to the object's colour."""
    patch = frame[box[1] : box[3], box[0] : box[2]].astype(np.int32)
    distance = np.sqrt(((patch - np.asarray(rgb)) ** 2).sum(axis=-1))
    return bool((distance < 110).mean() > 0.2)


def _place(
    rng: np.random.Generator,
    frame: np.ndarray,
    origin: tuple[int, int],
    size: tuple[int, int],
    taken: list[tuple[int, int, int, int]],
    rgb: tuple[int, ...],
) -> tuple[int, int, int, int] | None:
    """A free box of ``size`` (w, h) inside the window at ``origin``, or None after 30 tries."""
    width, height = size
    for _ in range(30):
        x = origin[0] + int(rng.integers(EDGE_MARGIN, WINDOW - width - EDGE_MARGIN + 1))
        y = origin[1] + int(rng.integers(EDGE_MARGIN, WINDOW - height - EDGE_MARGIN + 1))
        box = (x, y, x + width, y + height)
        if not _overlaps(box, taken) and not _camouflaged(frame, box, rgb):
            return box
    return None


def _draw(draw: ImageDraw.ImageDraw, kind: str, box: tuple[int, int, int, int], rgb) -> None:
    corners = (box[0], box[1], box[2] - 1, box[3] - 1)  # PIL boxes include the last pixel
    if kind == "disc":
        draw.ellipse(corners, fill=tuple(rgb))
    else:
        draw.rectangle(corners, fill=tuple(rgb))


def _distractor(rng: np.random.Generator) -> tuple[str, tuple[int, int], tuple[int, ...]]:
    """A shape that must not be detected: other colours, or red/blue with the wrong shape."""
    pick = rng.random()
    side = _side(rng)
    if pick < 0.55:
        colour = _jitter(rng, DISTRACTOR_RGB[int(rng.integers(len(DISTRACTOR_RGB)))], 15)
        kind = "disc" if rng.random() < 0.5 else "rect"
        if kind == "rect" and rng.random() < 0.4:
            return kind, (side, max(MIN_SIDE // 2, int(side * rng.uniform(0.3, 0.7)))), colour
        return kind, (side, side), colour
    if pick < 0.8:
        # a red or blue bar: the right colour but clearly not square
        colour = _jitter(rng, CLASS_RGB[int(rng.integers(2))], 10)
        long_side, short_side = side, max(6, int(side * rng.uniform(0.15, 0.5)))
        dims = (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)
        return "rect", dims, colour
    side = _side(rng, low=28)  # wrong shape for the colour: red disc or blue square
    if pick < 0.9:
        return "disc", (side, side), _jitter(rng, SQUARE_RGB, 10)
    return "rect", (side, side), _jitter(rng, CIRCLE_RGB, 10)


def _window_start(rng: np.random.Generator, frame_side: int) -> int:
    """Window offset; half the time flush with a frame edge, so edges keep their context."""
    if rng.random() < 0.6:
        return int(rng.choice([0, frame_side - WINDOW]))
    return int(rng.integers(0, frame_side - WINDOW + 1))


def make_sample(
    rng: np.random.Generator, rendered: list[np.ndarray], empty: bool
) -> tuple[Image.Image, list[DrawnObject]]:
    """One IMAGE_SIZE x IMAGE_SIZE training image (before JPEG) and its objects in its pixels."""
    frame = _background(rng, rendered)
    origin = (_window_start(rng, FRAME_W), _window_start(rng, FRAME_H))
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    taken: list[tuple[int, int, int, int]] = []
    objects: list[DrawnObject] = []
    scale = IMAGE_SIZE / WINDOW
    for _ in range(0 if empty else int(rng.choice([1, 2, 2, 3, 4]))):
        cls = int(rng.integers(2))
        rgb = _jitter(rng, CLASS_RGB[cls], 10)
        side = _side(rng)
        box = _place(rng, frame, origin, (side, side), taken, rgb)
        if box is None:
            continue
        taken.append(box)
        _draw(draw, "rect" if cls == 0 else "disc", box, rgb)
        x1, y1 = (box[0] - origin[0]) * scale, (box[1] - origin[1]) * scale
        x2, y2 = (box[2] - origin[0]) * scale, (box[3] - origin[1]) * scale
        objects.append(DrawnObject(cls, (x1, y1, x2, y2)))
    for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
        kind, dims, rgb = _distractor(rng)
        box = _place(rng, frame, origin, dims, taken, rgb)
        if box is not None:
            taken.append(box)
            _draw(draw, kind, box, rgb)
    window = image.crop((origin[0], origin[1], origin[0] + WINDOW, origin[1] + WINDOW))
    window = window.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    if rng.random() < 0.3:
        window = window.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 0.9))))
    return window, objects


def yolo_label_lines(objects: list[DrawnObject], size: int = IMAGE_SIZE) -> list[str]:
    """YOLO label lines (class cx cy w h, normalised) for objects in a ``size``-pixel image."""
    lines = []
    for obj in objects:
        x1, y1, x2, y2 = obj.box
        cx, cy = (x1 + x2) / 2 / size, (y1 + y2) / 2 / size
        w, h = (x2 - x1) / size, (y2 - y1) / size
        lines.append(f"{obj.cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


def generate_dataset(
    root: Path, n_train: int = 500, n_val: int = 60, seed: int = 0, testsrc2_frames: int = 48
) -> Path:
    """Write ``images/{train,val}``, ``labels/{train,val}`` and ``data.yaml`` under ``root``.

    Images are JPEGs of random quality (35-95); ``EMPTY_FRACTION`` of each split has no labelled
    object. Deterministic for a given ``seed``. Returns the path of ``data.yaml``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    rendered = render_backgrounds(root / "_backgrounds", testsrc2_frames)
    for split, count in (("train", n_train), ("val", n_val)):
        images, labels = root / "images" / split, root / "labels" / split
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        empties = set(rng.permutation(count)[: int(round(count * EMPTY_FRACTION))].tolist())
        for index in range(count):
            image, objects = make_sample(rng, rendered, empty=index in empties)
            stem = f"{split}_{index:05d}"
            image.save(images / f"{stem}.jpg", quality=int(rng.integers(35, 96)))
            text = "\n".join(yolo_label_lines(objects))
            (labels / f"{stem}.txt").write_text(text + ("\n" if text else ""))
    shutil.rmtree(root / "_backgrounds", ignore_errors=True)
    data = {
        "path": str(root.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(CLASS_NAMES)),
    }
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return data_yaml


# --------------------------------------------------------------------------- training


def prepare_ultralytics_env(config_dir: Path) -> None:
    """Offline settings for ultralytics; call before importing it. Provides its Arial.ttf font."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    font_dir = Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    dejavu = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if dejavu.exists() and not (font_dir / "Arial.ttf").exists():
        shutil.copy(dejavu, font_dir / "Arial.ttf")


def write_model_yaml(directory: Path, nc: int = len(CLASS_NAMES)) -> Path:
    """A YOLOv8 architecture yaml with ``nc`` classes and the tiny width scale ``TINY_SCALE``."""
    import ultralytics

    base = Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8.yaml"
    spec = yaml.safe_load(base.read_text())
    spec["nc"] = nc
    spec["scales"] = TINY_SCALE
    path = Path(directory) / "yolov8n-shapes.yaml"  # the "n" selects the only scale
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def train(
    data_yaml: Path,
    out: Path,
    workdir: Path,
    epochs: int = 40,
    imgsz: int = IMAGE_SIZE,
    batch: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """Train the tiny model on CPU, copy ``best.pt`` to ``out``; returns val metrics of best.pt."""
    prepare_ultralytics_env(Path(workdir) / "config")
    from ultralytics import YOLO

    model = YOLO(str(write_model_yaml(Path(workdir))))
    model.train(
        data=str(data_yaml),
        imgsz=imgsz,
        epochs=epochs,
        batch=batch,
        workers=0,
        device="cpu",
        seed=seed,
        deterministic=True,
        plots=False,
        project=str(Path(workdir) / "runs"),
        name="shapes",
        exist_ok=True,
        mosaic=0.0,  # mosaic cuts shapes and bars at tile edges: keep whole-frame context
        scale=0.25,
        translate=0.05,
        hsv_s=0.3,  # the class colours are fixed: milder colour jitter than the defaults
        hsv_v=0.3,
        verbose=False,
    )
    best = Path(model.trainer.best)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(best, out)
    trained = YOLO(str(out))
    if trained.names != dict(enumerate(CLASS_NAMES)):
        raise RuntimeError(f"unexpected class names in {out}: {trained.names}")
    metrics = trained.val(
        data=str(data_yaml),
        imgsz=imgsz,
        batch=batch,
        workers=0,
        device="cpu",
        plots=False,
        project=str(Path(workdir) / "runs"),
        name="val",
        exist_ok=True,
        verbose=False,
    )
    return {"mAP50": float(metrics.box.map50), "mAP50-95": float(metrics.box.map)}


def main(argv: list[str] | None = None) -> int:
    """CLI: generate the synthetic data set in a temporary directory, train, write ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("src/framesift/models/shapes.pt"))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--n-train", type=int, default=500)
    parser.add_argument("--n-val", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep data and runs here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="framesift-train-") as tmp:
        workdir = args.workdir or Path(tmp)
        prepare_ultralytics_env(workdir / "config")
        started = time.monotonic()
        data_yaml = generate_dataset(workdir / "data", args.n_train, args.n_val, args.seed)
        generated = time.monotonic()
        metrics = train(data_yaml, args.out, workdir, epochs=args.epochs, seed=args.seed)
        finished = time.monotonic()
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): "
        f"data {generated - started:.0f} s, training {finished - generated:.0f} s, "
        f"val mAP50 {metrics['mAP50']:.3f}, mAP50-95 {metrics['mAP50-95']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
