"""YOLO detection: resolve and load a model once, stream frames through it in batches.

Used by the filter stage (keep frames with a wanted class) and by the aggregate's labelling when
the labelling model differs from the filter model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from framesift.core.settings import FilterSettings, LabelSettings, Settings
    from framesift.hashing.tables import HashSpec, Signature

SHIPPED_MODELS = {"framesift:shapes": "shapes.pt"}
NO_MODEL = "none"  # filter.model: none (or null) = no detector: every frame is kept


def uses_detector(spec: str | None) -> bool:
    """Whether a model setting names a detector (``none``, null and '' mean no detector)."""
    return spec not in (None, "", NO_MODEL)


class ModelError(Exception):
    """The configured model cannot be used (missing offline, unreadable, wrong classes)."""


class DetectorFault(Exception):
    """The detector itself failed on readable images (driver, device, broken model): the job
    must fail as transient, never read as "no frame matched"."""


@dataclass(frozen=True)
class Detection:
    """One box: class id in the model, its name, confidence and pixel corners."""

    class_id: int
    class_name: str
    confidence: float
    xyxy: tuple[float, float, float, float]

    def area_fraction(self, width: int, height: int) -> float:
        x1, y1, x2, y2 = self.xyxy
        return max(0.0, x2 - x1) * max(0.0, y2 - y1) / float(width * height)

    def as_dict(self) -> dict[str, Any]:
        return {
            "class_id": self.class_id,
            "class_name": self.class_name,
            "confidence": round(self.confidence, 5),
            "xyxy": [round(v, 2) for v in self.xyxy],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Detection:
        return cls(
            int(data["class_id"]),
            str(data["class_name"]),
            float(data["confidence"]),
            tuple(float(v) for v in data["xyxy"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class DetectOptions:
    """Inference settings shared by filtering and labelling: a model's detection settings
    without the model (no defaults here: they live in the config schema)."""

    conf: float
    imgsz: int
    batch: int
    device: str
    half: bool
    classes: tuple[str, ...]
    min_box_area: float

    @classmethod
    def of(cls, detection: FilterSettings) -> DetectOptions:
        """The options of a model's detection settings (``filter``, or the labelling model's)."""
        return cls(**{f.name: getattr(detection, f.name) for f in fields(cls)})


def resolve_model_path(spec: str) -> str:
    """A local path for ``spec``: shipped aliases, existing files; other names pass through."""
    if spec in SHIPPED_MODELS:
        return str(resources.files("framesift") / "models" / SHIPPED_MODELS[spec])
    return str(Path(spec).expanduser()) if Path(spec).expanduser().exists() else spec


def pick_device(device: str) -> str:
    """``auto`` becomes ``cuda:0`` when CUDA is usable, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def load_model(spec: str) -> Any:
    """Load a YOLO model once; a missing model gives a one-line ModelError saying what to do."""
    check_model_exists(spec)
    path = resolve_model_path(spec)
    is_local = Path(path).exists()
    from ultralytics import YOLO

    try:
        return YOLO(path)
    except Exception as error:  # noqa: BLE001 - ultralytics raises many kinds here
        if is_local:
            raise ModelError(f"cannot load model {path!r}: {error}") from error
        raise ModelError(
            f"model {spec!r} is not a local file and could not be downloaded ({error}); "
            "offline, set filter.model to a local .pt path (framesift:shapes is the demo model)"
        ) from error


def class_names(model: Any) -> dict[int, str]:
    """The model's class id → name map."""
    return {int(k): str(v) for k, v in model.names.items()}


def resolve_classes(names: dict[int, str], wanted: Sequence[str]) -> list[int] | None:
    """Class ids for the wanted names (None = all); unknown names raise, listing valid ones."""
    if not wanted:
        return None
    by_name = {name: cid for cid, name in names.items()}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        valid = ", ".join(names[cid] for cid in sorted(names))
        raise ModelError(f"unknown class(es) {', '.join(unknown)}; this model knows: {valid}")
    return [by_name[name] for name in wanted]


@dataclass(frozen=True)
class Labelling:
    """How the aggregate labels its frames: the labelling model's detection settings, and
    whether they are the filter's (then the filter's detections are the labels; otherwise the
    labelling model runs, cached)."""

    detection: FilterSettings
    reuse_filter: bool

    def as_params(self) -> dict[str, Any]:
        """As a plain dict for Snakemake's params (their repr is the rerun trigger: the keys
        keep the order they had, the ones ``detect.*`` sets first) and the aggregate."""
        values = asdict(self.detection)
        labelled = {key: values.pop(key) for key in ("model", "conf", "imgsz")}
        values["classes"] = list(self.detection.classes)
        return {**labelled, **values, "reuse_filter": self.reuse_filter}


def labelling_settings(flt: FilterSettings, detect: LabelSettings) -> Labelling:
    """The labelling model's settings: ``detect.*`` with nulls resolved to ``filter.*``; the
    filter's detections are reused when model, confidence and size all equal the filter's."""
    detection = replace(
        flt,
        model=detect.model if uses_detector(detect.model) else flt.model,
        conf=flt.conf if detect.conf is None else detect.conf,
        imgsz=detect.imgsz or flt.imgsz,
    )
    same = all(getattr(detection, key) == getattr(flt, key) for key in ("model", "conf", "imgsz"))
    return Labelling(detection, same)


def model_roles(settings: Settings) -> dict[str, FilterSettings]:
    """Role -> detection settings of each model the run uses: the filter model (unless
    ``none``) and a labelling model of its own (``detect.model``, when another file)."""
    flt, detect = settings.filter, settings.detect
    roles = {"filter": flt} if uses_detector(flt.model) else {}
    if uses_detector(detect.model) and detect.model != flt.model:
        roles["detect"] = labelling_settings(flt, detect).detection
    return roles


def check_model_exists(spec: str) -> None:
    """A spec that names a local path must exist (ModelError saying which key to fix)."""
    path = resolve_model_path(spec)
    if not Path(path).exists() and (os.sep in spec or spec.startswith(".")):
        raise ModelError(f"model file {spec!r} does not exist: fix filter.model / detect.model")


def check_models(
    models: dict[str, str],
    classes: Sequence[str],
    names_of: Callable[[str], dict[int, str]],
) -> dict[str, dict[str, Any]]:
    """Check each model (role -> spec) and ``classes`` against its names (``names_of(role)``,
    e.g. asked of the shared worker, which this also starts).

    Raises ModelError with one line naming the config key on the first problem.
    """
    if classes and not models:
        raise ModelError(
            "filter.classes needs a detector: set filter.model (or detect.model), "
            "or leave filter.classes empty to keep every frame"
        )
    checked = {}
    for role, spec in models.items():
        check_model_exists(spec)
        try:
            names = names_of(role)
        except DetectorFault as error:
            raise ModelError(f"{error} ({role} model {spec})") from None
        try:
            resolve_classes(names, classes)
        except ModelError as error:
            raise ModelError(f"filter.classes: {error} (model {spec}, {role})") from None
        checked[role] = {
            "model": spec,
            "path": resolve_model_path(spec),
            "names": {str(k): v for k, v in names.items()},
        }
    return checked


def _chunks(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class FrameDetector(Protocol):
    """Something that finds boxes in frame files: a model in this process or the shared worker."""

    @property
    def names(self) -> dict[int, str]:
        """The model's class id → name map."""
        ...

    def detect_paths(
        self, frames: Sequence[Path], hashing: HashSpec | None = None
    ) -> Iterator[FrameResult]:
        """One result per frame, in order; with ``hashing``, the signatures that are due
        (:func:`signature_due`) come with them."""
        ...


class FrameResult(NamedTuple):
    """What detection found in one frame file."""

    path: Path
    width: int
    height: int
    detections: list[Detection] | None  # None: the frame cannot be decoded
    signature: Signature | None = None  # hash and sharpness, when asked for and due


def signature_due(hashing: HashSpec | None, detections: list[Detection] | None) -> bool:
    """Whether a frame gets a signature: a decodable frame that is kept (has a detection), or
    any decodable frame when negatives are wanted."""
    return (
        hashing is not None and detections is not None and (bool(detections) or hashing.negatives)
    )


class Detector:
    """A loaded model with its settings: runs decoded images in batches (no file I/O)."""

    def __init__(self, model: Any, options: DetectOptions):
        self.model = model
        self.options = options
        self.class_names = class_names(model)
        self.device = pick_device(options.device)
        self._settings = {
            "conf": options.conf,
            "imgsz": options.imgsz,
            "device": self.device,
            **precision(options.half and self.device.startswith("cuda")),
            "classes": resolve_classes(self.class_names, options.classes),
            "verbose": False,
        }

    def detect(self, images: Sequence[Any]) -> list[tuple[int, int, list[Detection]]]:
        """(width, height, detections) per decoded image; errors raise DetectorFault.

        Only boxes of the wanted classes that pass the confidence and minimum-area thresholds
        are returned.
        """
        out = []
        for result in _predict(self.model, list(images), self._settings) if images else ():
            height, width = result.orig_shape
            boxes = result.boxes
            found = []
            for cid, conf, xyxy in zip(
                boxes.cls.tolist(), boxes.conf.tolist(), boxes.xyxy.tolist(), strict=True
            ):
                det = Detection(int(cid), self.class_names[int(cid)], float(conf), tuple(xyxy))
                if det.area_fraction(width, height) >= self.options.min_box_area:
                    found.append(det)
            out.append((width, height, found))
        return out


def precision(fp16: bool) -> dict[str, Any]:
    """The predict option for fp16 (else fp32) in the installed ultralytics: ``quantize=16``
    where it has ``quantize`` (8.4: its ``half`` is deprecated and warns on every call),
    else ``half``."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    if "quantize" in DEFAULT_CFG_DICT:
        return {"quantize": 16 if fp16 else None}
    return {"half": fp16}


class LocalDetector:
    """FrameDetector over a model loaded in this process (the worker and the benchmark use it)."""

    def __init__(self, model: Any, options: DetectOptions):
        self.detector = Detector(model, options)

    @property
    def names(self) -> dict[int, str]:
        return self.detector.class_names

    def detect_paths(
        self, frames: Sequence[Path], hashing: HashSpec | None = None
    ) -> Iterator[FrameResult]:
        return detect_frames(self.detector, frames, hashing)


def detect_frames(
    detector: Detector, frames: Iterable[Path], hashing: HashSpec | None = None
) -> Iterator[FrameResult]:
    """One :class:`FrameResult` per frame, running the model in batches (in this process).

    Detections are None for a frame that cannot be decoded; any error of the model itself raises
    DetectorFault. Frames stream through; at most one batch is in memory.
    """
    for batch in _chunks(list(frames), detector.options.batch):
        decoded = [(path, read_frame(path, keep_gray=hashing is not None)) for path in batch]
        images = [frame.image for _, frame in decoded if frame is not None]
        results = iter(detector.detect(images))
        for path, frame in decoded:
            if frame is None:
                yield FrameResult(path, 0, 0, None)
                continue
            width, height, found = next(results)
            yield FrameResult(path, width, height, found, sign(frame, found, hashing))


class DecodedFrame(NamedTuple):
    """A frame decoded once: the BGR array the model reads, and the grayscale image it is
    hashed from (None when no hash was asked for)."""

    image: Any
    gray: Any


def read_frame(path: Path, keep_gray: bool = False) -> DecodedFrame | None:
    """Decode a JPEG frame file once, with Pillow (the decode imagehash hashes); None if it
    cannot be decoded.

    The model gets the pixels as a BGR array (what ultralytics reads from a path; the same
    pixels as ``cv2.imread``), the hash the grayscale image ``Image.open(path).convert("L")``,
    exactly as imagehash makes it. The JPEG reader is used directly: frames are JPEG files
    (framesift.stages.frames), and ultralytics' patched ``Image.open`` would try to install a HEIF
    plugin for a file it cannot identify.
    """
    import cv2
    import numpy as np
    from PIL import JpegImagePlugin

    try:
        with JpegImagePlugin.JpegImageFile(path) as image:
            image.load()
            gray = image.convert("L") if keep_gray else None
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            array = cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)
    except Exception:  # noqa: BLE001 - whatever a broken file makes the decoder raise
        return None
    return DecodedFrame(array, gray)


def sign(
    frame: DecodedFrame, detections: list[Detection] | None, hashing: HashSpec | None
) -> Signature | None:
    """The frame's hash and sharpness when due (:func:`signature_due`), else None."""
    if not signature_due(hashing, detections):
        return None
    from framesift.hashing.image_hash import (
        signature,  # imagehash and scipy: worker and in-process only
    )

    assert hashing is not None
    return signature(frame.gray, hashing)


def _predict(model: Any, images: list[Any], settings: dict[str, Any]) -> list[Any]:
    """Run the model on decoded images; any error here is the detector's (DetectorFault)."""
    try:
        return list(model.predict(images, batch=len(images), **settings))
    except Exception as error:  # noqa: BLE001 - whatever the framework raises
        message = " ".join(str(error).split())[:300]
        raise DetectorFault(f"the detector failed: {type(error).__name__}: {message}") from error
