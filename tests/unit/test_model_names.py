"""Class names read from ultralytics checkpoints without torch, checked against ultralytics."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

from framesift.detection.detector import class_names, load_model, resolve_model_path
from framesift.detection.model_names import checkpoint_names


def test_shipped_model_names_equal_what_ultralytics_loads() -> None:
    path = resolve_model_path("framesift:shapes")
    assert checkpoint_names(path) == class_names(load_model(path)) == {0: "square", 1: "circle"}


def test_a_checkpoint_saved_like_ultralytics_saves_one(tmp_path: Path) -> None:
    """A model built from a yaml, saved as ultralytics' trainer does: same names as YOLO()."""
    import torch
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    model.names = {0: "cat", 1: "dog", 2: "traffic cone"}
    path = tmp_path / "custom.pt"
    torch.save({"model": model.half(), "ema": None, "epoch": -1}, path)
    assert checkpoint_names(path) == YOLO(str(path)).names == model.names


def test_torch_is_not_imported() -> None:
    path = resolve_model_path("framesift:shapes")
    code = (
        "import sys; from framesift.detection.model_names import checkpoint_names; "
        f"assert checkpoint_names({str(path)!r}); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out


def _zip_with_pickle(path: Path, payload: object) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(payload))
    return path


class _Runs:
    """Unpickling it calls a function: creates ``marker`` (what a hostile pickle does)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_anything_else_gives_none_and_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = tmp_path / "model.pt"
    text.write_text("not a checkpoint")
    empty = tmp_path / "empty.pt"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("archive/other.bin", b"")
    no_names = _zip_with_pickle(tmp_path / "no_names.pt", {"model": None, "epoch": 3})
    hostile = _zip_with_pickle(tmp_path / "hostile.pt", {"model": _Runs(marker)})
    for path in (text, empty, no_names, hostile, tmp_path / "missing.pt"):
        assert checkpoint_names(path) is None, path
    assert not marker.exists()
    buffer = io.BytesIO(pickle.dumps(_Runs(marker)))
    pickle.load(buffer).close()  # the same pickle does run code when loaded for real
    assert marker.exists()
