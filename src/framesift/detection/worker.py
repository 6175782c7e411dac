"""The shared detection worker: one model per machine per run, serving many filter jobs.

Started by ``framesift.detection.client`` as ``python -m framesift.detection.worker``; see
docs/worker.md for its lifetime and protocol. It binds its socket first (clients connect at
once), then loads the model. Connections each get a thread; a small pool decodes frames ahead
of inference (and hashes the frames that are due after it); one inference thread batches
decoded frames of the same shape across all connections.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import resource
import signal
import socket
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framesift.detection.client import WorkerSpec
from framesift.detection.detector import (
    DecodedFrame,
    Detection,
    Detector,
    DetectorFault,
    ModelError,
    load_model,
    read_frame,
    sign,
    signature_due,
)
from framesift.detection.run_owner import alive, start_time
from framesift.hashing.tables import HashSpec, Signature

POLL_SECONDS = 0.2  # how often the run's process and the idle clock are checked
DECODE_THREADS = max(2, min(8, len(os.sched_getaffinity(0))))  # Pillow decodes without the GIL
FILL_WAIT = 0.01  # seconds the inference thread waits for a batch to fill before running it

log = logging.getLogger("framesift.detection.worker")


@dataclass
class Request:
    """One client's detect request: answers arrive by frame index, leave in order."""

    answers: queue.Queue = field(default_factory=queue.Queue)
    failed: bool = False
    hashing: HashSpec | None = None  # hash and sharpness wanted (docs/worker.md)


@dataclass
class Item:
    request: Request
    index: int
    frame: DecodedFrame

    @property
    def image(self) -> Any:
        return self.frame.image


class Worker:
    """Model, batching and lifetime of one worker process."""

    def __init__(self, spec: WorkerSpec, owner: int):
        self.spec = spec
        self.owner = owner
        self.owner_started = start_time(owner)
        self.ready = threading.Event()
        self.detector: Detector | None = None
        self.load_error = ""
        self.items: queue.Queue[Item] = queue.Queue()
        # decoded frames waiting or in inference: bounded, so memory stays flat
        self.in_flight = threading.BoundedSemaphore(4 * max(1, spec.options.batch))
        self.decoder = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="decode")
        self.lock = threading.Lock()
        self.active = 0
        self.last_active = time.monotonic()
        self.stop_reason = ""
        self.frames = 0
        self.batches = 0
        self.infer_seconds = 0.0  # time inside the model (decoding overlaps it)

    # -- model and inference ---------------------------------------------------------------
    def load(self) -> None:
        started = time.monotonic()
        try:
            model = load_model(self.spec.model)
            try:
                self.detector = Detector(model, self.spec.options)
            except ModelError as error:  # the classes are not the model's
                raise ModelError(f"filter.classes: {error}") from None
            log.info(
                f"model {self.spec.model} loaded on {self.detector.device} "
                f"in {time.monotonic() - started:.1f} s"
            )
        except ModelError as error:
            self.load_error = f"the detection worker cannot use the model: {error}"
        except Exception as error:  # noqa: BLE001 - whatever loading raises is reported
            self.load_error = f"the detection worker cannot load the model: {error}"
        if self.load_error:
            log.error(self.load_error)
        self.ready.set()
        if self.detector is not None:
            threading.Thread(target=self.infer_forever, name="infer", daemon=True).start()

    def infer_forever(self) -> None:
        self.warm_up()
        pending: deque[Item] = deque()
        while True:
            if not pending:
                pending.append(self.items.get())
            shape = pending[0].image.shape
            batch = self._take_batch(pending, shape, self.spec.options.batch)
            if len(batch) < self.spec.options.batch:
                time.sleep(FILL_WAIT)  # decoders may be about to add frames of the same shape
                batch += self._take_batch(pending, shape, self.spec.options.batch - len(batch))
            self._run(batch)

    def warm_up(self) -> None:
        """One blank frame through the model before any request: the framework's lazy imports
        and the device's set-up (seconds) are paid while the run downloads and extracts, not
        by the first filter job."""
        import numpy as np

        assert self.detector is not None
        started = time.monotonic()
        size = self.spec.options.imgsz
        try:
            self.detector.detect([np.zeros((size, size, 3), dtype=np.uint8)])
        except Exception as error:  # noqa: BLE001 - the real requests will report it
            log.error(f"warm-up failed: {error}")
        log.info(f"warmed up in {time.monotonic() - started:.1f} s")

    def _take_batch(self, pending: deque[Item], shape: tuple, size: int) -> list[Item]:
        """Up to ``size`` waiting items of ``shape``, oldest first (a batch never mixes frame
        sizes: ultralytics would letterbox them differently from one video's own batch)."""
        while True:
            try:
                pending.append(self.items.get_nowait())
            except queue.Empty:
                break
        batch = [item for item in pending if item.image.shape == shape][:size]
        for item in batch:
            pending.remove(item)
        return batch

    def _run(self, batch: list[Item]) -> None:
        """Infer one batch; every item's slot is freed and its answer sent, whatever happens."""
        if not batch:
            return
        assert self.detector is not None
        live = [item for item in batch if not item.request.failed]
        started = time.perf_counter()
        try:
            results: list[Any] = self.detector.detect([item.image for item in live])
        except Exception as error:  # noqa: BLE001 - DetectorFault, or anything unexpected
            fault = error if isinstance(error, DetectorFault) else DetectorFault(repr(error))
            log.error(str(fault))
            results = [fault] * len(live)
        answers = dict(zip(map(id, live), results, strict=True))
        self.infer_seconds += time.perf_counter() - started
        self.batches += 1
        self.frames += len(live)
        for item in batch:
            answer = answers.get(id(item))
            hashing = item.request.hashing
            if isinstance(answer, tuple) and signature_due(hashing, answer[2]):
                self.decoder.submit(self.hash_then_send, item, answer)  # off the inference thread
            else:
                self._send(item.request, item.index, answer)

    def hash_then_send(self, item: Item, answer: tuple[int, int, list[Detection]]) -> None:
        """Hash a frame after inference (a decode-pool thread), then send its answer."""
        try:
            signed: Any = (*answer, sign(item.frame, answer[2], item.request.hashing))
        except Exception as error:  # noqa: BLE001 - a decoded frame that cannot be hashed
            signed = DetectorFault(f"hashing failed: {type(error).__name__}: {error}")
            log.error(str(signed))
        self._send(item.request, item.index, signed)

    def _send(self, request: Request, index: int, answer: Any) -> None:
        """Free the frame's in-flight slot and hand its answer to its connection."""
        self.in_flight.release()
        request.answers.put((index, answer))

    def decode(self, request: Request, index: int, path: str) -> None:
        """Decode one frame for inference; an undecodable one is answered at once."""
        try:
            keep_gray = request.hashing is not None
            frame = None if request.failed else read_frame(Path(path), keep_gray)
        except Exception:  # noqa: BLE001 - an undecodable frame is reported as such
            frame = None
        if frame is None:
            self._send(request, index, None)
        else:
            self.items.put(Item(request, index, frame))

    # -- connections -----------------------------------------------------------------------
    def serve(self, connection: socket.socket) -> None:
        with self.lock:
            self.active += 1
        try:
            with connection, connection.makefile("rwb") as stream:
                line = stream.readline()
                if line:
                    self._answer(json.loads(line), stream)
        except (OSError, ValueError) as error:
            log.info(f"a client went away: {error}")
        finally:
            with self.lock:
                self.active -= 1
                self.last_active = time.monotonic()

    def _answer(self, request: dict[str, Any], stream: Any) -> None:
        self.ready.wait()
        if self.detector is None:
            _write(stream, {"error": self.load_error})
            return
        names = {str(k): v for k, v in self.detector.class_names.items()}
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stats = {"frames": self.frames, "batches": self.batches, "infer_s": self.infer_seconds}
        stats["peak_rss_mb"] = round(peak_mb, 1)
        header = {"names": names, "device": self.detector.device, "model": self.spec.model}
        _write(stream, {**header, "stats": stats})
        op = request.get("op")
        if op == "stop":
            self.stop_reason = "asked to stop"
        elif op == "detect":
            hashing = HashSpec(**request["hash"]) if request.get("hash") else None
            self._detect(list(request["frames"]), stream, hashing)

    def _detect(self, frames: list[str], stream: Any, hashing: HashSpec | None) -> None:
        """Answer one request frame by frame, in order, decoding ahead within the bound."""
        request = Request(hashing=hashing)
        started = time.monotonic()
        submitted = received = 0
        done: dict[int, Any] = {}
        try:
            for index in range(len(frames)):
                while index not in done:
                    submitted = self._submit(request, frames, submitted, submitted == received)
                    if submitted > received:
                        got, answer = request.answers.get()
                        done[got] = answer
                        received += 1
                answer = done.pop(index)
                if isinstance(answer, DetectorFault):
                    request.failed = True
                    _write(stream, {"error": str(answer)})
                    return
                _write(stream, _frame_answer(answer))
            _write(stream, {"done": True})
        except OSError:
            request.failed = True  # the client went away: its queued frames are skipped
            raise
        finally:
            log.info(f"{len(frames)} frames answered in {time.monotonic() - started:.2f} s")

    def _submit(self, request: Request, frames: list[str], submitted: int, block: bool) -> int:
        """Hand frames to the decoders while in-flight slots are free; the new count."""
        while submitted < len(frames) and self.in_flight.acquire(blocking=block):
            self.decoder.submit(self.decode, request, submitted, frames[submitted])
            submitted += 1
            block = False
        return submitted

    # -- lifetime --------------------------------------------------------------------------
    def should_stop(self, idle_timeout: float) -> str:
        if self.stop_reason:
            return self.stop_reason
        if self.load_error:  # once the waiting clients have their answer
            with self.lock:
                if self.active == 0:
                    return "the model cannot be loaded"
        if self.owner and not alive(self.owner, self.owner_started):
            return f"its run (process {self.owner}) ended"
        with self.lock:
            idle = self.active == 0 and time.monotonic() - self.last_active > idle_timeout
        return f"idle for {idle_timeout:g} s" if idle else ""


def _frame_answer(answer: tuple | None) -> dict[str, Any]:
    """One frame's line: size and boxes (and hash and sharpness when computed)."""
    if answer is None:
        return {"unreadable": True}
    width, height, found, *rest = answer
    line = {"w": width, "h": height, "boxes": [d.as_dict() for d in found]}
    signature: Signature | None = rest[0] if rest else None
    if signature is not None:
        line.update(hash=signature.hash_hex, sharpness=signature.sharpness)
    return line


def _write(stream: Any, message: dict[str, Any]) -> None:
    stream.write((json.dumps(message) + "\n").encode())
    stream.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m framesift.detection.worker")
    parser.add_argument("--socket", required=True, type=Path)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--owner", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s worker {os.getpid()}: %(message)s",
        stream=sys.stderr,
    )
    spec = WorkerSpec.from_json(args.spec)
    worker = Worker(spec, args.owner)
    os.umask(0o077)  # the socket is this user's only
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(args.socket))
    listener.listen(128)
    listener.settimeout(POLL_SECONDS)
    identity = os.stat(args.socket).st_ino
    log.info(
        f"listening on {args.socket} for run {args.owner or '-'}, started by process "
        f"{os.getppid()}: {args.spec}"
    )
    signal.signal(signal.SIGTERM, lambda *_: setattr(worker, "stop_reason", "SIGTERM"))
    threading.Thread(target=worker.load, name="load", daemon=True).start()
    reason = ""
    while not reason:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            pass
        else:
            with worker.lock:
                worker.last_active = time.monotonic()
            threading.Thread(target=worker.serve, args=(connection,), daemon=True).start()
        reason = worker.should_stop(spec.idle_timeout)
    listener.close()
    try:
        if os.stat(args.socket).st_ino == identity:
            args.socket.unlink()
            args.socket.with_suffix(".lock").unlink(missing_ok=True)
    except OSError:
        pass
    log.info(
        f"exiting: {reason}; served {worker.frames} frames in {worker.batches} batches, "
        f"{worker.infer_seconds:.2f} s of inference"
    )
    logging.shutdown()
    os._exit(0)  # connection threads are daemons; nothing else to wait for


if __name__ == "__main__":
    sys.exit(main())
