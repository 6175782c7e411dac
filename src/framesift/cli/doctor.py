"""``framesift doctor``: check the set-up before a long run, one line per check.

Exit 1 when a check FAILs (something would block a run), else 0; 2 when the config cannot be
read (as ``framesift status``). Nothing is downloaded and nothing permanent is written: versions
come from package metadata, tools run with argument lists and timeouts, and torch is imported
only in a child process, so that this one stays light. The checks run side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path

from framesift import __version__
from framesift.cli.status import add_project_options, command_failed
from framesift.core.config import ConfigError
from framesift.core.layout import Layout
from framesift.core.run_record import resolve_project
from framesift.core.settings import Settings
from framesift.core.urls import UrlFileMissing, UrlList, read_url_file, youtube_id

OK, INFO, WARN, FAIL = "ok", "info", "warn", "FAIL"
MIN_FREE_GIB = 5.0
YTDLP_FIX = "pip install 'yt-dlp[default]'"


@dataclass(frozen=True)
class Check:
    """One result: level (ok, info, warn, FAIL), what was checked, what was found, and for a
    problem how to fix it."""

    level: str
    label: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.level:<6}{self.label} {self.detail}"
        return f"{text}: {self.fix}" if self.fix else text


@dataclass(frozen=True)
class Context:
    """What the checks read: the workflow directory, its resolved config and URL file."""

    workdir: Path
    settings: Settings
    urls_path: Path
    urls: UrlList | None  # None: the URL file does not exist

    def models(self) -> dict[str, str]:
        """Config key -> model spec of each detector in use (the workflow's model roles)."""
        from framesift.detection.detector import model_roles

        roles = model_roles(self.settings)
        return {f"{role}.model": str(detection.model) for role, detection in roles.items()}

    def youtube_urls(self) -> int:
        entries = self.urls.entries if self.urls else []
        return sum(1 for entry in entries if youtube_id(entry.url) is not None)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _output(command: list[str], timeout: float) -> tuple[bool, str]:
    """(whether it succeeded, its stdout or a one-line reason): argument list, no shell."""
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return False, f"gave no answer in {timeout:g} s"
    except OSError as error:
        return False, f"does not run ({error.strerror})"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"failed (exit status {proc.returncode}): {last}"
    return True, proc.stdout


def check_versions(ctx: Context) -> list[Check]:
    """framesift, yt-dlp (+ yt-dlp-ejs), snakemake, ultralytics, torch: from metadata only."""
    checks = [Check(OK, "framesift", _version("framesift") or __version__)]
    detector, ejs = bool(ctx.models()), _version("yt-dlp-ejs")
    for dist, needed, fix in (
        ("yt-dlp", True, YTDLP_FIX),
        ("snakemake", True, "pip install snakemake"),
        ("ultralytics", detector, "pip install ultralytics"),
        ("torch", detector, "pip install torch torchvision (see README, Installation)"),
    ):
        version = _version(dist)
        if version is None:
            unused = "" if needed else " (no detector configured)"
            checks.append(Check(FAIL if needed else INFO, dist, f"is not installed{unused}", fix))
        else:
            extra = f" (yt-dlp-ejs {ejs})" if dist == "yt-dlp" and ejs else ""
            checks.append(Check(OK, dist, version + extra))
    if ejs is None:
        checks.insert(2, Check(WARN, "yt-dlp-ejs", "not installed: YouTube will fail", YTDLP_FIX))
    return checks


def check_js_runtime(ctx: Context) -> list[Check]:
    """The JS runtime yt-dlp gets, and yt-dlp's own check of its YouTube challenge providers."""
    if util.find_spec("yt_dlp") is None:
        return [Check(WARN, "JS runtime", "not checked: yt-dlp is not installed", YTDLP_FIX)]
    from framesift.stages.jsruntime import JsRuntimeMissing, challenge_providers, resolve_js_runtime

    try:
        runtime = resolve_js_runtime(ctx.settings.download.js_runtime)
    except JsRuntimeMissing as error:
        return [Check(FAIL, "JS runtime", str(error))]
    fix = f"set download.js_runtime: auto (the bundled deno: pip install deno); {YTDLP_FIX}"
    supported = runtime.supported()
    checks = [
        Check(OK if supported else WARN, "JS runtime", runtime.describe(), "" if supported else fix)
    ]
    providers = challenge_providers(runtime)
    if not providers:  # yt-dlp's internals moved
        detail, ask = "unknown: doctor cannot ask this yt-dlp", "try one YouTube URL first"
        return [*checks, Check(WARN, "JS challenge providers", detail, ask)]
    available = sorted(name for name, ready in providers.items() if ready)
    youtube = ctx.youtube_urls()
    if available:
        checks.append(Check(OK, "JS challenge providers", f"available: {', '.join(available)}"))
    elif youtube:
        detail = f"none available: YouTube downloads will fail ({youtube} YouTube URL(s))"
        checks.append(Check(FAIL, "JS challenge providers", detail, fix))
    else:
        detail = "none available: YouTube URLs would fail (the URL file has none)"
        checks.append(Check(WARN, "JS challenge providers", detail, fix))
    return checks


def check_ffmpeg(ctx: Context) -> list[Check]:
    """The ffmpeg the stages use: its path, version and an H.264 decoder."""
    from framesift.core.media import ffmpeg_binary

    fix = "apt-get install ffmpeg, or pip install imageio-ffmpeg (or set FRAMESIFT_FFMPEG)"
    binary = ffmpeg_binary()
    path = shutil.which(binary)
    if path is None:
        return [Check(FAIL, "ffmpeg", f"not found ({binary})", fix)]
    ran, version = _output([path, "-version"], 20)
    ran, decoders = _output([path, "-hide_banner", "-decoders"], 20) if ran else (ran, version)
    if not ran:
        return [Check(FAIL, "ffmpeg", f"{path} {decoders}", fix)]
    words = (version.splitlines() or [""])[0].split()
    number = words[2] if len(words) > 2 and words[1] == "version" else "(unknown version)"
    rows = [line.split() for line in decoders.splitlines()]
    names = {row[1] for row in rows if len(row) > 1 and row[0].startswith("V")}
    software = sorted(names & {"h264", "libopenh264"})  # not hardware-only wrappers (h264_cuvid)
    found = software[0] if software else f"missing in {path}"
    h264 = Check(OK if software else FAIL, "H.264 decoder", found, "" if software else fix)
    return [Check(OK, "ffmpeg", f"{number} ({path})"), h264]


TORCH_PROBE = """\
import json, sys
import torch
from framesift.detection.detector import pick_device
n = torch.cuda.device_count() if torch.cuda.is_available() else 0
print(json.dumps({"names": [torch.cuda.get_device_name(i) for i in range(n)],
                  "build": torch.version.cuda, "device": pick_device(sys.argv[1])}))
"""


def _cuda_index(device: str) -> int | None:
    """The highest CUDA index a filter.device setting asks for (``cuda``, ``cuda:1``, ``0,1``);
    None for a device that is not CUDA."""
    lowered = device.strip().lower()
    rest = lowered.removeprefix("cuda").lstrip(":")
    if lowered.startswith("cuda") and not rest:
        return 0
    indices = rest.split(",")
    return max(map(int, indices)) if all(i.strip().isdigit() for i in indices) else None


def check_device(ctx: Context) -> list[Check]:
    """CUDA devices, and the device the detection worker will use (torch in a child process)."""
    device = ctx.settings.filter.device
    if not ctx.models():
        return [Check(INFO, "device", f"not used: no detector (filter.device: {device})")]
    if _version("torch") is None:
        return [Check(WARN, "device", "not checked: torch is not installed")]
    ran, output = _output([sys.executable, "-c", TORCH_PROBE, device], 60)
    if not ran:
        fix = "check `python -c 'import torch'`; reinstall torch if it fails"
        return [Check(FAIL, "torch", f"import {output}", fix)]
    probe = json.loads(output.strip().splitlines()[-1])
    names = probe["names"]
    if names:
        listed = ", ".join(f"cuda:{i} {name}" for i, name in enumerate(names))
        checks = [Check(OK, "CUDA", f"{len(names)} device(s): {listed}")]
    else:
        build = "" if probe["build"] else " (this torch is a CPU-only build)"
        checks = [Check(INFO, "CUDA", f"no device{build}")]
    fix = "set filter.device: auto (CUDA when there is one, else cpu) or cpu"
    index = _cuda_index(device)
    if device == "auto":
        used = probe["device"]
        detail = f"{used} {names[0]} (filter.device: auto)" if names else "cpu (no CUDA device)"
        checks.append(Check(OK, "worker device", detail))
    elif index is not None and index >= len(names):
        seen = f"{len(names)} CUDA device(s)" if names else "no CUDA device"
        checks.append(Check(FAIL, "worker device", f"filter.device: {device}, but {seen}", fix))
    elif device == "cpu" and names:
        fix = "set filter.device: auto to detect on the GPU"
        checks.append(Check(WARN, "worker device", "cpu (filter.device), with CUDA here", fix))
    else:
        checks.append(Check(OK, "worker device", f"{probe['device']} (filter.device)"))
    return checks


def check_models(ctx: Context) -> list[Check]:
    """Each model file, its class names (read without torch) and filter.classes among them."""
    from framesift.detection.detector import (
        SHIPPED_MODELS,
        ModelError,
        resolve_classes,
        resolve_model_path,
    )
    from framesift.detection.model_names import checkpoint_names

    classes = list(ctx.settings.filter.classes)
    models = ctx.models()
    if not models:
        if classes:
            fix = "set filter.model (or detect.model), or filter.classes: [] to keep every frame"
            return [Check(FAIL, "filter.classes", "need a detector, but filter.model is none", fix)]
        return [Check(OK, "filter.model", "none (no detector: every frame is kept)")]
    checks = []
    for key, spec in models.items():
        path = ctx.workdir.resolve() / Path(spec).expanduser()  # where the worker runs
        if spec in SHIPPED_MODELS:
            path = Path(resolve_model_path(spec))
        other = "or framesift:shapes (the shipped demo model), or none (keep every frame)"
        if not path.is_file():
            if os.sep in spec or spec.startswith("."):
                detail, fix = f"{spec}: no such file (looked for {path})", f"fix the path, {other}"
                checks.append(Check(FAIL, key, detail, fix))
            else:  # a model name: ultralytics fetches it on first use (offline, the run stops)
                detail = (
                    f"{spec} is not a local file (looked for {path}); ultralytics downloads it "
                    "when the run starts, which needs internet (doctor downloads nothing)"
                )
                fix = f"offline, download it elsewhere and set {key} to its path, {other}"
                checks.append(Check(WARN, key, detail, fix))
            continue
        names = checkpoint_names(path)
        if names is None:
            detail = f"{spec} ({path}): class names unreadable without loading the model"
            checks.append(Check(WARN, key, detail, "the run checks them (logs/check_model.log)"))
            continue
        where = spec if str(path) == spec else f"{spec} ({path})"
        checks.append(Check(OK, key, f"{where}: {', '.join(names.values())}"))
        try:
            resolve_classes(names, classes)
        except ModelError as error:
            fix = f"use names {key} knows, or filter.classes: [] to keep any detection"
            checks.append(Check(FAIL, "filter.classes", f"{error} ({key})", fix))
        else:
            checks.append(Check(OK, "filter.classes", ", ".join(classes) or "[] (any detection)"))
    return checks


def check_urls(ctx: Context) -> list[Check]:
    """The URL file: there, how many videos it names, and the lines it skips."""
    if ctx.urls is None:
        fix = "create it (one URL per line), or point `urls:` in the config (or --urls) at it"
        return [Check(FAIL, "URL file", f"{ctx.urls_path} does not exist", fix)]
    count, youtube = len(ctx.urls.entries), ctx.youtube_urls()
    on_youtube = f", {youtube} on YouTube" if youtube else ""
    checks = [
        Check(OK, "URL file", f"{ctx.urls_path}: {count} video(s){on_youtube}")
        if count
        else Check(WARN, "URL file", f"{ctx.urls_path}: no video", "add URLs, one per line")
    ]
    if ctx.urls.problems:
        problems = ctx.urls.problems
        detail = f"{len(problems)} line(s) skipped; first: {problems[0]}"
        checks.append(Check(WARN, "URL file", detail, "fix or remove those lines"))
    return checks


def check_results(ctx: Context) -> list[Check]:
    """The results folder (or, before the first run, its nearest parent) is writable."""
    results = (ctx.workdir / Layout.from_settings(ctx.settings).root).resolve()
    if results.exists() and not results.is_dir():
        return [Check(FAIL, "results", f"{results} is not a folder", "move that file away")]
    target = results
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".framesift-doctor-"):
            pass
    except OSError as error:
        fix = "fix its permissions, or run in (-d) a folder you can write"
        return [Check(FAIL, "results", f"{target} is not writable ({error.strerror})", fix)]
    free = shutil.disk_usage(target).free / 2**30
    where = str(results) if target == results else f"{results} (created by the run): {target}"
    detail = f"{where} writable, {free:.1f} GiB free"
    if free < MIN_FREE_GIB:
        return [Check(WARN, "results", detail, "videos and frames need room: free some space")]
    return [Check(OK, "results", detail)]


def check_slurm(ctx: Context) -> list[Check]:
    """The SLURM executor plugin and ``sinfo`` (only cluster runs need them: never a FAIL)."""
    if util.find_spec("snakemake_executor_plugin_slurm") is not None:
        plugin = _version("snakemake-executor-plugin-slurm") or "installed"
        checks = [Check(OK, "SLURM plugin", plugin)]
    else:
        fix = "pip install snakemake-executor-plugin-slurm"
        checks = [Check(INFO, "SLURM plugin", "not installed (only cluster runs need it)", fix)]
    sinfo = shutil.which("sinfo")
    if sinfo is None:
        return [*checks, Check(INFO, "sinfo", "not found: no SLURM here (local runs need none)")]
    ran, output = _output([sinfo, "-h", "-o", "%P"], 10)
    if not ran:
        fix = "check the cluster (scontrol ping); local runs do not need it"
        return [*checks, Check(WARN, "sinfo", output, fix)]
    return [*checks, Check(OK, "sinfo", f"partitions: {', '.join(output.split()) or 'none'}")]


CheckFunction = Callable[[Context], list[Check]]
GROUPS: list[tuple[str, list[CheckFunction]]] = [
    ("packages", [check_versions]),
    ("downloads", [check_js_runtime]),
    ("frames", [check_ffmpeg]),
    ("detector", [check_models, check_device]),
    ("files", [check_urls, check_results]),
    ("cluster (optional)", [check_slurm]),
]


def _safe(check: CheckFunction, ctx: Context) -> list[Check]:
    try:
        return check(ctx)
    except Exception as error:  # noqa: BLE001 - one broken check must not hide the others
        label = check.__name__.removeprefix("check_")
        detail = f"could not check: {type(error).__name__}: {error}"
        return [Check(WARN, label, detail, "please report this as a framesift bug")]


def run_checks(ctx: Context) -> list[tuple[str, list[Check]]]:
    """Every check, side by side (torch's import is the slowest); results in GROUPS order."""
    from concurrent.futures import ThreadPoolExecutor

    functions = [check for _, checks in GROUPS for check in checks]
    with ThreadPoolExecutor(max_workers=len(functions)) as pool:
        done = dict(zip(functions, pool.map(lambda f: _safe(f, ctx), functions), strict=True))
    return [(title, [c for f in checks for c in done[f]]) for title, checks in GROUPS]


def render(groups: list[tuple[str, list[Check]]]) -> list[str]:
    """Text lines: a heading per group, one indented line per check, then a summary."""
    lines = []
    for title, checks in groups:
        lines += ["", title, *(f"  {check.line()}" for check in checks)]
    levels = [check.level for _, checks in groups for check in checks]
    fails, warns = levels.count(FAIL), levels.count(WARN)
    warnings = f", {warns} warning(s)" if warns else ""
    if fails:
        return [*lines, "", f"{fails} problem(s) block a run (FAIL){warnings}"]
    return [*lines, "", f"ready: nothing blocks a run{warnings}"]


def run_doctor(args: argparse.Namespace) -> int:
    """``framesift doctor``: exit 1 when a check FAILs, 0 otherwise, 2 on a config error."""
    try:  # as status: explicit options, else the last run's config (results/state/run.json)
        project = resolve_project(args.directory, args.configfile, args.urls)
    except ConfigError as error:
        return command_failed("doctor", error)
    workdir, config, urls_path = project.directory, project.config, project.urls
    try:
        urls: UrlList | None = read_url_file(urls_path)
    except UrlFileMissing:
        urls = None
    groups = run_checks(Context(workdir, Settings.from_config(config), urls_path, urls))
    print(f"framesift doctor: {workdir.resolve()} (config: {project.describe()})")
    print("\n".join(render(groups)))
    return 1 if any(c.level == FAIL for _, checks in groups for c in checks) else 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``framesift doctor``."""
    parser = subparsers.add_parser(
        "doctor",
        help="check the set-up (packages, JS runtime, ffmpeg, GPU, model, files) before a run",
        description="One line per check: package versions, the JavaScript runtime yt-dlp uses "
        "for YouTube, ffmpeg and its H.264 decoder, CUDA and the detection device, the model "
        "and filter.classes, the URL file, the results folder, SLURM. Every problem says how "
        "to fix it. Downloads nothing. Exit status 1 when something blocks a run, 0 otherwise.",
        allow_abbrev=False,
    )
    add_project_options(parser)
    parser.set_defaults(handler=run_doctor, parser=parser)
