"""README's configuration table is generated from the packaged schema and must not drift from it
(regenerate with ``python -m framesift.core.config --update-readme README.md``)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from testkit import REPO

from framesift.core.config import (
    TABLE_END,
    TABLE_START,
    load_schema,
    markdown_table,
    readme_table,
    schema_keys,
    with_table,
)

README = REPO / "README.md"


def test_readme_table_is_the_schema_table():
    assert readme_table(README.read_text()) == markdown_table(), (
        "README's configuration table differs from the schema: edit "
        "src/framesift/core/config.schema.yaml, then run "
        "`python -m framesift.core.config --update-readme README.md`"
    )


def test_every_schema_key_has_a_row_with_its_default_and_meaning():
    rows = markdown_table().splitlines()[2:]
    keys = list(schema_keys(load_schema()))
    assert len(rows) == len(keys)
    for row, (key, sub) in zip(rows, keys, strict=True):
        assert row.startswith(f"| `{key}` | `"), row
        assert sub["description"].strip() and "default" in sub, key


def test_a_drifted_table_is_detected_and_rewritten(tmp_path):
    row = "| `dedup.threshold` | `8` |"
    drifted = README.read_text().replace(row, row.replace("`8`", "`9`"))
    assert readme_table(drifted) != markdown_table()
    copy = tmp_path / "README.md"
    copy.write_text(drifted)
    command = [sys.executable, "-m", "framesift.core.config", "--update-readme", str(copy)]
    subprocess.run(command, check=True, timeout=60)
    assert copy.read_text() == README.read_text()
    assert with_table(README.read_text(), markdown_table()) == README.read_text()


def test_markers_are_required():
    with pytest.raises(ValueError, match="config table"):
        readme_table("# no table here\n")
    assert README.read_text().count(TABLE_START) == README.read_text().count(TABLE_END) == 1
