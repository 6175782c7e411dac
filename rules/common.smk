# Python helpers of the workflow: URL list -> video ids, input functions, run summary.
# (Kept apart from the rules, as `snakemake --lint` asks.)

import os
import sys
from pathlib import Path

# The library lives in this checkout's src/: importable here and in every job's script,
# even where the package is not installed (cluster nodes, conda environments).
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
# (a write, not a requirement: no `envvars:` needed)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (_SRC, os.getenv("PYTHONPATH")) if p)
)

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from framesift.config import config_problem
from framesift.failures import load_records
from framesift.urls import VIDEO_ID_PATTERN, read_url_file, youtube_id

_SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
_CONFIG_PROBLEM = config_problem(config, _SCHEMA)
if _CONFIG_PROBLEM:
    raise WorkflowError(f"{_CONFIG_PROBLEM} (see {_SCHEMA.name})")
validate(config, str(_SCHEMA))  # fills in the defaults


wildcard_constraints:
    vid=VIDEO_ID_PATTERN,


URL_LIST = read_url_file(config["urls"])
VIDEO_IDS = URL_LIST.ids
URL_OF = URL_LIST.url_of()
CONTAINER = config["download"]["container"]
for _problem in URL_LIST.problems:
    logger.warning(f"framesift: skipped URL line {_problem}")


def download_url(wildcards):
    """The URL to fetch for a video id: YouTube ids use the canonical watch URL."""
    try:
        url = URL_OF[wildcards.vid]
    except KeyError:
        raise ValueError(
            f"video id {wildcards.vid!r} is not in {config['urls']}: add its URL there"
        ) from None
    if youtube_id(url) == wildcards.vid:
        return f"https://www.youtube.com/watch?v={wildcards.vid}"
    return url


def download_format(wildcards):
    """Download settings that change the produced file (changing them re-downloads)."""
    return {
        "max_height": config["download"]["max_height"],
        "container": CONTAINER,
    }


def filter_model():
    """The filter model as configured (path or name)."""
    return config["filter"]["model"]


def print_run_summary():
    """Tell the user where failures are recorded, one line each."""
    records = load_records("results")
    if URL_LIST.problems:
        logger.warning(
            f"framesift: {len(URL_LIST.problems)} URL line(s) skipped; see results/report.md"
        )
    for record in records:
        logger.warning(
            f"framesift: {record.video_id}: {record.stage} {record.kind}: {record.reason}"
        )


def video_table(wildcards):
    """[video id, URL] rows for the dataset manifest and the report, in URL-file order."""
    return [[entry.video_id, entry.url] for entry in URL_LIST.entries]


def url_problems(wildcards):
    """Skipped URL lines as 'file:line: reason' strings, for the report."""
    return [str(problem) for problem in URL_LIST.problems]


def detect_settings(wildcards):
    """Labelling model settings with nulls resolved to the filter's values."""
    detect, flt = config["detect"], config["filter"]
    return {
        "model": detect["model"] or flt["model"],
        "reuse_filter": detect["model"] in (None, flt["model"]),
        "conf": flt["conf"] if detect["conf"] is None else detect["conf"],
        "imgsz": detect["imgsz"] or flt["imgsz"],
        "classes": flt["classes"],
        "min_box_area": flt["min_box_area"],
        "batch": flt["batch"],
        "device": flt["device"],
        "half": flt["half"],
    }
