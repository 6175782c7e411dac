"""Snakemake adapter: cross-video dedup, labels, dataset and report (rule build_dataset)."""

import json
import sys
from pathlib import Path

from framesift.aggregate import build
from framesift.detect import ModelError
from framesift.failures import load_records
from framesift.fsutil import atomic_write_text
from framesift.report import render_markdown, summary_dict
from framesift.stagelog import run_stage


def main(smk, log):
    results = Path(smk.output.data_yaml).parents[1]
    videos = [tuple(row) for row in smk.params.videos]
    try:
        result = build(
            videos,
            results,
            smk.params.dedup,
            smk.params.dataset,
            smk.params.detect,
            Path(smk.output.clusters),
            log,
        )
    except ModelError as error:
        log.error(str(error))
        sys.exit(1)
    summary = summary_dict(result, load_records(results), smk.params.url_problems)
    atomic_write_text(smk.output.summary, json.dumps(summary, indent=1) + "\n")
    atomic_write_text(smk.output.report, render_markdown(summary))
    totals = summary["totals"]
    log.info(
        f"dataset: {totals['in_dataset']} images from {totals['frames']} frames "
        f"({totals['filtered']} kept by the filter); labels reused {result.labels_reused}, "
        f"computed {result.labels_computed}"
    )


run_stage("build_dataset", main, snakemake)  # noqa: F821 - injected by Snakemake
