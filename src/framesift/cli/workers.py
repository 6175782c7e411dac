"""``framesift workers``: list the shared detection workers of a project, or stop them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``framesift workers``."""
    parser = subparsers.add_parser(
        "workers",
        help="list (or stop) the shared detection workers of a project",
        description="List the detection workers serving a project directory on this machine "
        "(model, device, frames served, seconds of inference, log), or stop them with --stop. "
        "A worker also exits by itself when its run ends or after worker.idle_timeout seconds "
        "without work (docs/worker.md).",
    )
    parser.add_argument(
        "-d", "--directory", default=".", help="the project (working) directory (default: .)"
    )
    parser.add_argument("--stop", action="store_true", help="ask every listed worker to exit")
    parser.set_defaults(handler=_run, parser=parser)


def _run(args: argparse.Namespace) -> int:
    from framesift.detection.client import LOG_DIR, ask, running_workers

    os.chdir(Path(args.directory))  # socket paths are relative: short enough for AF_UNIX
    workers = running_workers()
    if not workers:
        print(f"no detection worker is running for {args.directory}")
        return 0
    for address, answer in workers:
        stats = answer.get("stats", {})
        print(
            f"{address}: model {answer.get('model')} on {answer.get('device')}, "
            f"{stats.get('frames', 0)} frames in {stats.get('batches', 0)} batches, "
            f"{stats.get('infer_s', 0.0):.1f} s of inference; log in {LOG_DIR}/"
        )
        if args.stop:
            ask(address, "stop")
            print(f"{address}: asked to stop")
    return 0
