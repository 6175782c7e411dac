"""Typed settings: one frozen dataclass per config section, built once from the validated config.

The packaged schema (``config.schema.yaml``) is the only place defaults live: these classes have
none of their own, and :meth:`Settings.from_config` takes a config whose defaults the schema
validation filled in (Snakemake's ``validate`` in the workflow, :func:`framesift.core.config.
resolve_config` outside it). A job builds its :class:`Settings` at its entry and passes the
sections down; no module below re-reads config dicts. ``tests/unit/test_settings.py`` checks that
every schema key has a field here and every field a schema key.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T")


def _section(cls: type[T], data: dict[str, Any]) -> T:
    """``cls`` from one config section (keys exactly the fields; lists become tuples)."""
    values = {f.name: data[f.name] for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@dataclass(frozen=True)
class DownloadSettings:
    """Config section ``download``."""

    max_height: int
    container: str
    socket_timeout: float
    retries: int
    timeout: float
    rate_limit: str | None
    cookies: str | None
    cookies_from_browser: str | None
    js_runtime: str
    proxy: str | None
    sleep_interval: float
    job_retries: int
    local: bool


@dataclass(frozen=True)
class RetrySettings:
    """Config section ``retry``."""

    max_attempts: int


@dataclass(frozen=True)
class WorkerSettings:
    """Config section ``worker``."""

    idle_timeout: float


@dataclass(frozen=True)
class FrameSettings:
    """Config section ``frames``."""

    mode: str
    fps: float
    interval: float
    scene_threshold: float
    max_frames: int
    max_width: int
    jpeg_qscale: int


@dataclass(frozen=True)
class FilterSettings:
    """Config section ``filter``."""

    model: str | None
    classes: tuple[str, ...]
    conf: float
    min_box_area: float
    imgsz: int
    batch: int
    device: str
    half: bool


@dataclass(frozen=True)
class HashSettings:
    """Config section ``hash``."""

    type: str
    size: int
    consecutive_threshold: int


@dataclass(frozen=True)
class DedupSettings:
    """Config section ``dedup``."""

    threshold: int
    prefer: str


@dataclass(frozen=True)
class LabelSettings:
    """Config section ``detect``: the labelling model (nulls: the filter's value)."""

    model: str | None
    conf: float | None
    imgsz: int | None


@dataclass(frozen=True)
class DatasetSettings:
    """Config section ``dataset``."""

    val_fraction: float
    seed: int
    allow_empty: bool
    max_per_video: int
    max_per_class: int
    negatives: float


SECTIONS: dict[str, type] = {
    "download": DownloadSettings,
    "retry": RetrySettings,
    "worker": WorkerSettings,
    "frames": FrameSettings,
    "filter": FilterSettings,
    "hash": HashSettings,
    "dedup": DedupSettings,
    "detect": LabelSettings,
    "dataset": DatasetSettings,
}


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration, typed."""

    urls: str
    download: DownloadSettings
    retry: RetrySettings
    worker: WorkerSettings
    frames: FrameSettings
    filter: FilterSettings
    hash: HashSettings
    dedup: DedupSettings
    detect: LabelSettings
    dataset: DatasetSettings

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        """From a validated config with its defaults filled in (KeyError: it was not)."""
        sections = {name: _section(kind, config[name]) for name, kind in SECTIONS.items()}
        return cls(urls=str(config["urls"]), **sections)
