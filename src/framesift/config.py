"""Configuration check with one-line errors that name the offending key."""

from __future__ import annotations

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
