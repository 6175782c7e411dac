"""Benchmark: the fixed cost of one per-video job (download, extract frames) on tiny work.

Every Snakemake ``script:`` job is a fresh Python process, so what a job costs on zero or tiny
work is what the script and the library import and do at start-up. Each repetition here is a
fresh ``python -c`` that runs the stage's Snakemake adapter (``scripts/<stage>.py``, through
``runpy`` with a stand-in for Snakemake's ``snakemake`` object) on one tiny input: a 2 s 160x90
H.264 clip made with ffmpeg, served for the download by an HTTP server on 127.0.0.1 (a thread of
this process, so its CPU time is not counted).

By default every case starts with the imports of Snakemake's script preamble (what a real job
runs before the script); ``--no-preamble`` drops them. Rows:

- ``python -c pass``: the interpreter alone;
- ``snakemake preamble``: the interpreter plus the preamble's imports (the zero-work job);
- ``<stage>: imports``: the preamble plus the script's own import lines;
- ``<stage>: job``: the whole job (the script's ``main`` on the tiny input).

Wall and CPU seconds (user + system of the child and of every process it starts: the forked
download child, ffmpeg, and any detached descendant, which this process adopts as child
subreaper and waits for, see ``proctree.py``) are medians of ``--repeat`` runs. ``top
imports`` comes from one extra run under ``python -X importtime``: the top-level imports that
the preamble row does not have, by cumulative milliseconds.

    python bench/bench_jobs.py                  # 5 repetitions of each row
    python bench/bench_jobs.py --repeat 9 --only download

Measured on a shared 2-core VM (yt-dlp 2026.10.26, medians of 5, three rounds): the download
job went from 1.47 s wall / 1.43 CPU-s to 0.96 / 0.91 when the child stopped compiling every
extractor's URL pattern and de-duplicating extractor names quadratically; the preamble alone
is ~0.2 s. The frames job (~0.4 s, ffmpeg ~0.12 CPU-s of it) is unchanged on two cores; its
``threads`` matter on many-core nodes, where ffmpeg would otherwise start a thread per core.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from proctree import run_counted

from framesift.cli.synthetic import serve_directory
from framesift.core.media import ffmpeg_binary

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
VID = "tiny"
PREAMBLE = (
    "import pickle\n"
    "from snakemake.logging import logger\n"
    "from snakemake.iocontainers import Snakemake\n"
)
CONFIG = {
    "download": {
        "max_height": 720,
        "container": "mp4",
        "socket_timeout": 20,
        "retries": 3,
        "timeout": 1800,
        "rate_limit": None,
        "cookies": None,
        "proxy": None,
        "sleep_interval": 0,
        "job_retries": 1,
        "local": False,
    },
    "retry": {"max_attempts": 3},
    "frames": {
        "mode": "fps",
        "fps": 1.0,
        "interval": 10.0,
        "scene_threshold": 0.3,
        "max_frames": 0,
        "max_width": 0,
        "jpeg_qscale": 2,
    },
}

# A stand-in for Snakemake's ``snakemake`` object: Namedlist-like lists with attribute access.
_FAKE_SMK = """
import runpy


class _Named(list):
    def __init__(self, items):
        super().__init__(items.values())
        self._items = dict(items)

    def __getattr__(self, name):
        try:
            return self.__dict__["_items"][name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name, default=None):
        return self._items.get(name, default)

    def items(self):
        return self._items.items()


class _Smk:
    pass


smk = _Smk()
for _key, _value in {fields!r}.items():
    setattr(smk, _key, _Named(_value) if isinstance(_value, dict) else _value)
smk.config = {config!r}
runpy.run_path({script!r}, init_globals={{"snakemake": smk}}, run_name="__main__")
"""


def script_imports(script: Path) -> str:
    """The import lines of a script adapter (top level, before its first definition)."""
    lines = []
    for line in script.read_text().splitlines():
        if line.startswith(("def ", "class ", "run_stage(")):
            break
        if line.startswith(("import ", "from ")):
            lines.append(line)
    return "\n".join(lines) + "\n"


def job_code(script: Path, fields: dict, config: dict = CONFIG) -> str:
    return _FAKE_SMK.format(fields=fields, config=config, script=str(script))


def make_clip(path: Path) -> Path:
    """A 2 s 160x90 25 fps H.264 clip (mpeg4 when this ffmpeg has no libx264)."""
    base = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    base += ["-i", "testsrc2=size=160x90:rate=25:duration=2", "-pix_fmt", "yuv420p"]
    for codec in ("libx264", "mpeg4"):
        if subprocess.run([*base, "-c:v", codec, str(path)], check=False).returncode == 0:
            return path
    raise RuntimeError("ffmpeg could not encode the test clip")


class Case:
    """One row: code for ``python -c``, and how to prepare each run's working folder."""

    def __init__(self, name: str, code: str, prepare=None, check=None) -> None:
        self.name, self.code, self.prepare, self.check = name, code, prepare, check


def download_cases(url: str) -> list[Case]:
    script = SCRIPTS / "download_video.py"
    fields = {
        "input": {"check": "results/state/model.json"},
        "output": {"video": f"results/videos/{VID}.mp4", "info": f"results/videos/{VID}.info.json"},
        "log": {"log": f"logs/download_video/{VID}.log"},
        "wildcards": {"vid": VID},
        "params": {
            "url": url,
            "settings": {"max_height": 720, "container": "mp4"},
            "generation": 0,
        },
        "resources": {"attempt": 1},
        "threads": 1,
    }

    def check(work: Path) -> str | None:
        video = work / fields["output"]["video"]
        if video.is_file() and video.stat().st_size > 0:
            return None
        return "no video:\n" + _log_tail(work / fields["log"]["log"])

    return [
        Case("download: imports", script_imports(script)),
        Case("download: job", job_code(script, fields), check=check),
    ]


def frames_cases(clip: Path) -> list[Case]:
    script = SCRIPTS / "extract_frames.py"
    video, info = f"results/videos/{VID}.mp4", f"results/videos/{VID}.info.json"
    fields = {
        "input": {"video": video, "info": info},
        "output": {"frames": f"results/frames/{VID}"},
        "log": {"log": f"logs/extract_frames/{VID}.log"},
        "wildcards": {"vid": VID},
        "params": {"settings": CONFIG["frames"], "generation": 0},
        "resources": {"attempt": 1},
        "threads": 2,
    }

    def prepare(work: Path) -> None:
        (work / video).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, work / video)
        meta = {"video_id": VID, "url": "http://127.0.0.1/tiny.mp4"}
        (work / info).write_text(json.dumps(meta) + "\n")

    def check(work: Path) -> str | None:
        if len(list((work / fields["output"]["frames"]).glob("*.jpg"))) >= 2:
            return None
        return "no frames:\n" + _log_tail(work / fields["log"]["log"])

    return [
        Case("frames: imports", script_imports(script)),
        Case("frames: job", job_code(script, fields), prepare=prepare, check=check),
    ]


def _log_tail(path: Path) -> str:
    return path.read_text()[-2000:] if path.exists() else "(no log)"


def run_once(code: str, work: Path, importtime: bool = False) -> tuple[float, float, str]:
    """Wall s, CPU s (its whole process tree) and stderr of one ``python -c code`` in ``work``."""
    args = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code]
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    run = run_counted(args, cwd=work, env=env, capture_output=True, text=True)
    stderr = run.stderr or ""
    if run.returncode != 0:
        raise RuntimeError(f"exit {run.returncode}:\n{stderr[-3000:]}")
    return run.wall, run.cpu, stderr


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def top_level_imports(stderr: str) -> dict[str, float]:
    """Top-level module -> cumulative import ms, from ``-X importtime`` output."""
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match and len(match.group(3)) == 1:  # one space after "|": not nested
            found[match.group(4)] = found.get(match.group(4), 0.0) + int(match.group(2)) / 1000
    return found


def measure(case: Case, root: Path, repeat: int, preamble: str) -> dict:
    walls, cpus = [], []
    code = preamble + case.code
    slug = re.sub(r"\W+", "-", case.name)
    for index in range(repeat + 1):  # + 1: the -X importtime run, not timed
        work = root / f"{slug}-{index}"
        work.mkdir()
        if case.prepare is not None:
            case.prepare(work)
        wall, cpu, stderr = run_once(code, work, importtime=index == repeat)
        problem = case.check(work) if case.check is not None else None
        if problem:
            raise RuntimeError(f"{case.name}: {problem}")
        if index == repeat:
            imports = top_level_imports(stderr)
        else:
            walls.append(wall)
            cpus.append(cpu)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "name": case.name,
        "wall": statistics.median(walls),
        "cpu": statistics.median(cpus),
        "wall_min": min(walls),
        "cpu_min": min(cpus),
        "imports": imports,
    }


def table(rows: list[dict], baseline: dict[str, float], top: int) -> str:
    out = [
        "| case | wall s (median) | CPU s (median) | wall s (min) | CPU s (min) "
        "| top imports beyond the baseline (cumulative ms) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        extra = {k: v for k, v in row["imports"].items() if k not in baseline}
        named = sorted(extra.items(), key=lambda kv: -kv[1])[:top]
        text = ", ".join(f"{name} {ms:.0f}" for name, ms in named) or "-"
        if extra:
            text += f" (all {sum(extra.values()):.0f})"
        out.append(
            f"| {row['name']} | {row['wall']:.3f} | {row['cpu']:.3f} "
            f"| {row['wall_min']:.3f} | {row['cpu_min']:.3f} | {text} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per row (median; >= 3)")
    parser.add_argument("--only", choices=("download", "frames"), help="one stage only")
    parser.add_argument("--no-preamble", action="store_true", help="skip Snakemake's imports")
    parser.add_argument("--top", type=int, default=4, help="imports named per row")
    args = parser.parse_args()
    if args.repeat < 3:
        parser.error("--repeat must be at least 3")
    preamble = "" if args.no_preamble else PREAMBLE
    with tempfile.TemporaryDirectory(prefix="framesift-bench-jobs-") as tmp:
        root = Path(tmp)
        served = root / "served"
        served.mkdir()
        clip = make_clip(served / f"{VID}.mp4")
        clip_bytes = clip.stat().st_size
        with serve_directory(served) as base:
            cases = [Case("python -c pass", "pass\n")]
            if not args.no_preamble:
                cases.append(Case("snakemake preamble", "pass\n"))
            if args.only in (None, "download"):
                cases += download_cases(f"{base}/{VID}.mp4")
            if args.only in (None, "frames"):
                cases += frames_cases(clip)
            rows = []
            for case in cases:
                code_preamble = "" if case.name == "python -c pass" else preamble
                rows.append(measure(case, root, args.repeat, code_preamble))
                print(f"  {case.name}: {rows[-1]['wall']:.3f} s wall", file=sys.stderr)
    baseline = rows[1 if not args.no_preamble else 0]["imports"]
    from importlib.metadata import version

    bytecode = "not written" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "cached"
    print(
        f"python {sys.version.split()[0]}, yt-dlp {version('yt-dlp')}, {os.cpu_count()} CPUs, "
        f"median of {args.repeat}; clip {clip_bytes} bytes; preamble "
        f"{'off' if args.no_preamble else 'on'}; framesift bytecode {bytecode}"
    )
    print(table(rows, baseline, args.top))


if __name__ == "__main__":
    main()
