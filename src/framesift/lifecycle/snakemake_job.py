"""Logging for the script adapters: details to the rule log file, one line to stderr."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from framesift.core.layout import Layout
from framesift.core.settings import Settings
from framesift.core.stage_table import stage_named
from framesift.lifecycle.jobs import StageJob
from framesift.lifecycle.states import read_info


def stage_logger(log_path: str | Path, stage: str) -> logging.Logger:
    """A logger writing everything to ``log_path`` and warnings and errors to stderr.

    A log write that fails (a full disk) is dropped, not dumped as ``--- Logging error ---``:
    the one-line error on stderr still says what happened."""
    logging.raiseExceptions = False
    logger = logging.getLogger(f"framesift.{stage}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.handlers.clear()
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log_path, mode="w")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setLevel(logging.WARNING)
    to_stderr.setFormatter(logging.Formatter(f"framesift {stage}: %(message)s"))
    logger.addHandler(to_file)
    logger.addHandler(to_stderr)
    return logger


def run_stage(stage: str, body: Callable[[Any, logging.Logger], None], smk: Any) -> None:
    """Run a script body; an unexpected error becomes one stderr line (traceback in the log)."""
    logger = stage_logger(smk.log[0], stage)
    try:
        body(smk, logger)
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001 - reported, then the job fails
        try:
            with open(smk.log[0], "a") as log_file:
                traceback.print_exc(file=log_file)
            details = f" (details: {smk.log[0]})"
        except OSError:  # the log cannot be written either (a full disk): no pointer to it
            details = ""
        wildcards = dict(smk.wildcards.items())
        which = ",".join(f"{k}={v}" for k, v in wildcards.items())
        logger.error(f"{which + ': ' if which else ''}{type(error).__name__}: {error}{details}")
        sys.exit(1)


def job_settings(smk: Any) -> Settings:
    """The run's typed settings, from the config Snakemake validated: built once per job."""
    return Settings.from_config(smk.config)


def stage_job(smk: Any, stage: str, settings: Settings | None = None) -> StageJob:
    """The :class:`StageJob` of a per-video rule's job, from Snakemake's script object."""
    settings = settings or job_settings(smk)
    layout = Layout.from_settings(settings)
    vid = smk.wildcards.vid
    url = smk.params.get("url") or read_info(layout, vid).get("url", "")
    return StageJob(
        stage=stage,
        video_id=vid,
        url=url,
        layout=layout,
        max_attempts=settings.retry.max_attempts,
        generation=int(smk.params.generation),
        attempt=int(smk.resources.get("attempt", 1)),
        in_run_attempts=stage_named(stage).in_run_retries(settings) + 1,
    )
