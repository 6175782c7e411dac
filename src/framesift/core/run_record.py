"""The run record: what the last Snakemake run in a working directory resolved, so that the
commands that run outside Snakemake find the same config without being told.

Every start of the workflow's main Snakemake process (``rules/common.smk``) writes
``results/state/run.json``: the config files in the order Snakemake layered them, the
``--config`` values, the URL file, the results folder and the working directory.
``framesift status``, ``retry-failed``, ``doctor`` and ``watch`` read it when they are given no
``--configfile`` (explicit options win): :func:`resolve_project`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framesift.core.config import DEFAULT_CONFIGFILE, ConfigError, resolve_config
from framesift.core.fsutil import atomic_write_text
from framesift.core.layout import Layout
from framesift.core.settings import Settings

RESULTS = Layout().root  # the results folder, relative to the working directory


def record_file(results: str | Path) -> Path:
    """Where the run record of the results folder ``results`` lives."""
    return Layout(Path(results)).run_record


def _portable(path: str | Path, directory: Path) -> str:
    """``path`` relative to ``directory`` when inside it (the record survives a moved folder)."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(directory))
    except ValueError:
        return str(absolute)


def _last_of_each(paths: Iterable[Path]) -> list[Path]:
    """``paths`` with repeats dropped but the last (layering A, B, A equals layering B, A)."""
    ordered = list(paths)
    return [p for i, p in enumerate(ordered) if p not in ordered[i + 1 :]]


@dataclass(frozen=True)
class RunRecord:
    """What one run resolved; paths are absolute."""

    directory: Path
    configfiles: tuple[Path, ...]  # in the order they were layered
    overrides: dict[str, Any]  # the --config values
    urls: Path
    results: Path

    @classmethod
    def of_snakemake(cls, workflow: Any, config: dict[str, Any]) -> RunRecord:
        """The record of the Snakemake run parsing the workflow now (``workflow`` and ``config``
        are Snakemake's globals). Snakemake lists the files of ``configfile:`` directives after
        the command line's, but layers them first; ``--replace-workflow-config`` drops them."""
        cwd = Path.cwd()
        settings = workflow.config_settings
        given = [Path(os.path.abspath(p)) for p in settings.configfiles]
        own = [] if settings.replace_workflow_config else list(workflow.configfiles)
        directives = [cwd / p for p in own if Path(os.path.abspath(p)) not in given]
        return cls(
            directory=cwd,
            configfiles=tuple(_last_of_each([*directives, *given])),
            overrides=dict(settings.config),
            urls=cwd / config["urls"],
            results=cwd / Layout.from_settings(Settings.from_config(config)).root,
        )

    def to_json(self) -> str:
        """The record as written to ``run.json`` (paths inside the directory kept relative)."""
        data = {
            "directory": str(self.directory),
            "configfiles": [_portable(p, self.directory) for p in self.configfiles],
            "config": self.overrides,
            "urls": _portable(self.urls, self.directory),
            "results": _portable(self.results, self.directory),
        }
        return json.dumps(data, indent=1, default=str) + "\n"

    @classmethod
    def from_json(cls, text: str, directory: Path) -> RunRecord:
        """A record read back in ``directory`` (relative paths are taken from there)."""
        data = json.loads(text)
        return cls(
            directory=directory,
            configfiles=tuple(directory / p for p in data["configfiles"]),
            overrides=dict(data.get("config") or {}),
            urls=directory / data["urls"],
            results=directory / data["results"],
        )

    def snakemake_options(self, skip: Collection[str] = ()) -> list[str]:
        """``--configfile``/``--config`` options that make Snakemake resolve this config again
        (leaving out the ``--config`` values of the keys in ``skip``)."""
        options = ["--configfile", *map(str, self.configfiles)] if self.configfiles else []
        values = [_config_arg(k, v) for k, v in self.overrides.items() if k not in skip]
        return [*options, "--config", *values] if values else options


def _config_arg(key: str, value: Any) -> str:
    """``key=value`` as Snakemake's ``--config`` parses it back to ``value``."""
    if value is None:
        return f"{key}="
    scalar = isinstance(value, str | int | float)  # bools too: Snakemake reads True, False
    return f"{key}={value if scalar else json.dumps(value)}"


def write_run_record(record: RunRecord) -> bool:
    """Write ``record`` atomically into its results folder, unless it is there already as it
    is (a rerun changes no file); False when it cannot be written (the workflow reports an
    unwritable results folder itself, in one line)."""
    path, text = record_file(record.results), record.to_json()
    try:
        if not (path.is_file() and path.read_text() == text):
            atomic_write_text(path, text)
    except OSError:
        return False
    return True


def read_run_record(directory: str | Path = ".") -> RunRecord | None:
    """The record of the last run in ``directory``; None when there is none (or it is broken)."""
    directory = Path(os.path.abspath(directory))
    try:
        return RunRecord.from_json(record_file(directory / RESULTS).read_text(), directory)
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Project:
    """What a command outside Snakemake works on, resolved as the workflow would resolve it."""

    directory: Path
    configfiles: tuple[Path, ...]
    config: dict[str, Any]
    urls: Path
    layout: Layout
    recorded: bool  # the config files (and --config values) came from the run record

    def describe(self) -> str:
        """Where the config came from, for a header line."""
        files = " ".join(str(p) for p in self.configfiles) or "none, defaults"
        return f"{files}; the last run's, from {record_file(RESULTS)}" if self.recorded else files


@contextlib.contextmanager
def recorded_config(recorded: bool, option: str) -> Iterator[None]:
    """A ConfigError raised inside says, when the config came from the run record, where from
    and how to name another one (``option``)."""
    try:
        yield
    except ConfigError as error:
        if not recorded:
            raise
        where = f"the last run's config, from {record_file(RESULTS)}"
        raise ConfigError(f"{error} ({where}; name another with {option})") from None


def resolve_project(
    directory: str | Path = ".",
    configfiles: Sequence[str | Path] | None = None,
    urls: str | Path | None = None,
) -> Project:
    """The project in ``directory``: explicit ``configfiles``/``urls`` win; without
    ``configfiles``, those of the last run's record, else ``config/config.yaml``.
    ConfigError (one line) when the config is unusable."""
    directory = Path(directory)
    record = read_run_record(directory) if configfiles is None else None
    if record is not None:
        files, overrides = record.configfiles, record.overrides
    else:
        files, overrides = tuple(map(Path, configfiles or (DEFAULT_CONFIGFILE,))), {}
    with recorded_config(record is not None, "--configfile FILE"):
        config = resolve_config(files, overrides, workdir=directory)
    return Project(
        directory=directory,
        configfiles=files,
        config=config,
        urls=Path(urls) if urls is not None else directory / config["urls"],
        layout=Layout.from_settings(Settings.from_config(config), root=directory / RESULTS),
        recorded=record is not None,
    )
