"""Snakemake adapter: check the filter and labelling models and the classes (rule check_model),
before any download, and start the shared detection worker of each, so that it loads its model
while the videos download (docs/worker.md).

Class names come from the checkpoint itself when it can be read without torch (milliseconds);
otherwise the worker is asked, which waits for it to load the model.
"""

import json
import sys

from framesift.core.fsutil import atomic_write_text
from framesift.detection.client import WorkerClient, WorkerSpec
from framesift.detection.detector import ModelError, check_models, model_roles, resolve_model_path
from framesift.detection.model_names import checkpoint_names
from framesift.lifecycle.snakemake_job import job_settings, run_stage


def main(smk, log):
    settings = job_settings(smk)
    roles = model_roles(settings)  # role -> its model's detection settings

    def names_of(role):
        client = WorkerClient(WorkerSpec.of(roles[role], settings.worker))
        names = checkpoint_names(resolve_model_path(str(roles[role].model)))
        if names is None:
            return client.names  # waits for the worker to load the model
        client.start()  # loads the model in the background
        return names

    models = {role: str(detection.model) for role, detection in roles.items()}
    try:
        checked = check_models(models, settings.filter.classes, names_of)
    except ModelError as error:
        log.error(str(error))
        sys.exit(1)
    for role, entry in checked.items():
        names = ", ".join(entry["names"].values())
        log.info(f"{role} model {entry['model']} ({entry['path']}): {names}")
    atomic_write_text(smk.output.check, json.dumps(checked, indent=1) + "\n")


run_stage("check_model", main, snakemake)  # noqa: F821 - injected by Snakemake
