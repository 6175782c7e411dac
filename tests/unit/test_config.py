"""Config checks: the schema is package data and the only source of defaults; one-line errors
naming the key; config.yaml holds only what a user typically changes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from testkit import REPO

import framesift
from framesift.core.config import SCHEMA, config_problem, load_schema, resolve_config, schema_keys

USER_KEYS = {"urls", "filter.model", "filter.classes"}


def _leaves(config: dict, prefix: str = "") -> dict:
    """Dotted key -> value of every leaf of a config."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_schema_is_package_data():
    assert SCHEMA.parent == Path(framesift.__file__).parent / "core"
    assert SCHEMA.name == "config.schema.yaml" and SCHEMA.is_file()
    assert not (REPO / "workflow" / "schemas" / "config.schema.yaml").exists()  # one copy


def test_shipped_config_holds_only_user_keys_at_their_defaults():
    shipped = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config_problem(shipped) is None
    defaults = {key: sub["default"] for key, sub in schema_keys(load_schema())}
    assert set(_leaves(shipped)) == USER_KEYS
    assert {key: defaults[key] for key in USER_KEYS} == _leaves(shipped)
    text = (REPO / "config" / "config.yaml").read_text()
    assert "README" in text and "framesift doctor" in text


def test_config_values_merge_into_nested_sections(tmp_path):
    (tmp_path / "a.yaml").write_text("frames: {fps: 3.0}\n")
    config = resolve_config(["a.yaml"], {"frames": {"mode": "scene"}}, workdir=tmp_path)
    assert (config["frames"]["fps"], config["frames"]["mode"]) == (3.0, "scene")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"frames": {"fps": "fast"}}, "config key frames.fps: 'fast' is not of type 'number'"),
        ({"frames": {"mode": "bogus"}}, "config key frames.mode: 'bogus' is not one of fps,"),
        ({"frames": {"fsp": 2}}, "config: unknown key frames.fsp; allowed here: mode, fps"),
        ({"bogus": 1}, "config: unknown key bogus; allowed here: urls, download"),
        ({"filter": {"classes": "dog"}}, "config key filter.classes: 'dog' is not of type"),
        ({"dedup": {"threshold": -1}}, "config key dedup.threshold: -1 is less than"),
    ],
)
def test_errors_are_one_line_naming_the_key(config, expected):
    problem = config_problem(config, SCHEMA)
    assert problem is not None and problem.startswith(expected), problem
    assert "\n" not in problem


def test_valid_partial_config_passes():
    assert config_problem({"frames": {"mode": "scene"}, "filter": {"classes": []}}, SCHEMA) is None
