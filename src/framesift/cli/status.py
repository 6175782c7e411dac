"""``framesift status`` and ``framesift retry-failed``: read and change the per-video state.

Both read only the results folder (no Snakemake, no DAG) through framesift.lifecycle.records,
the same code the rules use, so what they show is what the next run will do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from framesift.core.config import ConfigError
from framesift.core.layout import Layout
from framesift.core.run_record import resolve_project
from framesift.core.stage_table import STAGES
from framesift.core.urls import UrlFileMissing, UrlList, read_url_file
from framesift.lifecycle.records import request_retry
from framesift.lifecycle.states import VideoState, totals, video_states


def add_project_options(parser: argparse.ArgumentParser) -> None:
    """``-d``, ``--configfile`` and ``--urls``: which project a command reads (status, doctor).

    Without ``--configfile``, the config files (and ``--config`` values) of the last run in DIR
    are used, as recorded in ``results/state/run.json`` (framesift.core.run_record).
    """
    parser.add_argument(
        "-d",
        "--directory",
        default=".",
        metavar="DIR",
        help="the workflow's working directory (as snakemake --directory; default: .)",
    )
    parser.add_argument(
        "--configfile",
        nargs="+",
        metavar="FILE",
        help="config file(s), layered in order, relative to DIR (default: those of the last "
        "run in DIR, recorded in results/state/run.json; without one, config/config.yaml)",
    )
    parser.add_argument(
        "--urls", metavar="FILE", help="the URL file (default: the config's `urls`)"
    )


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``framesift status`` and ``framesift retry-failed``."""
    status = subparsers.add_parser(
        "status",
        help="show each video's state: done, pending, failed (and why)",
        description="One row per URL in the URL file: video id, state, frames extracted, "
        "kept by the filter, in the dataset, and title or failure reason; then totals. "
        "Exit status 0 when nothing failed, 1 otherwise.",
        allow_abbrev=False,
    )
    add_project_options(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--failed", action="store_true", help="only the failed videos")
    status.set_defaults(handler=run_status, parser=status)

    retry = subparsers.add_parser(
        "retry-failed",
        help="make the next run redo the failed videos (all, one stage, or the named ones)",
        description="Mark failed stages (transient or permanent) so that the next run of the "
        "workflow redoes exactly them and what follows them; finished work is untouched.",
        allow_abbrev=False,
    )
    add_project_options(retry)
    retry.add_argument("--stage", choices=STAGES, help="only failures at this stage")
    retry.add_argument("video_ids", nargs="*", metavar="VIDEO_ID", help="only these videos")
    retry.set_defaults(handler=run_retry_failed, parser=retry)


class UrlFileNotFound(Exception):
    """The URL file is missing; the message names the options of these commands."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"URL file {str(path)!r} does not exist: create it (one URL per line), point "
            "`urls:` in the config (--configfile FILE) at the right file, or pass --urls FILE"
        )


def _load(args: argparse.Namespace) -> tuple[Layout, UrlList]:
    """The layout and the parsed URL file, as the workflow would see them."""
    project = resolve_project(args.directory, args.configfile, args.urls)
    try:
        return project.layout, read_url_file(project.urls)
    except UrlFileMissing:
        raise UrlFileNotFound(project.urls) from None


def command_failed(command: str, error: Exception) -> int:
    """Print ``framesift COMMAND: error`` (one line) and return exit status 2."""
    sys.stderr.write(f"framesift {command}: {error}\n")
    return 2


def _cell(value: int | None) -> str:
    return "-" if value is None else str(value)


def format_table(states: list[VideoState]) -> list[str]:
    """Aligned text rows: video, state, frames, kept, in dataset, title or failure."""
    header = ("video", "state", "frames", "kept", "dataset", "title / failure")
    rows = []
    for s in states:
        if s.failed or s.reason:
            note = f"{s.stage}: {s.reason}"
            if s.retry_next_run:
                note += " (retried on the next run)"
        else:
            note = s.title
        rows.append(
            (s.video_id, s.state, _cell(s.frames), _cell(s.kept), _cell(s.in_dataset), note)
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [row[i].rjust(widths[i]) for i in (2, 3, 4)]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return lines


def run_status(args: argparse.Namespace) -> int:
    """``framesift status``; exit 0 when nothing failed, 1 otherwise, 2 on bad input."""
    try:
        layout, url_list = _load(args)
    except (ConfigError, UrlFileNotFound) as error:
        return command_failed("status", error)
    states = video_states(layout, [(e.video_id, e.url) for e in url_list.entries])
    count = totals(states)
    shown = [s for s in states if s.failed] if args.failed else states
    skipped = [str(problem) for problem in url_list.problems]
    if args.json:
        data: dict[str, Any] = {
            "videos": [s.as_dict() for s in shown],
            "totals": {
                "videos": count.videos,
                "done": count.done,
                "failed": count.failed,
                "pending": count.pending,
                "empty": count.empty,
            },
            "skipped_url_lines": skipped,
        }
        print(json.dumps(data, indent=1))
    else:
        if shown:
            print("\n".join(format_table(shown)))
        if skipped:
            print("\nskipped URL lines:")
            print("\n".join(f"  {line}" for line in skipped))
        print(f"\n{count.line(hint=False)}")
    return 1 if count.failed else 0


def run_retry_failed(args: argparse.Namespace) -> int:
    """``framesift retry-failed``; exit 0, or 2 on bad input (an unknown video id)."""
    try:
        layout, url_list = _load(args)
    except (ConfigError, UrlFileNotFound) as error:
        return command_failed("retry-failed", error)
    known = url_list.ids
    unknown = [vid for vid in args.video_ids if vid not in known]
    if unknown:
        return command_failed(
            "retry-failed",
            f"unknown video id {unknown[0]!r}: not in the URL file (see framesift status)",
        )
    marked = request_retry(layout, args.video_ids or known, args.stage)
    if not marked:
        print("nothing to retry: no failed video matches")
        return 0
    for record in marked:
        print(f"{record.video_id}: {record.stage} {record.describe()}: {record.reason}")
    print(
        f"{len(marked)} failed stage(s) will be redone by the next run "
        "(snakemake --cores 8 --resources gpu=1, or framesift watch)"
    )
    return 0
