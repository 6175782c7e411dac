"""Configuration: the packaged schema (the only source of defaults), the schema check with
one-line errors that name the offending key, the resolution of the config for commands that run
outside Snakemake, and README's configuration table generated from the schema
(``python -m framesift.core.config --markdown-table``)."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import copy
import json
import sys
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from framesift.core.settings import Settings


def _package_file(name: str) -> Path:
    """A file shipped in the framesift package, as a path (Snakemake's ``validate`` takes one).

    Wheels install unpacked, so this is the file itself; a zipped install is extracted once.
    """
    resource = resources.files(__package__).joinpath(name)
    if isinstance(resource, Path):
        return resource
    extracted = contextlib.ExitStack()
    atexit.register(extracted.close)
    return extracted.enter_context(resources.as_file(resource))


SCHEMA = _package_file("config.schema.yaml")
DEFAULT_CONFIGFILE = Path("config/config.yaml")


def load_schema(schema_path: str | Path = SCHEMA) -> dict[str, Any]:
    """The config schema (a JSON schema written in YAML)."""
    return yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))


def config_problem(config: dict[str, Any], schema_path: str | Path = SCHEMA) -> str | None:
    """One line describing the most relevant schema violation of ``config``, or None."""
    error = best_match(Draft202012Validator(load_schema(schema_path)).iter_errors(config))
    if error is None:
        return None
    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        where = f"{key}." if error.absolute_path else ""
        allowed = ", ".join(error.schema.get("properties", {}))
        return f"config: unknown key {where}{unknown[0]}; allowed here: {allowed}"
    if error.validator == "enum":
        choices = ", ".join(map(str, error.validator_value))
        return f"config key {key}: {error.instance!r} is not one of {choices}"
    return f"config key {key}: {error.message}"


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line naming the file or key."""


def _merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """``layer`` over ``base``; nested mappings merge key by key (as Snakemake layers files)."""
    merged = dict(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _fill_defaults(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Fill missing keys from the schema's defaults, recursively (in place)."""
    for key, sub in schema.get("properties", {}).items():
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        if isinstance(config.get(key), dict):
            _fill_defaults(config[key], sub)


def resolve_config(
    configfiles: Sequence[str | Path] = (DEFAULT_CONFIGFILE,),
    overrides: dict[str, Any] | None = None,
    workdir: str | Path = ".",
    schema_path: str | Path = SCHEMA,
) -> dict[str, Any]:
    """The configuration the workflow sees: files layered in order, then ``overrides`` (as
    ``--config key=value``), checked against the schema, defaults filled in.

    Relative paths are taken from ``workdir`` (Snakemake's ``--directory``). Commands that run
    outside Snakemake (``framesift status``, ``retry-failed``, ``doctor``, ``watch``) resolve
    their config here, from the files the last run recorded (framesift.core.run_record).
    """
    config: dict[str, Any] = {}
    for name in configfiles:
        path = Path(workdir, name)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            if Path(name) == DEFAULT_CONFIGFILE:
                continue  # no config file: the defaults apply
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"config file {str(path)!r}: {error}".splitlines()[0]) from None
        config = _merge(config, loaded)
    config = _merge(config, overrides or {})  # as Snakemake's --config: nested keys merge
    return complete_config(config, schema_path)


def complete_config(config: dict[str, Any], schema_path: str | Path = SCHEMA) -> dict[str, Any]:
    """``config`` checked against the schema (ConfigError: one line), defaults filled in."""
    config = copy.deepcopy(config)
    problem = config_problem(config, schema_path)
    if problem:
        raise ConfigError(problem)
    _fill_defaults(config, load_schema(schema_path))
    return config


def settings_for(partial: dict[str, Any] | None = None) -> Settings:
    """Typed settings of ``partial`` (any config sections, e.g. ``{"download": {"retries":
    0}}``) with the schema's defaults for the rest: for tests, benchmarks and the demo."""
    return Settings.from_config(complete_config(partial or {}))


# -- README's configuration table, generated from the schema ---------------------------------
TABLE_START = (
    "<!-- config table: generated from src/framesift/core/config.schema.yaml by "
    "`python -m framesift.core.config --update-readme README.md`; edit the schema, not this -->"
)
TABLE_END = "<!-- end of config table -->"


def schema_keys(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted key, its schema) of every leaf key, in the schema's order."""
    for name, sub in schema.get("properties", {}).items():
        if "properties" in sub:
            yield from schema_keys(sub, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", sub


def _default_text(value: Any) -> str:
    """A default as the table shows it: strings bare, everything else as YAML/JSON writes it."""
    return value if isinstance(value, str) else json.dumps(value)


def markdown_table(schema_path: str | Path = SCHEMA) -> str:
    """README's configuration table: key, default and meaning of every schema key."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key, sub in schema_keys(load_schema(schema_path)):
        meaning = sub["description"].replace("|", "\\|")
        rows.append(f"| `{key}` | `{_default_text(sub['default'])}` | {meaning} |")
    return "\n".join(rows) + "\n"


def readme_table(text: str) -> str:
    """The generated table in README ``text`` (ValueError: its markers are missing)."""
    try:
        start = text.index(TABLE_START) + len(TABLE_START)
        return text[start : text.index(TABLE_END, start)].strip("\n") + "\n"
    except ValueError:
        raise ValueError(f"README has no {TABLE_START!r} ... {TABLE_END!r} block") from None


def with_table(text: str, table: str) -> str:
    """README ``text`` with ``table`` between the markers."""
    readme_table(text)  # both markers are there
    start = text.index(TABLE_START) + len(TABLE_START)
    return f"{text[:start]}\n{table}{text[text.index(TABLE_END, start) :]}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m framesift.core.config``: print README's config table, or update README."""
    parser = argparse.ArgumentParser(
        prog="python -m framesift.core.config", description=__doc__, allow_abbrev=False
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--markdown-table", action="store_true", help="print the table")
    action.add_argument("--update-readme", metavar="FILE", help="rewrite the table in FILE")
    args = parser.parse_args(argv)
    if args.markdown_table:
        sys.stdout.write(markdown_table())
        return 0
    readme = Path(args.update_readme)
    readme.write_text(with_table(readme.read_text(encoding="utf-8"), markdown_table()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
