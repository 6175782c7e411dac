# Python helpers of the workflow: URL list -> video ids, input functions, run summary.
# (Kept apart from the rules, as `snakemake --lint` asks.)

import atexit
import os
import sys
from pathlib import Path

# The library lives in this checkout's src/: importable here and in every job's script,
# even where the package is not installed (cluster nodes, conda environments).
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
from framesift.core.pythonpath import library_pythonpath

# (a write, not a requirement: no `envvars:` needed)
os.environ.update(PYTHONPATH=library_pythonpath(root=_SRC))

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from framesift.core.config import SCHEMA, config_problem
from framesift.core.layout import Layout, benchmark_path, log_path
from framesift.core.run_record import RunRecord, write_run_record
from framesift.core.settings import Settings
from framesift.core.stage_table import stage_named
from framesift.core.urls import (
    VIDEO_ID_PATTERN,
    UrlFileMissing,
    read_url_file,
    youtube_id,
)
from framesift.detection.client import WorkerClient, WorkerSpec
from framesift.detection.detector import (
    DetectorFault,
    labelling_settings,
    model_roles,
    resolve_model_path,
    uses_detector,
)
from framesift.detection.run_owner import claim_run
from framesift.lifecycle.records import generation as retry_generation
from framesift.lifecycle.states import summary_lines, video_states
from framesift.stages.download import DEFAULT_DOWNLOADS
from framesift.stages.jsruntime import JsRuntimeMissing, resolve_js_runtime

# The shared detection worker lives as long as the Snakemake process that owns the run on
# this machine (the main one; in a SLURM job, the job's own): see docs/worker.md
_OWNS_RUN = claim_run()

# The schema ships inside the package (the only source of defaults); validate takes its path
_CONFIG_PROBLEM = config_problem(config, SCHEMA)
if _CONFIG_PROBLEM:
    raise WorkflowError(f"{_CONFIG_PROBLEM} (see {SCHEMA.name})")
validate(config, str(SCHEMA))  # fills in the defaults
SETTINGS = Settings.from_config(config)  # typed, once

# What this run resolved (config files, URL file, results), for framesift status, doctor, watch
if workflow.is_main_process:
    write_run_record(RunRecord.of_snakemake(workflow, config))


def target_rules():
    """Rules of the jobs this Snakemake was started for: `--target-jobs rule:wildcards ...`,
    given to a cluster job's Snakemake (whose settings are only set after parsing)."""
    rules, listing = set(), False
    for arg in sys.argv[1:]:
        if arg.startswith("-"):
            listing = arg == "--target-jobs"
        elif listing:
            rules.add(arg.split(":", 1)[0])
    return rules


def start_job_worker():
    """In a SLURM job that runs filter jobs (the `gpu` group), the job's own Snakemake starts
    the filter worker before the jobs' steps: a worker started from a step (srun) would die with
    it where SLURM kills a step's processes (proctrack/cgroup); see docs/worker.md."""
    wanted = "filter_frames" in target_rules()
    if not wanted or not uses_detector(SETTINGS.filter.model):
        return
    try:
        WorkerClient(WorkerSpec.of(SETTINGS.filter, SETTINGS.worker)).start()
    except DetectorFault:
        pass  # the filter jobs start it themselves and report why it cannot run


if _OWNS_RUN and workflow.remote_exec:
    start_job_worker()


# Concurrent downloads: `--resources downloads=N` (or a profile's `resources:`) sets the bound;
# without it, DEFAULT_DOWNLOADS holds, so `--cores 32` never opens 32 connections to one site.
# (A resource Snakemake is not given is unlimited, and a profile's `resources:` would be
# replaced by any `--resources` on the command line, such as the README's `gpu=1`.)
if "downloads" not in workflow.global_resources:
    workflow.register_resource("downloads", DEFAULT_DOWNLOADS)

# A JavaScript runtime named in the config but missing stops the run before any download, in
# one line (`auto` never does: it falls back to none, which only YouTube needs)
if workflow.is_main_process and SETTINGS.download.js_runtime != "auto":
    try:
        resolve_js_runtime(SETTINGS.download.js_runtime)
    except JsRuntimeMissing as _missing:
        raise WorkflowError(f"framesift: {_missing} (see framesift doctor)") from None


wildcard_constraints:
    vid=VIDEO_ID_PATTERN,


try:
    URL_LIST = read_url_file(config["urls"])
except UrlFileMissing as _missing:
    raise WorkflowError(f"framesift: {_missing}") from None
VIDEO_IDS = URL_LIST.ids
URL_OF = URL_LIST.url_of()
LAYOUT = Layout.from_settings(SETTINGS)
_WORKDIR = Path.cwd()  # Snakemake may change directory before the end-of-run summary
for _problem in URL_LIST.problems:
    logger.warning(f"framesift: skipped URL line {_problem}")


def _check_results_writable():
    """One line naming the results folder when it cannot be written (not a traceback wall)."""
    root = _WORKDIR / LAYOUT.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise WorkflowError(
            f"framesift: cannot write to the results folder {str(LAYOUT.root)!r} "
            f"({error.strerror or error}): fix its permissions or free some disk space, "
            "then run again"
        ) from None


if workflow.is_main_process and not workflow.dryrun:
    _check_results_writable()


def _dataset_images():
    """How many images the existing dataset holds (0 when there is none)."""
    return sum(1 for _ in LAYOUT.dataset.glob("images/*/*"))


def _empty_url_file_message():
    """What to tell the user when the URL file names no video (None: go ahead)."""
    if VIDEO_IDS:
        return None
    where = config["urls"]
    images = _dataset_images()
    if images and not config["dataset"]["allow_empty"]:
        return (
            f"framesift: {where} lists no video; the existing dataset ({images} images) is "
            "left as it is (set dataset.allow_empty: true to replace it with an empty one)"
        )
    if not images:
        return (
            f"framesift: {where} lists no video: add video URLs there (one per line), "
            "or run `make demo` for an offline demo"
        )
    return None


_EMPTY_MESSAGE = _empty_url_file_message()
if _EMPTY_MESSAGE and workflow.is_main_process:
    logger.warning(_EMPTY_MESSAGE)


def final_targets(wildcards):
    """The dataset and report, unless the URL file is empty (then nothing, see above)."""
    if _EMPTY_MESSAGE:
        return []
    return [str(LAYOUT.data_yaml), str(LAYOUT.report)]


def generation_of(stage):
    """Input function: the retry generation of a stage's job (see framesift.lifecycle.records)."""

    def generation(wildcards):
        return retry_generation(LAYOUT, stage, wildcards.vid)

    return generation


def job_attempt(wildcards, attempt):
    """Snakemake's in-run attempt of a job, handed to the script as a resource."""
    return attempt


def job_retries(stage):
    """In-run retries of a stage's job (one owner: the stage table)."""
    return stage_named(stage).in_run_retries(SETTINGS)


def model_specs(wildcards=None):
    """Model role -> spec: the filter model (unless `none`), and a separate labelling model."""
    return {role: detection.model for role, detection in model_roles(SETTINGS).items()}


def detector_settings(wildcards):
    """Model role -> its detection settings (each role's worker is keyed on them)."""
    roles = {"filter": config["filter"], "detect": detect_settings(wildcards)}
    return {role: roles[role] for role in model_specs()}


def model_files(wildcards):
    """The local model files in use: inputs, so that replacing one reruns what it affects."""
    paths = {resolve_model_path(spec) for spec in model_specs().values()}
    return sorted(path for path in paths if Path(path).is_file())


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
        "container": LAYOUT.container,
    }


def _refused_by_a_lock():
    """Whether another Snakemake's lock on this directory stopped this run before any job."""
    persistence = workflow.persistence
    return persistence is not None and not workflow.dryrun and persistence.locked


def print_run_summary():
    """End every run (no-op and dry run included) with one line of totals and the failures;
    a run that another run's lock refused ran nothing and says only that."""
    if _refused_by_a_lock():
        sys.stderr.write(
            "framesift: another run of this workflow holds its lock: nothing ran (wait for it, "
            "or after a crash: snakemake --unlock)\n"
        )
        return
    videos = [(entry.video_id, entry.url) for entry in URL_LIST.entries]
    layout = Layout.from_settings(SETTINGS, root=_WORKDIR / LAYOUT.root)
    states = video_states(layout, videos)
    for line in summary_lines(states):
        sys.stderr.write(f"framesift: {line}\n")
    shown = 5
    for problem in URL_LIST.problems[:shown]:
        sys.stderr.write(f"framesift: skipped URL line {problem}\n")
    if len(URL_LIST.problems) > shown:
        more = len(URL_LIST.problems) - shown
        sys.stderr.write(
            f"framesift: ... and {more} more skipped lines: framesift status\n"
        )
    if layout.report_html.exists():
        sys.stderr.write(
            f"framesift: report: {LAYOUT.report_html} (and {LAYOUT.report})\n"
        )


if workflow.is_main_process:
    atexit.register(print_run_summary)


def video_table(wildcards):
    """[video id, URL] rows for the dataset manifest and the report, in URL-file order."""
    return [[entry.video_id, entry.url] for entry in URL_LIST.entries]


def url_problems(wildcards):
    """Skipped URL lines as 'file:line: reason' strings, for the report."""
    return [str(problem) for problem in URL_LIST.problems]


def detect_settings(wildcards):
    """Labelling settings as params (nulls resolved to the filter's; see
    framesift.detection.detector.labelling_settings)."""
    return labelling_settings(SETTINGS.filter, SETTINGS.detect).as_params()
