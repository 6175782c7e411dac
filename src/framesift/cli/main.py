"""The ``framesift`` command: ``--version``, ``watch``, ``demo``, ``status``, ``retry-failed``,
``workers``, ``doctor``.

Subcommands register themselves through an ``add_parser(subparsers)`` function that creates
their parser and sets ``handler`` (a function ``(args) -> exit code``) with ``set_defaults``
(and ``parser``, so that unknown arguments are reported with the subcommand's usage).
Add a new one to :data:`SUBCOMMANDS`; heavy imports belong inside the handler, so that
``framesift --version`` and ``--help`` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from framesift import __version__
from framesift.cli import demo, doctor, status, workers

WATCH_USAGE = (
    "framesift watch [-h] [--urls FILE] [--debounce SECONDS] [--log FILE] [-- SNAKEMAKE_ARG ...]"
)
WATCH_EPILOG = """\
Everything after "--" goes to snakemake unchanged (default: --cores all --keep-going
--rerun-incomplete). Examples:
  framesift watch -- --cores 8 --resources gpu=1
  framesift watch --urls my_urls.txt -- --workflow-profile workflow/profiles/slurm
"""


def _positive_seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def add_watch_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``framesift watch``."""
    parser = subparsers.add_parser(
        "watch",
        help="re-run the workflow whenever the URL file changes",
        description="Run the workflow once, then again whenever the set of URLs in the URL\n"
        "file changes (debounced; never two runs at once). Ctrl-C stops cleanly,\n"
        "a second Ctrl-C kills Snakemake.",
        usage=WATCH_USAGE,
        epilog=WATCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--urls",
        metavar="FILE",
        help="URL file to watch, passed to snakemake as --config urls=FILE (default: the "
        "`urls:` of the config snakemake gets: config/config.yaml, --configfile/--config "
        "after --, or the last run's)",
    )
    parser.add_argument(
        "--debounce",
        metavar="SECONDS",
        type=_positive_seconds,
        default=2.0,
        help="run once the file has been quiet this long (default: 2)",
    )
    parser.add_argument(
        "--log",
        metavar="FILE",
        help="append one line per event here (default: logs/watch.log); each run's "
        "snakemake output goes to <log dir>/<log name>-runs/",
    )
    parser.add_argument(
        "snakemake_args",
        nargs="*",
        metavar="SNAKEMAKE_ARG",
        help="arguments for snakemake, after --",
    )
    parser.set_defaults(handler=_run_watch, parser=parser)


def _run_watch(args: argparse.Namespace) -> int:
    from framesift.cli.watch import run_watch

    return run_watch(args.urls, args.snakemake_args, debounce=args.debounce, log=args.log)


# Each entry registers one subcommand. To add one (e.g. ``framesift demo``), write
# ``add_parser(subparsers)`` in its module and list it here, e.g. ``demo.add_parser``.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_watch_parser,
    demo.add_parser,
    status.add_parsers,
    workers.add_parser,
    doctor.add_parser,
]


def build_parser() -> argparse.ArgumentParser:
    """The ``framesift`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="framesift",
        description="Video URLs in, a de-duplicated, labelled image dataset out.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"framesift {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add_parser in SUBCOMMANDS:
        add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``framesift`` console script; returns the exit code."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # reported by the subcommand's parser, whose usage then shows where they go
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
