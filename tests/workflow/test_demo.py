"""`framesift demo`: the offline demo runs the whole pipeline and ends with a dataset."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from testkit import REPO, free_port

pytestmark = pytest.mark.slow


def _detections(directory, vid):
    return json.loads((directory / "results" / "filtered" / vid / "detections.json").read_text())


def test_demo_builds_a_dataset_offline(tmp_path):
    directory = tmp_path / "demo"
    command = [sys.executable, "-m", "framesift.cli.main", "demo", "--dir", str(directory)]
    command += ["--cores", "2", "--port", str(free_port())]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "framesift demo: done in" in proc.stdout

    summary = json.loads((directory / "results" / "summary.json").read_text())
    videos = {vid.split("-")[0]: counts for vid, counts in summary["videos"].items()}
    assert videos["empty"]["filtered"] == 0  # no object, no frame kept
    assert videos["squares"]["in_dataset"] > 0 and videos["circles"]["in_dataset"] > 0
    # squares_small is squares re-encoded smaller: every frame both kept is deduplicated away
    ids = {vid.split("-")[0]: vid for vid in summary["videos"]}
    kept = {
        name: {row["timestamp_ms"] for row in _detections(directory, ids[name])["frames"]}
        for name in ("squares", "squares_small")
    }
    assert kept["squares"] & kept["squares_small"]
    only_small = kept["squares_small"] - kept["squares"]
    assert videos["squares_small"]["in_dataset"] == len(only_small)
    failures = {(f["video_id"].split("-")[0], f["stage"]) for f in summary["failures"]}
    assert failures == {("no_such_video", "download"), ("empty", "filter")}

    dataset = directory / "results" / "dataset"
    data = yaml.safe_load((dataset / "data.yaml").read_text())
    assert data["names"] == {0: "square", 1: "circle"}
    images = {p.stem for p in dataset.glob("images/*/*.jpg")}
    assert len(images) == summary["totals"]["in_dataset"]
    assert images == {p.stem for p in dataset.glob("labels/*/*.txt")}
