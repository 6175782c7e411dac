"""Snakemake adapter: check the filter and labelling models and the classes (rule check_model),
before any download. The models are asked through the shared detection worker, which this
starts, so the run's filter jobs find it warm (docs/worker.md)."""

import json
import sys

from framesift.detect import ModelError, check_models
from framesift.fsutil import atomic_write_text
from framesift.stagelog import run_stage
from framesift.worker_client import WorkerClient, WorkerSpec


def main(smk, log):
    settings = smk.params.settings  # role -> detection settings

    def names_of(role):
        return WorkerClient(WorkerSpec.from_settings(settings[role], smk.params.idle_timeout)).names

    models = {role: entry["model"] for role, entry in settings.items()}
    try:
        checked = check_models(models, smk.params.classes, names_of)
    except ModelError as error:
        log.error(str(error))
        sys.exit(1)
    for role, entry in checked.items():
        names = ", ".join(entry["names"].values())
        log.info(f"{role} model {entry['model']} ({entry['path']}): {names}")
    atomic_write_text(smk.output.check, json.dumps(checked, indent=1) + "\n")


run_stage("check_model", main, snakemake)  # noqa: F821 - injected by Snakemake
