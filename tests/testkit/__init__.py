"""Helpers the tests share: the repository's paths, a workflow directory that runs the real
Snakemake, loopback ports, process look-ups, and the offline ultralytics environment. The pytest
fixtures built on them live in tests/conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SHAPES_MODEL = REPO / "src" / "framesift" / "models" / "shapes.pt"


def offline_ultralytics_env(root: Path) -> None:
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


def new_workflow(root: Path) -> Workflow:
    """A workflow directory at ``root`` with the fast offline test config."""
    config = {
        "urls": "config/urls.txt",
        "download": {"socket_timeout": 5, "retries": 0, "timeout": 60, "job_retries": 0},
        "frames": {"mode": "fps", "fps": 2.0},
        "filter": {"model": str(SHAPES_MODEL), "imgsz": 320, "conf": 0.4, "device": "cpu"},
    }
    return Workflow(root, config)
