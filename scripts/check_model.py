"""Snakemake adapter: load the filter and labelling models once and check the classes
(rule check_model), before any download."""

import json
import sys

from framesift.detect import ModelError, check_models
from framesift.fsutil import atomic_write_text
from framesift.stagelog import run_stage


def main(smk, log):
    try:
        checked = check_models(smk.params.models, smk.params.classes)
    except ModelError as error:
        log.error(str(error))
        sys.exit(1)
    for role, entry in checked.items():
        names = ", ".join(entry["names"].values())
        log.info(f"{role} model {entry['model']} ({entry['path']}): {names}")
    atomic_write_text(smk.output.check, json.dumps(checked, indent=1) + "\n")


run_stage("check_model", main, snakemake)  # noqa: F821 - injected by Snakemake
