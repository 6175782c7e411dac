"""Configuration: the schema check with one-line errors that name the offending key, and the
resolution of the config for commands that run outside Snakemake."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match


def config_problem(config: dict[str, Any], schema_path: str | Path) -> str | None:
    """One line describing the most relevant schema violation of ``config``, or None."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    error = best_match(Draft202012Validator(schema).iter_errors(config))
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


SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIGFILE = Path("config/config.yaml")


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
    """The configuration the workflow sees: files layered in order, top-level ``overrides``
    (as ``--config key=value``), checked against the schema, defaults filled in.

    Relative paths are taken from ``workdir`` (Snakemake's ``--directory``). Commands that run
    outside Snakemake (``framesift status``, ``retry-failed``) resolve their config here.
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
    config.update(overrides or {})
    problem = config_problem(config, schema_path)
    if problem:
        raise ConfigError(problem)
    _fill_defaults(config, yaml.safe_load(Path(schema_path).read_text()))
    return config
