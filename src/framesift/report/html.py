"""The HTML run report (``results/report/index.html``).

One self-contained page readable offline: inline CSS, no scripts, no remote resources. It shows
the per-video table (state, counts, failure reason), per-class box counts, a contact sheet of
dataset images with their boxes drawn, examples of near-duplicates the dedup dropped, the split
sizes and what changed since the previous report. Its parts: framesift.report.data (what is
read), framesift.report.thumbnails (``report/thumbs/``), framesift.report.diff (the comparison with
the previous report), framesift.report.sections and framesift.report.css (the page).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from framesift.core.fsutil import atomic_write_text
from framesift.core.layout import Layout
from framesift.lifecycle.records import now_iso
from framesift.lifecycle.states import video_state
from framesift.report.css import CSS
from framesift.report.data import (
    boxes_per_class,
    dedup_examples,
    read_class_names,
    read_dataset_labels,
    read_dataset_manifest,
    sample_images,
)
from framesift.report.diff import SNAPSHOT, compare, read_snapshot, snapshot, write_snapshot
from framesift.report.sections import (
    changes_since,
    class_chart,
    contact_sheet,
    dedup_section,
    overview,
    skipped_lines,
    videos_table,
)
from framesift.report.thumbnails import Thumbnails

MAX_IMAGES = 200  # contact-sheet thumbnails
MAX_CLUSTERS = 12  # dedup examples
MAX_REPLACED = 4  # replaced frames shown per example
THUMBS = "thumbs"  # the thumbnails' folder, beside index.html
_NAV = (
    ("overview", "Overview"),
    ("changes", "Changes"),
    ("videos", "Videos"),
    ("classes", "Classes"),
    ("sheet", "Contact sheet"),
    ("dedup", "Dedup"),
)


def write_html_report(
    layout: Layout,
    videos: Sequence[tuple[str, str]],
    summary: Mapping[str, Any],
    max_images: int = MAX_IMAGES,
) -> Path:
    """Write ``results/report/index.html`` (and its thumbnails); return its path.

    ``videos`` are the run's (video id, URL) pairs in URL-file order, ``summary`` the dict of
    :func:`framesift.report.markdown.summary_dict`. Reads the dataset, ``dedup/clusters.tsv``,
    the stage records and the videos' info files under ``layout.root``.
    """
    out = layout.report_dir
    out.mkdir(parents=True, exist_ok=True)
    names = read_class_names(layout.data_yaml, summary.get("dataset", {}).get("classes", ()))
    thumbs = Thumbnails(out / THUMBS, names)
    entries = read_dataset_manifest(layout.manifest)
    labels = read_dataset_labels(layout.dataset, entries)
    per_video = summary.get("videos", {})
    current = snapshot([vid for vid, _ in videos], [e.image for e in entries])
    body = [
        overview(summary, len(videos)),
        changes_since(compare(read_snapshot(out / SNAPSHOT), current)),
        videos_table(layout, [video_state(layout, v, u, per_video) for v, u in videos], per_video),
        class_chart(names, boxes_per_class(entries, labels)),
        contact_sheet(layout, sample_images(entries, max_images), len(entries), labels, thumbs),
        dedup_section(layout, dedup_examples(layout.clusters, MAX_CLUSTERS, MAX_REPLACED), thumbs),
        skipped_lines(summary.get("skipped_url_lines", [])),
    ]
    index = layout.report_html
    atomic_write_text(index, _page("\n".join(part for part in body if part)))
    write_snapshot(out / SNAPSHOT, current)
    thumbs.remove_stale()
    return index


def _page(body: str) -> str:
    nav = "".join(f'<a href="#{anchor}">{label}</a>' for anchor, label in _NAV)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        " img-src 'self' file:; style-src 'unsafe-inline'\">"
        '<meta name="referrer" content="no-referrer">'
        f"<title>framesift report</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>framesift report</h1><p>generated {escape(now_iso())}</p></header>"
        f"<nav>{nav}</nav><main>\n{body}\n</main></body></html>\n"
    )
