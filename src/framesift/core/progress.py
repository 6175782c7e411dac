"""Progress lines for long steps, throttled, so that ``tail -f logs/<rule>/<vid>.log`` shows a
live job: frames done and frames/s for extraction and filtering, percent and speed for
downloads."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

EVERY = 2.0  # seconds between two progress lines of one job


class Progress:
    """Counts work items and logs ``<what>: n[/total] <unit> (r <unit>/s)`` every ``every`` s."""

    def __init__(
        self,
        log: logging.Logger | None,
        what: str,
        total: int | None = None,
        unit: str = "frames",
        every: float = EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.what, self.total, self.unit = log, what, total, unit
        self.every, self.clock = every, clock
        self.started = self.last = clock()
        self.done = 0

    def line(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        return f"{self.what}: {count} {self.unit} ({self.done / elapsed:.1f} {self.unit}/s)"

    def advance(self, count: int = 1) -> None:
        """Add ``count`` finished items; log when ``every`` seconds passed since the last line."""
        self.done += count
        now = self.clock()
        if self.log is not None and now - self.last >= self.every:
            self.last = now
            self.log.info(self.line())

    def finish(self) -> None:
        """Log the final count and rate."""
        if self.log is not None:
            self.log.info(self.line() + ", done")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def download_hook(
    log: logging.Logger, every: float = EVERY, clock: Callable[[], float] = time.monotonic
) -> Callable[[dict[str, Any]], None]:
    """A yt-dlp progress hook logging percent, size and speed every ``every`` seconds."""
    last = [-every]

    def hook(status: dict[str, Any]) -> None:
        now = clock()
        finished = status.get("status") == "finished"
        if not finished and now - last[0] < every:
            return
        last[0] = now
        done = status.get("downloaded_bytes") or 0
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        text = f"download: {_size(done)}"
        if total:
            text = f"download: {100 * done / total:.1f}% of {_size(total)}"
        if status.get("speed"):
            text += f" at {_size(status['speed'])}/s"
        if status.get("eta") is not None and not finished:
            text += f", ETA {status['eta']:.0f} s"
        log.info(text + (", done" if finished else ""))

    return hook
