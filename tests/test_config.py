"""Config checks: one-line errors naming the key; config.yaml documents exactly the defaults."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from framesift.config import config_problem

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def _defaults(schema: dict) -> dict:
    out = {}
    for key, sub in schema.get("properties", {}).items():
        out[key] = _defaults(sub) if sub.get("type") == "object" else sub["default"]
    return out


def test_shipped_config_is_valid_and_equals_schema_defaults():
    shipped = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config_problem(shipped, SCHEMA) is None
    assert shipped == _defaults(yaml.safe_load(SCHEMA.read_text()))


def test_readme_documents_every_key():
    readme = (REPO / "README.md").read_text()
    defaults = _defaults(yaml.safe_load(SCHEMA.read_text()))
    for section, value in defaults.items():
        keys = [f"{section}.{k}" for k in value] if isinstance(value, dict) else [section]
        for key in keys:
            assert f"`{key}`" in readme, f"README does not document {key}"


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
