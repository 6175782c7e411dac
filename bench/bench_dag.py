"""Benchmark: the cost of building the DAG, as a dry run and as a no-op rerun, for many URLs.

For each ``--lines`` N it writes a URL file of N lines (mostly ``http://127.0.0.1:9/v{i}.mp4``,
every 10th a YouTube watch URL and every 10th+5 a ``youtu.be`` URL) and the repo's
``config/config.yaml`` with ``urls`` pointing at it and ``filter.model: framesift:shapes``, then
times ``python -m snakemake --snakefile <repo>/Snakefile --directory <tmp> --cores 2
--resources gpu=1``:

- **dry run** (``-n``) in a fresh directory: nothing done yet, every job is listed;
- **no-op rerun** (no ``-n``) on a finished results tree for the N videos.

The finished tree is cloned from a real run: the workflow runs once on one synthetic 4-second
video served on 127.0.0.1 (the template), then every per-video file of it (results, stage
records, logs, benchmarks and Snakemake's metadata records) is copied for each of the N ids,
with the template's id and URL replaced by the video's (binary files are hard links). Whole-run
files are copied once, except that ``summary.json`` and the aggregate's metadata records (its
inputs, its video-table parameter) list the N videos. Every file keeps the template's mtime, so
the stage order of the real run is kept. Each no-op rerun must say
"Nothing to be done" and count N videos done, or the benchmark stops.

Wall and CPU seconds (user + sys of the Snakemake process and every process it starts, a
detached detection worker included: ``getrusage(RUSAGE_CHILDREN)`` with this process as child
subreaper, each run waited for until its descendants have exited, see ``proctree.py``) are
medians over ``--repeat`` runs. With several ``--repo`` checkouts (each gets its own template
run), their runs alternate, so that a busy machine slows them alike.

    python bench/bench_dag.py                         # 1000 lines, 3 repetitions
    python bench/bench_dag.py --lines 1000 3000
    python bench/bench_dag.py --lines 1000 --skip-noop
    python bench/bench_dag.py --repo ../before .          # two checkouts, runs alternating
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # this checkout's framesift, also where not installed

from bench_pipeline import (  # noqa: E402 - this folder is on sys.path
    Measured,
    check_ok,
    median,
    offline_env,
    run_measured,
)
from proctree import slurm_stall_note  # noqa: E402

from framesift.cli.synthetic import Shape, VideoSpec, make_video, serve_directory  # noqa: E402
from framesift.core.urls import parse_lines, video_id, youtube_id  # noqa: E402

TEXT_SUFFIXES = {".json", ".tsv", ".log", ".yaml", ".yml", ".md", ".csv", ".txt", ".html"}
PER_RUN_FOLDERS = ("logs", "benchmarks", "results")
METADATA = Path(".snakemake") / "metadata"


def log(message: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(f"[bench_dag] {message}", file=sys.stderr, flush=True)


def bench_urls(count: int) -> list[str]:
    """``count`` URL lines: generic loopback URLs, every 10th a YouTube watch URL, every
    10th+5 a youtu.be URL (11-character ids, all distinct)."""
    urls = []
    for i in range(count):
        if i % 10 == 0:
            urls.append(f"https://www.youtube.com/watch?v=yt{i:09d}")
        elif i % 10 == 5:
            urls.append(f"https://youtu.be/yb{i:09d}")
        else:
            urls.append(f"http://127.0.0.1:9/v{i}.mp4")
    return urls


def bench_config(repo: Path) -> dict[str, Any]:
    """The repo's config/config.yaml with the generated URL file and the shipped demo model."""
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text()) or {}
    config["urls"] = "config/urls.txt"
    config.setdefault("filter", {})["model"] = "framesift:shapes"
    return config


def write_workdir(workdir: Path, config: dict[str, Any], urls: list[str]) -> None:
    """``config/config.yaml`` and ``config/urls.txt`` in ``workdir``."""
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "urls.txt").write_text("\n".join(urls) + "\n")
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def snakemake_command(repo: Path, workdir: Path, *extra: str) -> list[str]:
    """``python -m snakemake`` on ``repo``'s Snakefile in ``workdir``, 2 cores, one GPU."""
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(repo / "Snakefile"),
        "--directory", str(workdir),
        "--cores", "2",
        *extra,
        "--resources=gpu=1",
    ]  # fmt: skip


# --- the template run and its clones ----------------------------------------------------------


@dataclass
class Template:
    """A finished one-video run: its directory, video id and URL."""

    workdir: Path
    vid: str
    url: str


def make_template(repo: Path, root: Path, config: dict[str, Any], env: dict[str, str]) -> Template:
    """Run the workflow on one synthetic video served on 127.0.0.1 in ``root``/run; the run."""
    spec = VideoSpec(duration=4.0, shapes=(Shape("square", 100, 80, 90, 1.5, 3.5),))
    make_video(root / "served" / "clip.mp4", spec)
    workdir = root / "run"
    with serve_directory(root / "served") as base:
        url = f"{base}/clip.mp4"
        write_workdir(workdir, config, [url])
        log_path = root / "run.log"
        log(f"template: the workflow on one synthetic video ({repo})")
        measured = run_measured(snakemake_command(repo, workdir), env, log_path)
        check_ok("snakemake (template run)", measured, log_path, "1 video: 1 done")
    return Template(workdir, video_id(url), url)


def _b64(path: str) -> str:
    return base64.urlsafe_b64encode(path.encode()).decode()


def _unb64(name: str) -> str:
    return base64.urlsafe_b64decode(name.encode()).decode()


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _substitute(value: Any, pairs: list[tuple[str, str]]) -> Any:
    """``value`` with every (old, new) string replaced, through lists and dicts (keys too)."""
    if isinstance(value, str):
        for old, new in pairs:
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_substitute(item, pairs) for item in value]
    if isinstance(value, dict):
        return {_substitute(k, pairs): _substitute(v, pairs) for k, v in value.items()}
    return value


def _copy_file(source: Path, target: Path, pairs: list[tuple[str, str]] | None) -> None:
    """Copy (text, with ``pairs`` substituted) or hard-link (binary) keeping the mtime."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stat = source.stat()
    if pairs is not None and source.suffix in TEXT_SUFFIXES:
        target.write_text(_substitute(source.read_text(errors="replace"), pairs))
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    else:
        os.link(source, target)


def clone_template(
    template: Template, workdir: Path, config: dict[str, Any], urls: list[str]
) -> int:
    """A finished run of ``urls`` in ``workdir``, cloned from ``template``; the video count."""
    url_list = parse_lines(urls)
    videos = [(entry.video_id, entry.url) for entry in url_list.entries]

    def download_url(vid: str, url: str) -> str:  # as rules/common.smk's download_url
        return f"https://www.youtube.com/watch?v={vid}" if youtube_id(url) == vid else url

    pairs_of = {
        vid: [(template.url, download_url(vid, url)), (template.vid, vid)] for vid, url in videos
    }
    write_workdir(workdir, config, urls)
    src = template.workdir
    # files: per-video ones once per video, whole-run ones once
    for folder in PER_RUN_FOLDERS:
        for path in sorted((src / folder).rglob("*")):
            if path.is_dir():
                continue
            rel = path.relative_to(src)
            if template.vid in str(rel):
                for vid, _ in videos:
                    pairs = pairs_of[vid]
                    _copy_file(path, workdir / _substitute(str(rel), pairs), pairs)
            elif rel.as_posix() == "results/summary.json":
                _write_summary(path, workdir / rel, template, videos)
            else:
                _copy_file(path, workdir / rel, None)
    # Snakemake's metadata records, one per output file
    table_before = repr([[template.vid, template.url]])
    table_after = repr([[vid, url] for vid, url in videos])
    for path in sorted((src / METADATA).iterdir()):
        output = _unb64(path.name)
        record = json.loads(path.read_text())
        if template.vid in output:
            for vid, _ in videos:
                pairs = pairs_of[vid]
                cloned = _substitute(record, pairs)
                cloned["input_checksums"] = _checksums(workdir, cloned["input_checksums"])
                _write_metadata(workdir, _substitute(output, pairs), cloned, path)
        else:  # whole-run outputs (the aggregate's): every video's inputs and rows
            inputs = []
            for item in record["input"]:
                if template.vid in item:
                    inputs += [_substitute(item, pairs_of[vid]) for vid, _ in videos]
                else:
                    inputs.append(item)
            record["input"] = sorted(inputs)
            record["params"] = sorted(
                table_after if p == table_before else p for p in record["params"]
            )
            checksums = {}
            for item, value in record["input_checksums"].items():
                if template.vid in item:
                    checksums.update({_substitute(item, pairs_of[vid]): "" for vid, _ in videos})
                else:
                    checksums[item] = value
            record["input_checksums"] = _checksums(workdir, checksums)
            _write_metadata(workdir, output, record, path)
    return len(videos)


def _checksums(workdir: Path, checksums: dict[str, str]) -> dict[str, str]:
    """Checksums of the inputs under ``workdir`` recomputed (others, e.g. the model, kept)."""
    return {
        item: _sha256(workdir / item) if (workdir / item).is_file() else value
        for item, value in checksums.items()
    }


def _write_metadata(workdir: Path, output: str, record: dict[str, Any], like: Path) -> None:
    target = workdir / METADATA / _b64(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(record))
    stat = like.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _write_summary(
    source: Path, target: Path, template: Template, videos: list[tuple[str, str]]
) -> None:
    """``summary.json`` with the template video's row for every video."""
    summary = json.loads(source.read_text())
    row = summary["videos"][template.vid]
    summary["videos"] = {vid: {**row, "url": url} for vid, url in videos}
    summary.setdefault("totals", {})["videos"] = len(videos)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summary, indent=1) + "\n")
    stat = source.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# --- main -------------------------------------------------------------------------------------


def run_checked(
    what: str, command: list[str], env: dict[str, str], log_path: Path, expected: tuple[str, ...]
) -> Measured:
    """``command`` run once, checked for success and the ``expected`` texts in its output."""
    measured = run_measured(command, env, log_path)
    check_ok(what, measured, log_path, *expected)
    log(
        f"{what}: {measured.wall:.2f} s wall, {measured.cpu:.2f} s CPU "
        f"({measured.adopted} detached descendant(s) reaped)"
    )
    return measured


def main() -> None:
    """Time dry runs and no-op reruns for each ``--lines`` and ``--repo``; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1000], help="URL lines")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument(
        "--repo", type=Path, nargs="+", default=[REPO],
        help="checkouts whose Snakefile runs (several: their runs alternate, for comparisons)",
    )  # fmt: skip
    parser.add_argument("--skip-noop", action="store_true", help="only the dry runs")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args()
    if args.repeat < 1 or min(args.lines) < 1:
        parser.error("--lines and --repeat must be at least 1")
    repos = [repo.resolve() for repo in args.repo]
    slurm_note = slurm_stall_note()
    if slurm_note:
        log(slurm_note)

    root = Path(tempfile.mkdtemp(prefix="framesift-bench-dag-"))
    runs: dict[tuple[int, str, int], list[Measured]] = {}  # (lines, run, repo index) -> runs
    try:
        env = offline_env(root)
        configs = [bench_config(repo) for repo in repos]
        templates = [
            None if args.skip_noop else make_template(repo, root / f"template{i}", config, env)
            for i, (repo, config) in enumerate(zip(repos, configs, strict=True))
        ]
        for lines in args.lines:
            urls = bench_urls(lines)
            kinds = [("dry run (-n)", ("-n",), ("This was a dry-run",))]
            for i, (config, template) in enumerate(zip(configs, templates, strict=True)):
                write_workdir(root / f"dry-{lines}-{i}", config, urls)
                if template is not None:
                    count = clone_template(template, root / f"noop-{lines}-{i}", config, urls)
                    log(f"{lines} lines: {count} finished videos cloned from the template")
            if not args.skip_noop:
                done = f"{count} videos: {count} done"
                kinds.append(("no-op rerun", (), ("Nothing to be done", done)))
            for what, extra, expected in kinds:
                folder = "dry" if extra else "noop"
                for rep in range(args.repeat):
                    order = list(enumerate(repos))
                    for i, repo in order if rep % 2 == 0 else order[::-1]:
                        label = f"{lines} lines, {what}, run {rep + 1}" + (
                            f", {repo}" if len(repos) > 1 else ""
                        )
                        workdir = root / f"{folder}-{lines}-{i}"
                        command = snakemake_command(repo, workdir, *extra)
                        log_path = root / f"{folder}-{lines}-{i}-{rep}.log"
                        measured = run_checked(label, command, env, log_path, expected)
                        runs.setdefault((lines, what, i), []).append(measured)
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    several = len(repos) > 1
    print(f"\nmedians of {args.repeat} runs; Snakefile of " + ", ".join(map(str, repos)))
    print("CPU: every process of a run (this process is child subreaper, see proctree.py)")
    if slurm_note:
        print(slurm_note)
    print()
    print(("| checkout " if several else "") + "| lines | run | wall s | CPU s |")
    print(("|:---" if several else "") + "|---:|:---|---:|---:|")
    for (lines, what, i), measured in runs.items():
        wall = median([m.wall for m in measured])
        cpu = median([m.cpu for m in measured])
        checkout = f"| {repos[i]} " if several else ""
        print(f"{checkout}| {lines} | {what} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
