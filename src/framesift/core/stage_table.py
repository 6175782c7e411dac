"""The stage table: one definition of each stage of the pipeline.

Each stage has a name (used in records, logs of ``framesift status``, ``retry-failed --stage``),
the Snakemake rule (and script) that runs it, the per-video results it writes (names of
:class:`framesift.core.layout.Layout` methods), the stage before it, the word ``framesift status``
shows once it is done, and where its in-run retries come from. The layout, the lifecycle, the
job runner, status and the report read it from here.

Rules, scripts and log folders use the rule name; the results folders keep their names
(``videos/``, ``frames/``, ``filtered/`` + ``hashes/``, ``dataset/``) so that existing projects
stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass

from framesift.core.settings import Settings


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline."""

    name: str
    rule: str  # also the script (scripts/<rule>.py) and the log folder (logs/<rule>/)
    results: tuple[str, ...]  # Layout methods giving its per-video outputs
    upstream: str | None  # the stage whose result it works on
    done_state: str  # what `framesift status` calls a video whose last finished stage it is
    per_video: bool = True

    def in_run_retries(self, settings: Settings) -> int:
        """Snakemake's in-run retries of this stage's jobs (the rule's ``retries:``)."""
        return settings.download.job_retries if self.name == "download" else 0


DOWNLOAD = Stage("download", "download_video", ("video", "info"), None, "downloaded")
FRAMES = Stage("frames", "extract_frames", ("frames",), "download", "frames")
FILTER = Stage(
    "filter", "filter_frames", ("filtered", "hashes", "negative_hashes"), "frames", "filtered"
)
AGGREGATE = Stage("aggregate", "build_dataset", (), "filter", "in dataset", per_video=False)

PER_VIDEO_STAGES: tuple[Stage, ...] = (DOWNLOAD, FRAMES, FILTER)
STAGES: tuple[str, ...] = tuple(stage.name for stage in PER_VIDEO_STAGES)
ALL_STAGES: tuple[Stage, ...] = (*PER_VIDEO_STAGES, AGGREGATE)
_BY_NAME = {stage.name: stage for stage in ALL_STAGES}


def stage_named(name: str) -> Stage:
    """The stage called ``name`` (KeyError names the known ones)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no stage {name!r}; stages: {', '.join(_BY_NAME)}") from None
