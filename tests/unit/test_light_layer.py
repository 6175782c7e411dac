"""The torch-free layer: what a filter job (and the class check) imports is a package boundary.

Filter jobs are cheap clients of the shared detection worker (docs/worker.md): torch and
ultralytics, imagehash, and with them numpy, scipy, OpenCV and Pillow, are the worker's. Each
check runs in a fresh Python process and looks at ``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import REPO, worker_processes

from framesift.cli.synthetic import Shape, VideoSpec, make_video
from framesift.core.config import complete_config, settings_for
from framesift.stages.frames import extract_frames

HEAVY = ("torch", "ultralytics", "imagehash", "numpy", "scipy", "cv2", "PIL")
ADAPTERS = ("filter_frames.py", "check_model.py")  # the per-video client, the class check


def framesift_imports(script: Path) -> list[str]:
    """The framesift modules a script imports at its top level."""
    found = []
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [name for name in found if name.split(".")[0] == "framesift"]


def heavy_after(code: str, *args: str, cwd: Path | None = None) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after running ``code``."""
    report = f"\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", "import json, sys\n" + code + report, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("script", ADAPTERS)
def test_what_the_adapter_imports_is_light(script: str) -> None:
    modules = framesift_imports(REPO / "scripts" / script)
    assert "framesift.detection.client" in modules, modules  # the list is the real one
    code = "import importlib\nfor name in sys.argv[1:]:\n    importlib.import_module(name)"
    assert heavy_after(code, *modules) == []


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames at 2 fps of a 3 s clip with a square in the middle second."""
    root = tmp_path_factory.mktemp("light")
    shapes = (Shape("square", 300, 100, 80, 1.0, 2.0),)
    video = make_video(root / "clip.mp4", VideoSpec(duration=3.0, background="flat", shapes=shapes))
    extract_frames(video, "clip", root / "frames", settings_for({"frames": {"fps": 2.0}}).frames)
    return root / "frames"


# what scripts/filter_frames.py does with its settings, minus Snakemake's bookkeeping
FILTER_JOB = """
from pathlib import Path
from framesift.detection.detector import uses_detector
from framesift.stages.filter import filter_frames, keep_all_frames
from framesift.hashing.tables import HashSpec, VideoTables
from framesift.core.settings import Settings
from framesift.detection.client import WorkerClient, WorkerSpec

settings = Settings.from_config(json.loads(sys.argv[1]))
frames, out = Path(sys.argv[2]), Path("kept")
hashing = HashSpec.of(settings.hash, settings.dataset)
if uses_detector(settings.filter.model):
    client = WorkerClient(WorkerSpec.of(settings.filter, settings.worker), owner=0)
    summary = filter_frames(frames, out, client, settings.filter.model, None, hashing)
    client.stop()
else:
    summary = keep_all_frames(frames, out, "none", hashing)
tables = VideoTables(Path("hashes.tsv"), Path("negatives.tsv"))
assert tables.write(summary.kept_signed, summary.negative_signed, settings.hash) >= 1
assert 0 < summary.kept < summary.frames_in or settings.filter.model == "none", summary
"""


@pytest.mark.parametrize(
    ("model", "absent"),
    [
        ("framesift:shapes", HEAVY),  # a client of the worker: the worker hashes
        ("none", ("torch", "ultralytics", "cv2")),  # detector-free: hashes in this process
    ],
)
def test_a_filter_job_stays_light_while_it_runs(
    frames_dir: Path, tmp_path: Path, model: str, absent: tuple[str, ...]
) -> None:
    """Filtering and hashing one video end to end (a real worker loads the shipped model),
    in a process that imports none of the heavy modules (but the detector-free mode's
    in-process hashing)."""
    flt = {"model": model, "conf": 0.4, "imgsz": 320, "device": "cpu"}
    config = complete_config({"filter": flt, "dataset": {"negatives": 0.1}})
    try:
        loaded = heavy_after(FILTER_JOB, json.dumps(config), str(frames_dir), cwd=tmp_path)
    finally:
        for pid in worker_processes(tmp_path):
            os.kill(pid, signal.SIGKILL)
    assert not set(loaded) & set(absent), loaded
    assert (tmp_path / "hashes.tsv").exists() and (tmp_path / "kept").is_dir()
