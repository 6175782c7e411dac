"""Shared fixtures: offline ultralytics settings, synthetic videos on a loopback HTTP server, and
a workflow directory that runs the real Snakemake (helpers: tests/testkit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import SHAPES_MODEL, Workflow, new_workflow, offline_ultralytics_env

from framesift.cli.synthetic import VideoSpec, make_video, serve_directory, write_corrupt_video


def pytest_configure(config: pytest.Config) -> None:
    import tempfile

    offline_ultralytics_env(Path(tempfile.mkdtemp(prefix="framesift-tests-")))


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


@pytest.fixture(scope="session")
def shapes_model() -> Path:
    """The shipped tiny detector (classes square, circle)."""
    assert SHAPES_MODEL.exists(), f"{SHAPES_MODEL} missing: python tools/train_detector.py"
    return SHAPES_MODEL


@pytest.fixture
def workflow(tmp_path: Path) -> Workflow:
    """An empty workflow directory with a fast, offline config (shipped tiny model)."""
    return new_workflow(tmp_path / "run")
