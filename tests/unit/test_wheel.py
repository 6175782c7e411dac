"""A wheel (non-editable) install works: the commands find the packaged schema and model, with
the checkout nowhere on ``sys.path``.

The wheel is built offline from a copy of the project (so the build leaves nothing in the
checkout) and installed into a fresh venv without dependencies; a ``.pth`` file makes this
environment's site-packages visible there for the dependencies. Such a line only adds the
folder, it does not run the ``.pth`` files in it, so the editable install of the checkout stays
invisible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml
from testkit import REPO

from framesift.core.urls import video_id

URL = "http://127.0.0.1:9/clip.mp4"


def _run(command: list[str | Path], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _build_wheel(root: Path) -> Path:
    """A wheel of the project, built from a copy of its package sources."""
    source = root / "source"
    shutil.copytree(
        REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    wheels = root / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "--no-index", "-q", "-w", wheels, source]  # fmt: skip
    proc = _run(command, cwd=root, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = wheels.glob("framesift-*.whl")
    return wheel


def _install(wheel: Path, venv: Path) -> Path:
    """A fresh venv with the wheel and this environment's packages; its bin folder."""
    proc = _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv.parent)
    assert proc.returncode == 0, proc.stderr
    python = venv / "bin" / "python"
    command = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
               "--no-index", "-q", wheel]  # fmt: skip
    proc = _run(command, cwd=venv.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   cwd=venv.parent).stdout.strip()  # fmt: skip
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "framesift-test-deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    return venv / "bin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(root)
    names = zipfile.ZipFile(wheel).namelist()
    assert "framesift/core/config.schema.yaml" in names and "framesift/models/shapes.pt" in names
    return _install(wheel, root / "venv")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "config").mkdir(parents=True)
    config = {"filter": {"model": "framesift:shapes", "classes": ["square"], "device": "cpu"}}
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    (root / "config" / "urls.txt").write_text(URL + "\n")
    return root


def test_the_installed_package_is_the_wheel(installed, project):
    probe = "import framesift, framesift.core.config as c; print(framesift.__file__, c.SCHEMA)"
    proc = _run([installed / "python", "-c", probe], cwd=project)
    assert proc.returncode == 0, proc.stderr
    module, schema = map(Path, proc.stdout.split())
    venv = installed.parent
    assert module.is_relative_to(venv) and schema.is_relative_to(venv), proc.stdout
    assert schema.name == "config.schema.yaml" and schema.is_file()
    assert not module.is_relative_to(REPO)


def test_commands_work_from_the_wheel(installed, project):
    status = _run([installed / "framesift", "status"], cwd=project)
    assert status.returncode == 0, status.stderr
    assert video_id(URL) in status.stdout and "pending" in status.stdout

    demo_help = _run([installed / "framesift", "demo", "--help"], cwd=project)
    assert demo_help.returncode == 0 and "--snakefile" in demo_help.stdout, demo_help.stderr
    demo = _run([installed / "framesift", "demo", "--dir", "demo-run"], cwd=project)
    assert demo.returncode != 0 and "--snakefile" in demo.stderr  # the wheel has no workflow
    assert not (project / "demo-run").exists()

    doctor = _run([installed / "framesift", "doctor"], cwd=project, timeout=180)
    assert doctor.returncode in (0, 1), doctor.stdout + doctor.stderr  # 2: config unusable
    assert "Traceback" not in doctor.stderr
    assert "filter.model framesift:shapes" in doctor.stdout  # the packaged model, found
    assert "URL file config/urls.txt: 1 video(s)" in doctor.stdout
