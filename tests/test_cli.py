"""The ``framesift`` command line: version, subcommand dispatch and ``watch`` arguments."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from framesift import __version__, cli

WATCH_USAGE = (
    "usage: framesift watch [-h] [--urls FILE] [--debounce SECONDS] [--log FILE] "
    "[-- SNAKEMAKE_ARG ...]"
)


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"framesift {__version__}"


def test_module_and_console_script_print_the_version():
    commands = [[sys.executable, "-m", "framesift.cli", "--version"]]
    script = Path(sys.executable).with_name("framesift")
    if script.exists():
        commands.append([str(script), "--version"])
    for command in commands:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert (proc.returncode, proc.stdout.strip()) == (0, f"framesift {__version__}")


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "watch" in capsys.readouterr().err


def test_watch_usage(capsys):
    with pytest.raises(SystemExit):
        cli.main(["watch", "--help"])
    help_text = capsys.readouterr().out
    assert help_text.startswith(WATCH_USAGE + "\n")
    assert "--workflow-profile workflow/profiles/slurm" in help_text


def test_watch_arguments():
    args = cli.build_parser().parse_args(
        ["watch", "--urls", "u.txt", "--debounce", "0.5", "--log", "w.log",
         "--", "--cores", "8", "--resources", "gpu=1"]
    )  # fmt: skip
    assert (args.urls, args.debounce, args.log) == ("u.txt", 0.5, "w.log")
    assert args.snakemake_args == ["--cores", "8", "--resources", "gpu=1"]
    assert args.handler is not None
    defaults = cli.build_parser().parse_args(["watch"])
    assert (defaults.urls, defaults.debounce, defaults.log, defaults.snakemake_args) == (
        None, 2.0, None, []
    )  # fmt: skip


@pytest.mark.parametrize("argv", [["watch", "--debounce", "-1"], ["watch", "--cores", "8"]])
def test_watch_rejects_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("usage: framesift watch")


def test_subcommands_register_through_add_parser(monkeypatch):
    def add_hello(subparsers: argparse._SubParsersAction) -> None:
        parser = subparsers.add_parser("hello")
        parser.add_argument("--code", type=int, default=0)
        parser.set_defaults(handler=lambda args: args.code)

    monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS, add_hello])
    assert cli.main(["hello", "--code", "7"]) == 7
    assert cli.main(["hello"]) == 0
