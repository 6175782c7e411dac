"""The results layout: every path a stage, command or report uses, defined once.

Paths are relative to the working directory (Snakemake's ``--directory``). Methods take a video
id; rules pass the wildcard text ``"{vid}"`` and get the pattern back.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from framesift.core.settings import Settings
from framesift.core.stage_table import PER_VIDEO_STAGES, stage_named

STAGING_MARKERS = (".tmp-", ".old-", ".download")


@dataclass(frozen=True)
class Layout:
    """Where everything lives under ``root`` (``results``), logs and benchmarks beside it."""

    root: Path = Path("results")
    container: str = "mp4"

    @classmethod
    def from_settings(cls, settings: Settings, root: str | Path = "results") -> Layout:
        """The layout for typed settings (the container decides the video's name)."""
        return cls(Path(root), settings.download.container)

    def _p(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    # per video, per stage
    def video(self, vid: str) -> Path:
        return self._p("videos", f"{vid}.{self.container}")

    def info(self, vid: str) -> Path:
        return self._p("videos", f"{vid}.info.json")

    def frames(self, vid: str) -> Path:
        return self._p("frames", vid)

    def filtered(self, vid: str) -> Path:
        return self._p("filtered", vid)

    def hashes(self, vid: str) -> Path:
        return self._p("hashes", f"{vid}.tsv")

    def negative_hashes(self, vid: str) -> Path:
        """Hashes of the frames the filter dropped (candidate negatives; empty when off)."""
        return self._p("hashes", f"{vid}.negatives.tsv")

    def record(self, stage: str, vid: str) -> Path:
        """The lifecycle record of ``vid`` at ``stage`` (see framesift.lifecycle.records)."""
        return self._p("state", stage, f"{vid}.json")

    def removed_records(self) -> Path:
        """Where records of videos no longer in the URL file are moved."""
        return self._p("state", "removed")

    def stage_outputs(self, stage: str, vid: str) -> list[Path]:
        """The result paths of ``vid`` at ``stage`` (files or folders; see the stage table)."""
        return [getattr(self, result)(vid) for result in stage_named(stage).results]

    # whole run
    @property
    def run_record(self) -> Path:
        """What the last run resolved: config files, URL file, folders (core.run_record)."""
        return self._p("state", "run.json")

    @property
    def model_check(self) -> Path:
        return self._p("state", "model.json")

    @property
    def dataset(self) -> Path:
        return self._p("dataset")

    @property
    def data_yaml(self) -> Path:
        return self._p("dataset", "data.yaml")

    @property
    def manifest(self) -> Path:
        return self._p("dataset", "manifest.csv")

    @property
    def clusters(self) -> Path:
        return self._p("dedup", "clusters.tsv")

    @property
    def labels_cache(self) -> Path:
        return self._p("labels_cache")

    @property
    def report(self) -> Path:
        return self._p("report.md")

    @property
    def summary(self) -> Path:
        return self._p("summary.json")

    @property
    def report_dir(self) -> Path:
        """The HTML report's folder (``index.html``, ``thumbs/``, its previous-run state)."""
        return self._p("report")

    @property
    def report_html(self) -> Path:
        return self._p("report", "index.html")

    def stage_folders(self) -> list[Path]:
        """Folders that hold per-video results (and may hold staging leftovers)."""
        outputs = (self.stage_outputs(stage.name, "x") for stage in PER_VIDEO_STAGES)
        return sorted({path.parent for paths in outputs for path in paths})


def log_path(rule: str, vid: str | None = None) -> str:
    """A rule's log file (per video when ``vid`` is given)."""
    return f"logs/{rule}/{vid}.log" if vid is not None else f"logs/{rule}.log"


def benchmark_path(rule: str, vid: str | None = None) -> str:
    """A rule's Snakemake benchmark file (per video when ``vid`` is given)."""
    return f"benchmarks/{rule}/{vid}.tsv" if vid is not None else f"benchmarks/{rule}.tsv"


def is_staging(path: Path) -> bool:
    """True for a hidden staging leftover (``.{name}.tmp-*``, ``.old-*``, ``.download``)."""
    name = path.name
    marked = name.endswith(".tmp") or any(m in name for m in STAGING_MARKERS)
    return name.startswith(".") and marked


def staging_leftovers(folder: Path, prefix: str = ".") -> list[Path]:
    """Staging leftovers in ``folder`` whose names start with ``prefix``."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if is_staging(p) and p.name.startswith(prefix))


def remove_staging(folder: Path, prefix: str = ".") -> list[Path]:
    """Delete the staging leftovers :func:`staging_leftovers` finds; return what was removed."""
    removed = staging_leftovers(folder, prefix)
    for leftover in removed:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    return removed
