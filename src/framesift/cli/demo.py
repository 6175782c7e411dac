"""Offline demo: render synthetic clips, serve them on 127.0.0.1, run the whole workflow on them."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import unquote, urlsplit

from framesift.core.layout import Layout
from framesift.core.run_record import RESULTS

DEMO_PORT = 47631
DEMO_CONFIG = {
    "urls": "config/urls.txt",
    "frames": {"mode": "fps", "fps": 2.0},
    "filter": {
        "model": "framesift:shapes",
        "classes": ["square", "circle"],
        "imgsz": 320,
        "conf": 0.4,  # the tiny model's threshold (src/framesift/models/README.md)
    },
    "dataset": {"val_fraction": 0.25},
}


def source_checkout() -> Path | None:
    """The folder framesift was pip-installed from (``pip install -e .`` or ``pip install
    DIR``), as pip recorded it (PEP 610 ``direct_url.json``); None for a wheel or an index."""
    from importlib import metadata

    try:
        recorded = metadata.distribution("framesift").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    origin = json.loads(recorded or "{}")
    url = urlsplit(origin.get("url", ""))
    if "dir_info" not in origin or url.scheme != "file":
        return None
    return Path(unquote(url.path))


def find_snakefile(explicit: str | None) -> Path:
    """The workflow's Snakefile: the given one, ./Snakefile, or the one of the checkout the
    package was installed from (a wheel holds the library, not the workflow)."""
    checkout = source_checkout()
    candidates = [Path(explicit)] if explicit else []
    candidates += [Path("Snakefile"), *([checkout / "Snakefile"] if checkout else [])]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise SystemExit(
        "framesift demo: no workflow found: run it in a framesift checkout (git clone), or "
        "pass --snakefile PATH/Snakefile"
    )


def prepare(directory: Path) -> Path:
    """Render the demo clips (plus a re-encoded near-duplicate) into ``directory/served``."""
    from framesift.cli.synthetic import demo_specs, reencode, render_all

    served = directory / "served"
    if not (served / "empty.mp4").exists():
        render_all(served, demo_specs())
        reencode(served / "squares.mp4", served / "squares_small.mp4", 480, "300k")
    return served


def write_inputs(directory: Path, base_url: str) -> None:
    """The demo's config and URL file (one broken URL included, to show failure records)."""
    import yaml

    config_dir = directory / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.yaml").write_text(yaml.safe_dump(DEMO_CONFIG, sort_keys=False))
    names = ["squares.mp4", "circles.mp4", "both.mp4", "empty.mp4", "squares_small.mp4"]
    lines = ["# framesift demo: synthetic clips served on 127.0.0.1"]
    lines += [f"{base_url}/{name}" for name in names]
    lines.append(f"{base_url}/no-such-video.mp4")
    (config_dir / "urls.txt").write_text("\n".join(lines) + "\n")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``framesift demo``."""
    parser = subparsers.add_parser("demo", help="offline demo on synthetic videos")
    parser.add_argument("--dir", default="demo-run", help="working directory (default demo-run)")
    parser.add_argument("--cores", default=str(os.cpu_count() or 1), help="snakemake --cores")
    parser.add_argument("--snakefile", default=None, help="workflow Snakefile (auto-detected)")
    parser.add_argument(
        "--port", type=int, default=DEMO_PORT, help="loopback port; a fixed one keeps ids stable"
    )
    parser.set_defaults(handler=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns snakemake's exit code."""
    from framesift.cli.synthetic import serve_directory

    directory = Path(args.dir).resolve()
    snakefile = find_snakefile(args.snakefile)
    started = time.monotonic()
    served = prepare(directory)
    with ExitStack() as stack:
        try:
            base_url = stack.enter_context(serve_directory(served, args.port))
        except OSError:  # port taken: any free port (video ids then differ from earlier runs)
            base_url = stack.enter_context(serve_directory(served))
        write_inputs(directory, base_url)
        command = [
            sys.executable, "-m", "snakemake",
            "--snakefile", str(snakefile),
            "--directory", str(directory),
            "--cores", args.cores,
            "--resources", "gpu=1",
            "--keep-going",
        ]  # fmt: skip
        code = subprocess.run(command, check=False).returncode
    elapsed = time.monotonic() - started
    layout = Layout(directory / RESULTS)
    if code == 0 and layout.report.exists():
        print(layout.report.read_text())
        print(f"framesift demo: done in {elapsed:.1f} s; dataset in {layout.dataset}")
    else:
        print(f"framesift demo: snakemake exited {code} after {elapsed:.1f} s", file=sys.stderr)
    return code
