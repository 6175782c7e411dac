"""Snakemake adapter: keep the frames of one video that show a wanted class (rule filter_frames)."""

import sys
import time
from pathlib import Path

from framesift.detect import DetectOptions, ModelError, load_model
from framesift.failures import EMPTY, FailureRecord, clear_record, write_record
from framesift.filter import filter_frames, write_empty
from framesift.frames import MANIFEST, read_manifest
from framesift.stagelog import run_stage


def main(smk, log):
    vid, settings = smk.wildcards.vid, smk.params.settings
    frames_dir, out_dir = Path(smk.input.frames), Path(smk.output.kept)
    if not read_manifest(frames_dir / MANIFEST):
        log.info(f"{vid}: no frames (an earlier stage failed); empty filtered folder")
        write_empty(out_dir, settings["model"])
        return
    options = DetectOptions.from_settings(settings)
    started = time.time()
    try:
        model = load_model(settings["model"])
        summary = filter_frames(frames_dir, out_dir, model, settings["model"], options)
    except ModelError as error:
        log.error(f"{vid}: {error}")
        sys.exit(1)
    log.info(f"{vid}: model window {started:.6f} {time.time():.6f}")  # GPU-exclusive span
    for name in summary.unreadable:
        log.warning(f"{vid}: frame {name} is unreadable and was skipped")
    log.info(f"{vid}: kept {summary.kept} of {summary.frames_in} frames")
    if summary.kept == 0:
        wanted = ", ".join(options.classes) or "any class"
        reason = f"no frame shows {wanted} (of {summary.frames_in} frames)"
        write_record(smk.params.failure, FailureRecord(vid, "filter", EMPTY, reason))
        log.warning(f"{vid}: {reason}; recorded")
    else:
        clear_record(smk.params.failure)


run_stage("filter_frames", main, snakemake)  # noqa: F821 - injected by Snakemake
