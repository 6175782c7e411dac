"""Client of the shared detection worker (docs/worker.md): find or start it, stream frames to it.

Light on purpose: a filter job imports this, never torch. The worker's spec, address, key and
log file are defined here, once, for the client, the worker and `framesift workers`; which
process owns a run's workers is :mod:`framesift.detection.run_owner`'s.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framesift.core.pythonpath import library_pythonpath
from framesift.detection.detector import (
    Detection,
    DetectOptions,
    DetectorFault,
    FrameResult,
    resolve_model_path,
)
from framesift.detection.run_owner import host_name, run_pid
from framesift.hashing.tables import HashSpec, Signature

if TYPE_CHECKING:
    from framesift.core.settings import FilterSettings, WorkerSettings

RUNTIME_DIR = Path(".framesift")  # in the working directory; mode 0700
LOG_DIR = Path("logs") / "worker"
START_TIMEOUT = 60.0  # seconds for a started worker to listen (it binds before importing torch)
ANSWER_TIMEOUT = 900.0  # seconds without a line from the worker before giving up on it


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker serves: one model file with one set of detection settings."""

    model: str
    options: DetectOptions
    idle_timeout: float

    @classmethod
    def of(cls, detection: FilterSettings, worker: WorkerSettings) -> WorkerSpec:
        """The worker of a model's detection settings (the filter's, or the labelling
        model's: :func:`framesift.detection.detector.labelling_settings`)."""
        options = DetectOptions.of(detection)
        return cls(str(detection.model), options, float(worker.idle_timeout))

    def to_json(self) -> str:
        data = {"model": self.model, "options": asdict(self.options)}
        return json.dumps({**data, "idle_timeout": self.idle_timeout}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        data = json.loads(text)
        options = {**data["options"], "classes": tuple(data["options"]["classes"])}
        return cls(data["model"], DetectOptions(**options), float(data["idle_timeout"]))

    def key(self) -> str:
        """Short hash of the model file (path, size, mtime) and every detection setting."""
        path = resolve_model_path(self.model)
        try:
            stat = os.stat(path)
            identity = [os.path.realpath(path), stat.st_size, stat.st_mtime_ns]
        except OSError:
            identity = [path]
        text = json.dumps([identity, asdict(self.options)], sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def socket_path(spec: WorkerSpec, owner: int | None) -> Path:
    """Relative to the working directory: short enough for AF_UNIX wherever the project is."""
    return RUNTIME_DIR / f"{host_name()}-{owner or 0}-{spec.key()}.sock"


def worker_log_path(spec: WorkerSpec) -> Path:
    """The log file of the worker for ``spec`` on this machine (relative to the working
    directory; not a job's log, ``framesift.core.layout.log_path``)."""
    return LOG_DIR / f"{host_name()}-{spec.key()}.log"


def private_dir(path: Path) -> Path:
    """Create ``path`` readable by this user only (the socket's permissions rest on it)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


class WorkerClient:
    """A FrameDetector backed by the worker for ``spec`` (started on first use if needed)."""

    def __init__(self, spec: WorkerSpec, owner: int | None = None):
        self.spec = spec
        self.owner = run_pid() if owner is None else owner
        self.address = socket_path(spec, self.owner)
        self.log_file = worker_log_path(spec)
        self._names: dict[int, str] | None = None
        self.device = ""
        self.stats: dict[str, float] = {}  # the worker's counters when this client last asked

    @property
    def names(self) -> dict[int, str]:
        """The model's class names (asks the worker once)."""
        if self._names is None:
            self.ping()
        return self._names or {}

    def ping(self) -> dict[str, float]:
        """Ask the worker (starting it if needed) for its counters: frames, batches, infer_s."""
        self._request({"op": "ping"}).close()
        return self.stats

    def detect_paths(
        self, frames: Sequence[Path], hashing: HashSpec | None = None
    ) -> Iterator[FrameResult]:
        """Stream ``frames`` through the worker; results come back in order. With ``hashing``
        the worker also hashes the frames that are due (docs/worker.md)."""
        frames = [Path(frame) for frame in frames]
        request: dict[str, Any] = {"op": "detect", "frames": [str(f.resolve()) for f in frames]}
        if hashing is not None:
            request["hash"] = asdict(hashing)
        channel = self._request(request)
        with channel:
            for frame in frames:
                answer = channel.read()
                if answer is None:
                    raise self._lost("it stopped mid-request")
                _raise_error(answer)
                if answer.get("unreadable"):
                    yield FrameResult(frame, 0, 0, None)
                    continue
                boxes = [Detection.from_dict(box) for box in answer["boxes"]]
                signature = None  # a missing one that was due: filter_frames raises
                if "hash" in answer:
                    signature = Signature(str(answer["hash"]), float(answer["sharpness"]))
                yield FrameResult(frame, int(answer["w"]), int(answer["h"]), boxes, signature)
            end = channel.read()
            if end is None or not end.get("done"):
                raise self._lost("it stopped before the end of the request")

    def start(self) -> None:
        """Make sure the worker runs (start it now, from this process, if needed)."""
        ensure_worker(self.spec, self.owner).close()

    def stop(self) -> bool:
        """Ask a running worker to exit; False when none was running."""
        return ask(self.address, "stop") is not None

    def _request(self, request: dict[str, Any]) -> _Channel:
        """Connect (starting the worker if needed), send ``request`` and read the header."""
        channel = _Channel(ensure_worker(self.spec, self.owner), self._lost)
        try:
            channel.send(request)
            header = channel.read()
            if header is None:
                raise self._lost("it closed the connection")
            _raise_error(header)
        except BaseException:
            channel.close()
            raise
        self._names = {int(k): v for k, v in header["names"].items()}
        self.device = header.get("device", "")
        self.stats = header.get("stats", {})
        return channel

    def _lost(self, what: str) -> DetectorFault:
        return DetectorFault(f"the detection worker failed: {what} (see {self.log_file})")


def connect(address: Path) -> socket.socket | None:
    """A connection to the worker at ``address``; None if nothing listens there."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(address))
    except OSError as error:
        connection.close()
        if error.errno in (errno.ENOENT, errno.ECONNREFUSED):
            return None
        raise
    connection.settimeout(ANSWER_TIMEOUT)
    return connection


def ask(address: Path, op: str) -> dict[str, Any] | None:
    """Send ``op`` ("ping" or "stop") to the worker at ``address``: its answer header, or None
    when no worker listens there (a socket left by a killed worker included)."""
    connection = connect(address)
    if connection is None:
        return None
    with _Channel(connection, lambda what: DetectorFault(f"worker {address}: {what}")) as channel:
        channel.send({"op": op})
        return channel.read()


def running_workers(directory: Path = Path(".")) -> list[tuple[Path, dict[str, Any]]]:
    """(socket, answer to a ping) of every worker of this machine that serves ``directory``
    (its working directory: call from there, socket paths are relative)."""
    found = []
    for address in sorted((directory / RUNTIME_DIR).glob(f"{host_name()}-*.sock")):
        answer = ask(address, "ping")
        if answer is not None:
            found.append((address, answer))
    return found


def ensure_worker(spec: WorkerSpec, owner: int | None) -> socket.socket:
    """Connect to the worker for ``spec``, starting one (only one, under a lock) if needed."""
    address = socket_path(spec, owner)
    connection = connect(address)
    if connection is not None:
        return connection
    private_dir(RUNTIME_DIR)
    with open(address.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        connection = connect(address)
        if connection is not None:
            return connection
        address.unlink(missing_ok=True)  # left by a killed worker: nothing listens on it
        process = start_worker(spec, owner, address)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            connection = connect(address)
            if connection is not None:
                return connection
            if process.poll() is not None:
                break
            time.sleep(0.05)
    log = worker_log_path(spec)
    raise DetectorFault(f"the detection worker did not start: {_log_tail(log)} (see {log})")


def start_worker(spec: WorkerSpec, owner: int | None, address: Path) -> subprocess.Popen:
    """Start a detached worker process for ``spec`` listening on ``address``."""
    log = worker_log_path(spec)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": library_pythonpath()}
    command = [sys.executable, "-m", "framesift.detection.worker", "--socket", str(address)]
    command += ["--spec", spec.to_json(), "--owner", str(owner or 0)]
    with open(log, "a") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,  # not killed with the job that started it; see docs
        )


class _Channel:
    """One request's connection: JSON lines out and in (buffered, so no line is lost)."""

    def __init__(self, connection: socket.socket, lost: Callable[[str], DetectorFault]):
        self.connection = connection
        self.reader = connection.makefile("rb")
        self.lost = lost

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.connection.sendall((json.dumps(message) + "\n").encode())
        except OSError as error:
            raise self.lost(f"the connection failed ({error})") from error

    def read(self) -> dict[str, Any] | None:
        """The next answer; None when the worker closed the connection."""
        try:
            line = self.reader.readline()
        except TimeoutError as error:
            raise self.lost(f"no answer in {ANSWER_TIMEOUT:.0f} s") from error
        except OSError:
            return None
        if not line.endswith(b"\n"):
            return None  # closed, possibly mid-line
        return json.loads(line)

    def close(self) -> None:
        self.reader.close()
        self.connection.close()

    def __enter__(self) -> _Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raise_error(answer: dict[str, Any]) -> None:
    if "error" in answer:
        raise DetectorFault(str(answer["error"]))


def _log_tail(path: Path) -> str:
    """The last non-empty line of the worker's log (why it failed to start)."""
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no log"
