"""Snakemake adapter: cross-video dedup, labels, dataset and report (rule build_dataset)."""

import json
import sys

from framesift.core.fsutil import atomic_write_text
from framesift.core.layout import Layout, remove_staging
from framesift.dataset.build import build
from framesift.detection.client import WorkerClient, WorkerSpec
from framesift.detection.detector import DetectorFault, ModelError, labelling_settings
from framesift.lifecycle.records import archive_removed, failures_of
from framesift.lifecycle.snakemake_job import job_settings, run_stage
from framesift.report.html import write_html_report
from framesift.report.markdown import render_markdown, summary_dict, video_titles


def main(smk, log):
    settings = job_settings(smk)
    layout = Layout.from_settings(settings)
    videos = [tuple(row) for row in smk.params.videos]
    ids = [vid for vid, _ in videos]
    try:
        result = build(
            videos,
            layout,
            settings.dedup,
            settings.dataset,
            labelling_settings(settings.filter, settings.detect),
            log,
            detector_for=lambda detection: WorkerClient(WorkerSpec.of(detection, settings.worker)),
        )
    except (ModelError, DetectorFault) as error:
        log.error(str(error))
        sys.exit(1)
    for vid in archive_removed(layout, keep=ids):
        log.info(f"{vid}: no longer in the URL file; its records moved to state/removed/")
    for folder in layout.stage_folders():  # every per-video job of this run has ended
        for leftover in remove_staging(folder):
            log.info(f"removed a leftover of an interrupted run: {leftover}")
    summary = summary_dict(result, failures_of(layout, ids), smk.params.url_problems)
    atomic_write_text(smk.output.summary, json.dumps(summary, indent=1) + "\n")
    atomic_write_text(smk.output.report, render_markdown(summary, video_titles(layout, ids)))
    log.info(f"HTML report: {write_html_report(layout, videos, summary)}")
    if result.dataset.get("warning"):
        log.warning(result.dataset["warning"])
    totals = summary["totals"]
    log.info(
        f"dataset: {totals['in_dataset']} images from {totals['frames']} frames "
        f"({totals['filtered']} kept by the filter); labels reused {result.labels_reused}, "
        f"computed {result.labels_computed}"
    )


run_stage("build_dataset", main, snakemake)  # noqa: F821 - injected by Snakemake
