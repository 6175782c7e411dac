"""The workflow on a real single-node SLURM cluster, through snakemake-executor-plugin-slurm.

A module fixture starts the cluster with tests/slurm/start_cluster.sh (root; installs the
Debian packages when missing) and stops it at the end. The test runs two small videos with
the project profile (workflow/profiles/slurm) plus the CI overrides (tests/slurm/profile-ci)
and checks that the jobs really went through sbatch, that the GPU rules asked for a GPU,
that downloads with ``download.local: true`` stayed on the submitting host, and that the
results equal a local run's.

The fixture installs packages and starts daemons only when asked (FRAMESIFT_START_SLURM=1, or
FRAMESIFT_REQUIRE_SLURM=1 as set in CI); otherwise it uses a cluster that is already running or
skips with the reason. Where the cluster cannot be started (not root, no apt-get, a real SLURM
setup present) the test is skipped; with FRAMESIFT_REQUIRE_SLURM=1 it fails instead.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import REPO, Workflow

from framesift.cli.synthetic import Shape, VideoSpec, make_video, serve_directory
from framesift.core.urls import video_id

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SLURM_TESTS = REPO / "tests" / "slurm"
START_CLUSTER = SLURM_TESTS / "start_cluster.sh"
STOP_CLUSTER = SLURM_TESTS / "stop_cluster.sh"
PROJECT_PROFILE = REPO / "workflow" / "profiles" / "slurm"
CI_PROFILE = SLURM_TESTS / "profile-ci"
CLUSTER_DIR = Path(os.environ.get("FRAMESIFT_SLURM_DIR", "/tmp/framesift-slurm"))
REQUIRE_SLURM = os.environ.get("FRAMESIFT_REQUIRE_SLURM") == "1"
# Installing packages and starting daemons on the machine happens only when asked.
START_SLURM = REQUIRE_SLURM or os.environ.get("FRAMESIFT_START_SLURM") == "1"
SLURM_RUN_TIMEOUT = 480  # seconds for the whole snakemake run on the cluster

CLIPS = {
    "sq.mp4": VideoSpec(
        duration=2.0, background="testsrc2", shapes=(Shape("square", 400, 120, 90, 0.4, 1.6),)
    ),
    "ci.mp4": VideoSpec(
        duration=2.0, background="flat", shapes=(Shape("circle", 120, 140, 100, 0.0, 1.2),)
    ),
}
# SLURM jobs the run must submit: downloads are local (download.local: true); the
# target rule `all` has no script, so Snakemake finishes it itself.
# The filter jobs of both videos share one GPU allocation: the profile's job group "gpu"
# (one sbatch job, named gpu_filter_frames), served by one detection worker on the node.
EXPECTED_SBATCH = Counter(extract_frames=2, gpu_filter_frames=1, build_dataset=1)
GPU_JOBS = {"gpu_filter_frames", "build_dataset"}
STEPS = {"gpu_filter_frames": ("filter_frames", 2)}  # rule and job count of a group job

SUBMITTED = re.compile(r"Job \S+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
JOB_KIND = re.compile(
    r"/(?:rule|group)_(\w+?)/"
)  # slurm_logs/rule_<rule>/ or group_<group>_<rules>/
SBATCH_CALL = re.compile(r"^sbatch call: (sbatch .*)$", re.MULTILINE)
RUN_ID = re.compile(r"SLURM run ID: (\S+)")


def _cannot_run(reason: str) -> None:
    if REQUIRE_SLURM:
        pytest.fail(f"FRAMESIFT_REQUIRE_SLURM=1, but {reason}", pytrace=False)
    pytest.skip(reason)


def _daemon_running(name: str) -> bool:
    pid_file = CLUSTER_DIR / f"{name}.pid"
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def _stop_cluster() -> None:
    subprocess.run(["bash", str(STOP_CLUSTER)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[None]:
    """A running single-node cluster (partition debug, fake GPUs); stopped afterwards
    unless it was already running before this module."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        _cannot_run("the SLURM test cluster needs root (packages, /etc/slurm, daemons)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        _cannot_run("SLURM is not installed and there is no apt-get to install it")
    already_running = _daemon_running("slurmctld") and _daemon_running("slurmd")
    if not already_running and not START_SLURM:
        _cannot_run(
            "no SLURM test cluster is running; start one with `sudo tests/slurm/start_cluster.sh`"
            " or set FRAMESIFT_START_SLURM=1 to let the test install and start it"
        )
    try:
        start = subprocess.run(
            ["bash", str(START_CLUSTER)], capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        _stop_cluster()
        pytest.fail("start_cluster.sh did not finish within 900 s", pytrace=False)
    if start.returncode != 0:
        if not already_running:
            _stop_cluster()
        _cannot_run(
            f"start_cluster.sh failed (exit {start.returncode}):\n"
            f"{start.stdout[-2000:]}\n{start.stderr[-3000:]}"
        )
    yield
    if not already_running:
        _stop_cluster()


@pytest.fixture(scope="module")
def shape_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two short 640x360 clips with known objects on a loopback HTTP server."""
    root = tmp_path_factory.mktemp("slurm-clips")
    for name, spec in CLIPS.items():
        make_video(root / name, spec)
    with serve_directory(root) as base:
        yield base


def _cancel_jobs(output: str) -> None:
    """Cancel whatever the run left in the queue (after a timeout or a crash)."""
    run_id = RUN_ID.search(output)
    if run_id:
        subprocess.run(["scancel", f"--name={run_id.group(1)}"], capture_output=True, timeout=30)
    ids = [job_id for job_id, _ in SUBMITTED.findall(output)]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


def _run_on_slurm(workflow: Workflow, *args: str) -> tuple[str, float]:
    """Snakemake with the project profile plus the CI overrides, bounded by `timeout -k`;
    returns its output (stdout + stderr) and wall time, and cancels any job it left."""
    workflow.write_config()
    command = [
        "timeout",
        "-k",
        "10",
        str(SLURM_RUN_TIMEOUT),
        *workflow.snakemake_command(),
        "--workflow-profile",
        str(PROJECT_PROFILE),
        "--profile",
        str(CI_PROFILE),
        "--verbose",  # prints each sbatch call
        *args,
    ]
    started = time.monotonic()
    output = ""
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=SLURM_RUN_TIMEOUT + 30
        )
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as expired:
        output = f"{expired.stdout or ''}{expired.stderr or ''}"
        raise
    finally:
        _cancel_jobs(output)
    elapsed = time.monotonic() - started
    (workflow.root / "snakemake-slurm.out").write_text(output)  # kept for a look afterwards
    if proc.returncode != 0:
        what = "timed out" if proc.returncode in (124, 137) else f"failed ({proc.returncode})"
        slurm_logs = "\n".join(
            f"--- {path}\n{Path(path).read_text()[-3000:]}"
            for _, path in SUBMITTED.findall(output)
            if Path(path).exists()
        )
        raise AssertionError(
            f"snakemake on SLURM {what} after {elapsed:.0f} s:\n{output[-12000:]}\n"
            f"{slurm_logs[-8000:]}"
        )
    return output, elapsed


def _squeue_states(job_ids: list[str]) -> dict[str, str]:
    """Final states of the jobs, straight from slurmctld (the cluster keeps them an hour)."""
    proc = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i %T"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return dict(line.split() for line in proc.stdout.splitlines() if line.strip())


def _digest(root: Path, pattern: str) -> dict[str, str]:
    """sha256 of every file matching ``pattern`` under ``root``, by relative path."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.glob(pattern))
        if path.is_file() and path.name != ".snakemake_timestamp"
    }


def _manifest_rows(dataset: Path) -> list[dict[str, str]]:
    with open(dataset / "manifest.csv", newline="") as handle:
        return sorted(csv.DictReader(handle), key=lambda row: sorted(row.items()))


@pytest.mark.timeout(1200)
def test_slurm_run_matches_local_run(slurm_cluster, shape_server, workflow, tmp_path):
    """Two videos through the full workflow on SLURM: real sbatch jobs (GPU rules with
    --gpus=1), local downloads, and the same frames, hashes and dataset as a local run."""
    urls = [f"{shape_server}/{name}" for name in CLIPS]
    ids = [video_id(url) for url in urls]
    workflow.config["filter"]["classes"] = ["square", "circle"]
    workflow.config["dataset"] = {"val_fraction": 0.5, "seed": 0}
    # Compute nodes often have no internet: downloads as localrule on the submitting host.
    workflow.config["download"]["local"] = True
    workflow.write_urls(urls)

    local = Workflow(tmp_path / "local", copy.deepcopy(workflow.config))
    local.write_urls(urls)
    local.run()

    output, elapsed = _run_on_slurm(workflow)
    print(f"SLURM run: {elapsed:.1f} s")

    # 1. every job but the downloads went through sbatch, and SLURM ran it to completion
    submitted = SUBMITTED.findall(output)
    kinds = Counter(JOB_KIND.search(log).group(1) for _, log in submitted)
    assert kinds == EXPECTED_SBATCH, output[-6000:]
    states = _squeue_states([job_id for job_id, _ in submitted])
    assert states == {job_id: "COMPLETED" for job_id, _ in submitted}
    for job_id, log in submitted:
        log_path = Path(log)
        kind = JOB_KIND.search(log).group(1)
        rule, steps = STEPS.get(kind, (kind, 1))
        assert log_path.resolve().is_relative_to(workflow.path(".snakemake/slurm_logs").resolve())
        assert log_path.name == f"{job_id}.log"
        text = log_path.read_text()
        done = f"{steps} of {steps} steps (100%) done"
        assert f"(Rule: {rule})" in text and done in text, text[-3000:]

    # 2. the GPU jobs asked SLURM for one GPU, the CPU jobs for none; all on partition debug;
    # fewer GPU allocations for filtering (1) than videos (2)
    calls = SBATCH_CALL.findall(output)
    assert len(calls) == sum(EXPECTED_SBATCH.values())
    for call in calls:
        kind = re.search(r"--comment rule_(\w+?)(?:_wildcards_\S+)? ", call).group(1)
        assert ("--gpus=1" in call) == (kind in GPU_JOBS), call
        assert " -p debug " in call, call
    # one detection worker served the filter jobs of the group
    addresses = {
        re.search(
            r"detection worker (\S+\.sock)",
            workflow.path(f"logs/filter_frames/{vid}.log").read_text(),
        ).group(1)
        for vid in ids
    }
    assert len(addresses) == 1, addresses
    # ... a worker that the group job's own Snakemake (its owner) started before the steps
    # ran, so that it outlives each step (docs/worker.md): not the submitting Snakemake's
    (address,) = addresses
    owner = re.search(r"-(\d+)-\w+\.sock$", address).group(1)
    worker_logs = "".join(p.read_text() for p in workflow.path("logs/worker").glob("*.log"))
    started = re.search(
        rf"listening on {re.escape(address)} for run (\d+), started by process (\d+)",
        worker_logs,
    )
    assert started and started.groups() == (owner, owner), worker_logs[-3000:]

    # 3. downloads ran on the submitting host (localrule), not through sbatch
    assert output.count("localrule download_video:") == 2, output[-6000:]
    assert output.count("localrule check_model:") == 1, output[-6000:]  # once, on the host
    for vid in ids:
        assert workflow.path(f"results/videos/{vid}.mp4").stat().st_size > 0

    # 4. the same results as the local run
    for vid in ids:
        frames = _digest(workflow.path(f"results/frames/{vid}"), "*")
        assert frames and frames == _digest(local.path(f"results/frames/{vid}"), "*"), vid
        kept = sorted(p.name for p in workflow.path(f"results/filtered/{vid}").glob("*.jpg"))
        local_kept = sorted(p.name for p in local.path(f"results/filtered/{vid}").glob("*.jpg"))
        assert kept and kept == local_kept, vid
        assert (
            workflow.path(f"results/hashes/{vid}.tsv").read_text()
            == local.path(f"results/hashes/{vid}.tsv").read_text()
        )
    dataset, local_dataset = workflow.path("results/dataset"), local.path("results/dataset")
    images = sorted(str(p.relative_to(dataset)) for p in dataset.glob("images/*/*.jpg"))
    local_images = sorted(
        str(p.relative_to(local_dataset)) for p in local_dataset.glob("images/*/*.jpg")
    )
    assert images and images == local_images
    assert _digest(dataset, "labels/*/*.txt") == _digest(local_dataset, "labels/*/*.txt")
    assert _manifest_rows(dataset) == _manifest_rows(local_dataset)
