"""The shared detection worker, for real: a worker process with the shipped tiny detector, reached
through its Unix socket by clients in threads (docs/worker.md)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import imagehash
import pytest
from PIL import Image
from testkit import wait_until, worker_processes

from framesift.cli.synthetic import Shape, VideoSpec, make_video
from framesift.core.config import settings_for
from framesift.core.pythonpath import LIBRARY_ROOT, library_pythonpath
from framesift.detection.client import WorkerClient, WorkerSpec, connect, socket_path
from framesift.detection.detector import DetectOptions, DetectorFault, LocalDetector, load_model
from framesift.detection.run_owner import RUN_OWNER_ENV, claim_run, host_name, run_pid, start_time
from framesift.hashing.image_hash import sharpness
from framesift.hashing.tables import HashSpec
from framesift.stages.frames import extract_frames

FILTER = {"model": "framesift:shapes", "conf": 0.4, "imgsz": 320, "batch": 4, "device": "cpu"}


def _settings(idle_timeout: float = 30, **detection):
    """The settings of a run with the shipped model (``detection``: other ``filter.*``)."""
    worker = {"idle_timeout": idle_timeout}
    return settings_for({"filter": {**FILTER, **detection}, "worker": worker})


def _spec(idle_timeout: float = 30, **detection) -> WorkerSpec:
    settings = _settings(idle_timeout, **detection)
    return WorkerSpec.of(settings.filter, settings.worker)


SQUARE = Shape("square", 300, 100, 80, 0.8, 2.2)
CIRCLE = Shape("circle", 120, 120, 90, 1.6, 3.2)
MID_SQUARE = Shape("square", 200, 80, 80, 0.8, 2.2)


@pytest.fixture(scope="module")
def frame_sets(tmp_path_factory: pytest.TempPathFactory) -> list[list[Path]]:
    """Frames of three small videos; the third has another size (batches never mix sizes).
    Flat backgrounds: the tiny model finds the shapes at 0.94-0.99 and nothing else above
    0.15, so float rounding between batch compositions cannot move a box across conf 0.4."""
    root = tmp_path_factory.mktemp("worker-frames")
    specs = [
        VideoSpec(duration=4.0, background="flat", shapes=(SQUARE,)),
        VideoSpec(duration=4.0, background="flat", shapes=(CIRCLE,)),
        VideoSpec(duration=3.0, width=480, height=270, background="flat", shapes=(MID_SQUARE,)),
    ]
    sets = []
    for k, spec in enumerate(specs):
        video = make_video(root / f"v{k}.mp4", spec)
        frames = root / f"frames{k}"
        extract_frames(video, f"v{k}", frames, settings_for({"frames": {"fps": 2.0}}).frames)
        sets.append(sorted(frames.glob("*.jpg")))
    (root / "frames0" / "broken.jpg").write_bytes(b"not a jpeg")
    sets[0].append(root / "frames0" / "broken.jpg")
    return sets


def _plain(results) -> list:
    return [
        (
            r.path.name,
            r.width,
            r.height,
            None if r.detections is None else [box.as_dict() for box in r.detections],
        )
        for r in results
    ]


# per client: the hash each request asks for (the worker's key does not depend on it)
HASHING = [HashSpec("phash", 8, negatives=False), HashSpec("dhash", 8, negatives=True), None]
IMAGEHASH = {"phash": imagehash.phash, "dhash": imagehash.dhash}


def _assert_signatures(results: list, hashing: HashSpec | None) -> None:
    """Kept frames (and, with negatives, every decodable frame) carry exactly imagehash's hash
    of the file and the sharpness of its grayscale image; no other frame carries one."""
    for result in results:
        due = (
            hashing is not None
            and result.detections is not None
            and (bool(result.detections) or hashing.negatives)
        )
        if not due:
            assert result.signature is None, result.path.name
            continue
        with Image.open(result.path) as image:
            want = str(IMAGEHASH[hashing.hash_type](image, hash_size=hashing.hash_size))
            assert result.signature.hash_hex == want, result.path.name
            assert result.signature.sharpness == sharpness(image.convert("L"))


def _assert_same_detections(got: list, expected: list) -> None:
    """Same frames, sizes, kept frames and boxes (matched by class and position); confidences
    and corners equal up to float rounding: a batch mixing several videos sums in another order
    than one video's batch, which can also swap the order of near-equal boxes."""
    assert [row[:3] for row in got] == [row[:3] for row in expected]
    for (name, _, _, boxes), (_, _, _, want) in zip(got, expected, strict=True):
        if want is None:
            assert boxes is None, name
            continue
        assert len(boxes) == len(want), name
        unmatched = list(boxes)
        for other in want:
            candidates = (
                box
                for box in unmatched
                if box["class_id"] == other["class_id"]
                and box["confidence"] == pytest.approx(other["confidence"], abs=0.01)
                and box["xyxy"] == pytest.approx(other["xyxy"], abs=1.0)
            )
            match = next(candidates, None)
            assert match is not None, (name, other, boxes)
            unmatched.remove(match)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for pid in worker_processes(tmp_path):
        os.kill(pid, signal.SIGKILL)


def _listening(address: Path) -> bool:
    """Whether a process accepts connections on ``address``."""
    connection = connect(address)
    if connection is None:
        return False
    connection.close()
    return True


def _owner() -> subprocess.Popen:
    """A stand-in for the run's Snakemake process."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def test_concurrent_clients_get_the_in_process_results(frame_sets, workdir):
    """Three clients at once share one worker (one model load); each gets what the model gives
    in this process (same kept frames and classes), undecodable frames included, and the hashes
    it asked for (bit-identical to imagehash on the file; none unless asked, per request);
    socket and folder are private."""
    owner = _owner()
    try:
        spec = _spec()
        results: dict[int, list] = {}

        def run(k: int) -> None:
            client = WorkerClient(spec, owner=owner.pid)
            results[k] = list(client.detect_paths(frame_sets[k], HASHING[k]))

        threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        local = LocalDetector(load_model("framesift:shapes"), DetectOptions.of(_settings().filter))
        for k in range(3):
            in_process = list(local.detect_paths(frame_sets[k], HASHING[k]))
            _assert_same_detections(_plain(results[k]), _plain(in_process))
            _assert_signatures(results[k], HASHING[k])
            _assert_signatures(in_process, HASHING[k])
        assert _plain(results[0])[-1] == ("broken.jpg", 0, 0, None)
        assert sum(1 for r in results[0] if r.detections) >= 2  # the square is found
        assert sum(1 for r in results[0] if r.signature) == sum(
            1 for r in results[0] if r.detections
        )
        assert sum(1 for r in results[1] if r.signature) == len(frame_sets[1])  # negatives
        assert len(worker_processes(workdir)) == 1
        log = next((workdir / "logs" / "worker").glob("*.log")).read_text()
        assert log.count("loaded on cpu") == 1, log
        address = socket_path(spec, owner.pid)
        assert stat.S_ISSOCK(os.stat(address).st_mode)
        assert stat.S_IMODE(os.stat(address).st_mode) & 0o077 == 0  # this user only
        assert stat.S_IMODE(os.stat(workdir / ".framesift").st_mode) == 0o700
    finally:
        owner.kill()
        owner.wait()
    # the worker follows its run: gone, with its socket, soon after the owner dies (SIGKILL)
    assert wait_until(lambda: not worker_processes(workdir), 10), worker_processes(workdir)
    assert not list((workdir / ".framesift").glob("*.sock"))


def test_settings_and_model_files_key_the_worker(workdir, shapes_model):
    """Another conf or another model file is another worker (another socket)."""
    base = _spec()
    other_conf = _spec(conf=0.5)
    copy = workdir / "copy.pt"
    copy.write_bytes(shapes_model.read_bytes())
    other_model = _spec(model=str(copy))
    addresses = {socket_path(spec, 1) for spec in (base, other_conf, other_model)}
    assert len(addresses) == 3
    assert socket_path(base, 1) != socket_path(base, 2)  # another run, another worker
    assert socket_path(_spec(), 1) == socket_path(base, 1)
    assert socket_path(_spec(idle_timeout=5), 1) == socket_path(base, 1)  # not a model setting
    assert WorkerSpec.from_json(base.to_json()) == base


def test_workers_import_this_framesift() -> None:
    """A started worker (and every job, rules/common.smk) gets this framesift's folder first
    on PYTHONPATH, once, before the entries that were there."""
    root = "/opt/framesift/src"
    assert library_pythonpath("", root) == root
    assert library_pythonpath(f"/a{os.pathsep}{root}{os.pathsep}/b", root) == os.pathsep.join(
        [root, "/a", "/b"]
    )
    once = library_pythonpath("/a", root)
    assert library_pythonpath(once, root) == once
    assert library_pythonpath(None).split(os.pathsep)[0] == LIBRARY_ROOT
    assert Path(LIBRARY_ROOT, "framesift", "detection", "worker.py").is_file()


def test_idle_worker_exits_and_leaves_no_socket(frame_sets, workdir):
    spec = _spec(idle_timeout=1)
    client = WorkerClient(spec, owner=0)
    assert client.names == {0: "square", 1: "circle"}
    assert len(worker_processes(workdir)) == 1
    assert wait_until(lambda: not worker_processes(workdir), 15)
    assert not client.address.exists()
    assert "exiting: idle for 1 s" in client.log_file.read_text()


def test_the_worker_log_has_no_deprecation_warning(frame_sets, workdir, monkeypatch):
    """ultralytics' own warnings reach the worker's log (YOLO_VERBOSE on, as outside the
    tests); none says an option framesift passes is deprecated ('half' in ultralytics 8.4)."""
    monkeypatch.setenv("YOLO_VERBOSE", "True")
    client = WorkerClient(_spec(idle_timeout=60), owner=0)
    assert sum(1 for r in client.detect_paths(frame_sets[0], HASHING[0]) if r.detections) >= 2
    assert client.stop()
    assert wait_until(lambda: not worker_processes(workdir), 10)
    log = client.log_file.read_text()
    assert "frames answered" in log and "exiting: asked to stop" in log, log
    assert "deprecated" not in log.lower(), log


def test_a_worker_killed_mid_request_is_a_fault_and_the_next_client_recovers(frame_sets, workdir):
    """SIGKILL mid-request: the client raises DetectorFault (a transient failure, never "no
    frame matched"); the stale socket does not block the next client, which starts a worker."""
    spec = _spec(batch=1)
    client = WorkerClient(spec, owner=0)
    many = frame_sets[0][:1] * 3000  # seconds of work: the kill lands mid-request
    answers = client.detect_paths(many)
    next(answers)
    (pid,) = worker_processes(workdir)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(DetectorFault, match="detection worker failed"):
        for _ in answers:
            pass
    # the next client comes once the killed worker is gone (a dying process can still accept
    # a connection for a moment; see the issue note)
    assert wait_until(lambda: not _listening(client.address), 10)
    assert client.address.exists()  # left behind by the killed worker
    again = _plain(WorkerClient(spec, owner=0).detect_paths(frame_sets[1]))
    assert len(again) == len(frame_sets[1])
    assert worker_processes(workdir) and pid not in worker_processes(workdir)
    assert WorkerClient(spec, owner=0).stop()
    assert wait_until(lambda: not worker_processes(workdir), 10)


def test_a_model_that_cannot_load_is_a_fault_with_the_reason(workdir, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    spec = _spec(idle_timeout=5, model=str(bad))
    with pytest.raises(
        DetectorFault, match="worker cannot use the model: cannot load model .*bad.pt"
    ):
        assert not WorkerClient(spec, owner=0).names
    assert wait_until(lambda: not worker_processes(workdir), 10)  # it does not linger


def test_framesift_workers_lists_and_stops_them(workdir):
    """`framesift workers` shows the running worker; `--stop` ends it."""
    assert WorkerClient(_spec(idle_timeout=60), owner=0).names
    command = [sys.executable, "-m", "framesift", "workers", "-d", str(workdir)]
    listed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert "model framesift:shapes on cpu" in listed.stdout, listed.stdout
    stopped = subprocess.run(
        [*command, "--stop"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "asked to stop" in stopped.stdout
    assert wait_until(lambda: not worker_processes(workdir), 10)
    after = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert "no detection worker is running" in after.stdout


def test_the_run_owner_is_the_first_snakemake_of_this_machine_and_slurm_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """claim_run: a live owner on this machine, in this SLURM job, keeps the run (per-job
    Snakemake processes of a group share its worker); a claim from another machine or from
    outside the SLURM job (the submitting Snakemake's, exported by sbatch) is replaced."""
    # setenv, not delenv: pytest records (and so undoes) only a delenv of a variable that is set,
    # and the claims below would leak into the tests after this one (their Snakemake runs would
    # find this process as a live owner and give their workers to it)
    monkeypatch.setenv(RUN_OWNER_ENV, "")
    monkeypatch.setenv("SLURM_JOB_ID", "")
    me = os.getpid()
    assert claim_run() and run_pid() == me
    assert os.environ[RUN_OWNER_ENV] == f"{host_name()}:{me}:{start_time(me)}:"
    assert not claim_run() and run_pid() == me  # already owned by a live process

    other = _owner()  # a live process: the submitting Snakemake, say
    try:
        submitted = f"{host_name()}:{other.pid}:{start_time(other.pid)}:"
        monkeypatch.setenv(RUN_OWNER_ENV, submitted)
        assert not claim_run() and run_pid() == other.pid  # a local run's job: kept
        monkeypatch.setenv("SLURM_JOB_ID", "4242")  # now inside a SLURM job on this machine
        assert run_pid() is None
        assert claim_run() and run_pid() == me  # the job's Snakemake takes over
        assert os.environ[RUN_OWNER_ENV].endswith(":4242")
        assert not claim_run()  # a per-job Snakemake of that SLURM job: kept
        monkeypatch.setenv(RUN_OWNER_ENV, f"elsewhere:{other.pid}:{start_time(other.pid)}:4242")
        assert claim_run() and run_pid() == me  # another machine's claim: replaced
    finally:
        other.kill()
        other.wait()
    monkeypatch.setenv(RUN_OWNER_ENV, f"{host_name()}:{other.pid}:{start_time(me)}:4242")
    assert claim_run() and run_pid() == me  # the owner is gone (or its pid reused)
