"""The ``framesift`` command line: version, subcommand dispatch, ``watch`` arguments, and the
project commands (status, retry-failed, doctor) finding the config of the last run."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import REPO

import framesift.cli.main as cli_module
from framesift import __version__
from framesift.cli.main import build_parser
from framesift.cli.main import main as cli_main
from framesift.core.urls import video_id

WATCH_USAGE = (
    "usage: framesift watch [-h] [--urls FILE] [--debounce SECONDS] [--log FILE] "
    "[-- SNAKEMAKE_ARG ...]"
)


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"framesift {__version__}"


def test_module_and_console_script_print_the_version():
    commands = [[sys.executable, "-m", "framesift.cli.main", "--version"]]
    script = Path(sys.executable).with_name("framesift")
    if script.exists():
        commands.append([str(script), "--version"])
    for command in commands:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert (proc.returncode, proc.stdout.strip()) == (0, f"framesift {__version__}")


def test_no_command_prints_help_and_fails(capsys):
    assert cli_main([]) == 2
    assert "watch" in capsys.readouterr().err


def test_watch_usage(capsys):
    with pytest.raises(SystemExit):
        cli_main(["watch", "--help"])
    help_text = capsys.readouterr().out
    assert help_text.startswith(WATCH_USAGE + "\n")
    assert "--workflow-profile workflow/profiles/slurm" in help_text


def test_watch_arguments():
    args = build_parser().parse_args(
        ["watch", "--urls", "u.txt", "--debounce", "0.5", "--log", "w.log",
         "--", "--cores", "8", "--resources", "gpu=1"]
    )  # fmt: skip
    assert (args.urls, args.debounce, args.log) == ("u.txt", 0.5, "w.log")
    assert args.snakemake_args == ["--cores", "8", "--resources", "gpu=1"]
    assert args.handler is not None
    defaults = build_parser().parse_args(["watch"])
    assert (defaults.urls, defaults.debounce, defaults.log, defaults.snakemake_args) == (
        None, 2.0, None, []
    )  # fmt: skip


@pytest.mark.parametrize("argv", [["watch", "--debounce", "-1"], ["watch", "--cores", "8"]])
def test_watch_rejects_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(argv)
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("usage: framesift watch")


def test_subcommands_register_through_add_parser(monkeypatch):
    def add_hello(subparsers: argparse._SubParsersAction) -> None:
        parser = subparsers.add_parser("hello")
        parser.add_argument("--code", type=int, default=0)
        parser.set_defaults(handler=lambda args: args.code)

    monkeypatch.setattr(cli_module, "SUBCOMMANDS", [*cli_module.SUBCOMMANDS, add_hello])
    assert cli_main(["hello", "--code", "7"]) == 7
    assert cli_main(["hello"]) == 0


OWN_URL, OTHER_URL = "http://127.0.0.1:9/own.mp4", "http://127.0.0.1:9/other.mp4"


def framesift(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "framesift", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def subcommand_options(name: str) -> set[str]:
    """The option strings of one subcommand's parser."""
    actions = build_parser()._actions
    subparsers = next(a for a in actions if isinstance(a, argparse._SubParsersAction))
    return set(subparsers.choices[name]._option_string_actions)


@pytest.mark.slow
@pytest.mark.parametrize("own_config", [False, True], ids=["bare directory", "own config"])
def test_commands_without_options_use_the_last_runs_config(tmp_path, own_config):
    root = tmp_path / "project"
    if own_config:  # config/config.yaml names config/urls.txt, which the run does not use
        (root / "config").mkdir(parents=True)
        (root / "config" / "config.yaml").write_text("filter: {model: none}\n")
        (root / "config" / "urls.txt").write_text(OWN_URL + "\n")
    root.mkdir(exist_ok=True)
    (root / "other.yaml").write_text("urls: other.txt\nfilter: {model: none}\n")
    (root / "other.txt").write_text(OTHER_URL + "\n")
    run = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--configfile", "other.yaml", "--cores", "1", "check_model"]  # fmt: skip
    proc = subprocess.run(run, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    other, own = video_id(OTHER_URL), video_id(OWN_URL)
    status = framesift(root, "status")
    assert status.returncode == 0, status.stderr
    assert other in status.stdout and own not in status.stdout
    assert framesift(root, "retry-failed", other).returncode == 0  # a video of other.txt
    doctor = framesift(root, "doctor")
    assert re.search(r"ok +URL file \S*other\.txt: 1 video", doctor.stdout), doctor.stdout
    if own_config:  # explicit options win
        status = framesift(root, "status", "--configfile", "config/config.yaml")
        assert own in status.stdout and other not in status.stdout
        status = framesift(root, "status", "--urls", "config/urls.txt")
        assert own in status.stdout and other not in status.stdout


@pytest.mark.parametrize("command", ["status", "retry-failed", "doctor"])
def test_hints_name_options_the_command_has(tmp_path, command):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("filter: {model: none}\n")  # no URL file
    proc = framesift(tmp_path, command)
    hints = [line for line in (proc.stdout + proc.stderr).splitlines() if "urls.txt" in line]
    assert hints, proc.stdout + proc.stderr
    named = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", " ".join(hints)))
    assert "--urls" in named and named <= subcommand_options(command), hints
    # --config is Snakemake's option; here it is refused, never read as --configfile
    proc = framesift(tmp_path, command, "--config", "urls=other.txt")
    assert proc.returncode == 2
    assert "unrecognized arguments: --config" in proc.stderr
