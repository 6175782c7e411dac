"""The dedup table clusters.tsv (framesift.dataset.clusters): format, round trip and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from framesift.dataset.clusters import COLUMNS, ClusterRow, read_cluster_table, write_cluster_table

ROWS = [
    ClusterRow(0, "va", "va_000000000.jpg", 0, "0123456789abcdef", False, "vb/vb_000000000.jpg", 3),
    ClusterRow(
        1, "va", "va_000000500.jpg", 500, "fedcba9876543210", True, "va/va_000000500.jpg", 0
    ),
    ClusterRow(0, "vb", "vb_000000000.jpg", 0, "0123456789abcdec", True, "vb/vb_000000000.jpg", 0),
]


def test_format_is_a_tsv_with_a_header(tmp_path: Path) -> None:
    path = tmp_path / "dedup" / "clusters.tsv"
    write_cluster_table(path, ROWS)
    assert path.read_bytes() == (
        b"cluster\tvideo_id\tfile\ttimestamp_ms\thash\tkept\trepresentative\tdistance\n"
        b"0\tva\tva_000000000.jpg\t0\t0123456789abcdef\t0\tvb/vb_000000000.jpg\t3\n"
        b"1\tva\tva_000000500.jpg\t500\tfedcba9876543210\t1\tva/va_000000500.jpg\t0\n"
        b"0\tvb\tvb_000000000.jpg\t0\t0123456789abcdec\t1\tvb/vb_000000000.jpg\t0\n"
    )
    assert list(read_cluster_table(path)) == ROWS
    assert [p.name for p in path.parent.iterdir()] == ["clusters.tsv"]  # no temp file left


def test_odd_file_names_round_trip(tmp_path: Path) -> None:
    odd = ClusterRow(2, "v", 'a\tb"c\nd.jpg', 9, "00", True, 'v/a\tb"c\nd.jpg', 0)
    path = tmp_path / "clusters.tsv"
    write_cluster_table(path, [odd, *ROWS])
    assert list(read_cluster_table(path)) == [odd, *ROWS]


def test_empty_and_missing_tables(tmp_path: Path) -> None:
    path = tmp_path / "clusters.tsv"
    write_cluster_table(path, [])
    assert path.read_text() == "\t".join(COLUMNS) + "\n"
    assert list(read_cluster_table(path)) == []
    assert list(read_cluster_table(tmp_path / "missing.tsv")) == []


def test_other_layouts_and_bad_rows_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "clusters.tsv"
    old = "cluster\tvideo_id\tfile\ttimestamp_ms\thash\tkept\trepresentative\n"  # no distance
    path.write_text(old + "0\tva\ta.jpg\t0\t00\t1\tva/a.jpg\n")
    with pytest.raises(ValueError, match="expected columns .*distance"):
        list(read_cluster_table(path))
    header = "\t".join(COLUMNS) + "\n"
    for row, message in (
        ("0\tva\ta.jpg\t0\t00\t1\tva/a.jpg\n", r"clusters.tsv:2: expected 8 columns, got 7"),
        ("0\tva\ta.jpg\t0\t00\tyes\tva/a.jpg\t0\n", "kept must be 0 or 1"),
        ("0\tva\ta.jpg\tlate\t00\t1\tva/a.jpg\t0\n", r"clusters.tsv:2: invalid literal"),
    ):
        path.write_text(header + row)
        with pytest.raises(ValueError, match=message):
            list(read_cluster_table(path))
