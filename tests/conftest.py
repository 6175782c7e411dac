"""Shared fixtures: offline ultralytics settings, synthetic videos on a loopback HTTP server, and
a helper that runs the real workflow with ``python -m snakemake`` in a temp directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from framesift.cli.synthetic import Shape, VideoSpec, make_video, serve_directory, write_corrupt_video

REPO = Path(__file__).resolve().parents[1]
SHAPES_MODEL = REPO / "src" / "framesift" / "models" / "shapes.pt"


def _offline_ultralytics_env(root: Path) -> None:
    """Keep ultralytics offline and quiet in this process and every child process."""
    config_dir = root / "ultralytics-config"
    font_dir = config_dir / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if font.exists():
        shutil.copy(font, font_dir / "Arial.ttf")
    os.environ.update(
        {
            "YOLO_OFFLINE": "1",
            "YOLO_AUTOINSTALL": "False",
            "YOLO_VERBOSE": "False",
            "YOLO_CONFIG_DIR": str(config_dir),
        }
    )


def pytest_configure(config: pytest.Config) -> None:
    import tempfile

    _offline_ultralytics_env(Path(tempfile.mkdtemp(prefix="framesift-tests-")))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the SLURM tests last: once their cluster is stopped, the installed SLURM client makes
    every later snakemake start wait ~10 s (the executor plugin queries scontrol at import)."""
    items.sort(key=lambda item: item.get_closest_marker("slurm") is not None)


SMALL = {"width": 160, "height": 90, "fps": 10}
CLIPS = {
    "alpha.mp4": VideoSpec(duration=3.0, background="testsrc2", **SMALL),
    "beta.mp4": VideoSpec(duration=2.0, background="smptehdbars", **SMALL),
    "gamma.mp4": VideoSpec(duration=2.0, background="flat", **SMALL),
    "delta.mp4": VideoSpec(duration=2.0, background="testsrc2", flat_color="0x802020", **SMALL),
}


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small synthetic clips (plus a corrupt file and an HTML page) to serve."""
    root = tmp_path_factory.mktemp("served")
    for name, spec in CLIPS.items():
        make_video(root / name, spec)
    write_corrupt_video(root / "corrupt.mp4")
    (root / "page.html").write_text("<html><body><p>no video here</p></body></html>")
    return root


@pytest.fixture(scope="session")
def server(video_dir: Path) -> Iterator[str]:
    """Base URL of an HTTP server on 127.0.0.1 serving ``video_dir``."""
    with serve_directory(video_dir) as base:
        yield base


def worker_processes(directory: Path) -> list[int]:
    """Pids of detection workers (``python -m framesift.detection.worker``) in ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            worker = b"framesift.detection.worker" in command
            if worker and os.readlink(proc / "cwd") == str(directory):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


def wait_until(condition, seconds: float) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass; whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def free_port() -> int:
    """A loopback port with nothing listening on it (connections are refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Workflow:
    """A workflow working directory with its config; ``run`` calls the real snakemake."""

    def __init__(self, root: Path, config: dict):
        self.root = root
        self.config = config
        (root / "config").mkdir(parents=True, exist_ok=True)

    @property
    def urls_file(self) -> Path:
        return self.root / "config" / "urls.txt"

    def write_urls(self, lines: list[str]) -> None:
        self.urls_file.write_text("\n".join(lines) + "\n")

    def write_config(self) -> Path:
        path = self.root / "config" / "config.yaml"
        path.write_text(yaml.safe_dump(self.config))
        return path

    def snakemake_command(self) -> list[str]:
        """``python -m snakemake`` on the repo's Snakefile in this directory."""
        return [
            sys.executable, "-m", "snakemake",
            "--snakefile", str(REPO / "Snakefile"),
            "--directory", str(self.root),
        ]  # fmt: skip

    def run(self, *args: str, timeout: float = 600, check: bool = True):
        self.write_config()
        # "--resources=gpu=1" as one token: a following target is not eaten as a resource
        command = [*self.snakemake_command(), "--cores", "2", "--resources=gpu=1", *args]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            tail = f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
            raise AssertionError(f"snakemake failed ({proc.returncode}):\n{tail}")
        return proc

    def path(self, relative: str) -> Path:
        return self.root / relative


@pytest.fixture(scope="session")
def shapes_model() -> Path:
    """The shipped tiny detector (classes square, circle)."""
    assert SHAPES_MODEL.exists(), f"{SHAPES_MODEL} missing: python tools/train_detector.py"
    return SHAPES_MODEL


@pytest.fixture
def workflow(tmp_path: Path) -> Workflow:
    """An empty workflow directory with a fast, offline config (shipped tiny model)."""
    return new_workflow(tmp_path / "run")


def new_workflow(root: Path) -> Workflow:
    """A workflow directory at ``root`` with the fast offline test config."""
    config = {
        "urls": "config/urls.txt",
        "download": {"socket_timeout": 5, "retries": 0, "timeout": 60, "job_retries": 0},
        "frames": {"mode": "fps", "fps": 2.0},
        "filter": {"model": str(SHAPES_MODEL), "imgsz": 320, "conf": 0.4, "device": "cpu"},
    }
    return Workflow(root, config)


__all__ = ["Shape", "VideoSpec", "Workflow", "free_port", "new_workflow", "SHAPES_MODEL", "REPO"]
