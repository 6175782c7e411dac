"""The run report: per-video counts, dedup totals, dataset split, failures, videos with no
matching frame and skipped URL lines, as ``summary.json`` and as Markdown (``report.md``).

Strings that come from users or sites (URLs, titles, failure reasons, URL-file lines) are
neutralised before they enter the Markdown: no HTML tag, link, emphasis or table cell can be
injected through them (:func:`markdown_text`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from framesift.core.layout import Layout
from framesift.lifecycle.records import EMPTY, StageRecord
from framesift.lifecycle.states import video_title

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# backslash, code, emphasis, strikethrough, link/image brackets, table cell separator; an
# underscore only where it can open or close emphasis (not inside a word such as a_b)
_INLINE = re.compile(r"[\\`*~\[\]|]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_BLOCK_START = re.compile(r"^(?:[#+=-]|\d+(?=[.)]))")  # heading, list, setext underline


def markdown_text(value: Any) -> str:
    """``value`` as inert Markdown text on one line: it renders as the same characters.

    Control characters become spaces; ``& < >`` become HTML entities (no tag, no autolink);
    Markdown punctuation that could start a construct is backslash-escaped, ``|`` included, so
    the text is safe in a table cell.
    """
    text = _CONTROL.sub(" ", str(value)).strip()
    text = html.escape(_INLINE.sub(lambda m: "\\" + m.group(), text), quote=False)
    match = _BLOCK_START.match(text)
    if match:
        end = match.end()
        text = text[:end] + "\\" + text[end:] if text[0].isdigit() else "\\" + text
    return text


def summary_dict(
    result: Any, failures: Sequence[StageRecord], url_problems: Sequence[str]
) -> dict[str, Any]:
    """Machine-readable summary (``results/summary.json``).

    ``failures`` holds the failed and the empty (no matching frame) records; see
    :func:`split_failures`.
    """
    per_video = result.per_video
    totals = {
        key: sum(v[key] for v in per_video.values())
        for key in ("frames", "filtered", "after_collapse", "in_dataset")
    }
    return {
        "videos": per_video,
        "totals": {**totals, "videos": len(per_video), "clusters": result.clusters},
        "dataset": result.dataset,
        "labels": {"reused": result.labels_reused, "computed": result.labels_computed},
        "failures": [
            {
                "video_id": f.video_id,
                "stage": f.stage,
                "state": f.describe(),
                "reason": f.reason,
                "url": f.url,
                "finished": f.finished,
            }
            for f in failures
        ],
        "skipped_url_lines": list(url_problems),
    }


def split_failures(
    summary: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The summary's ``failures`` entries as (failed videos, videos with no matching frame):
    README's ``empty`` state is not a failure."""
    entries = summary.get("failures", [])
    failed = [f for f in entries if f.get("state") != EMPTY]
    return failed, [f for f in entries if f.get("state") == EMPTY]


def video_titles(layout: Layout, video_ids: Iterable[str]) -> dict[str, str]:
    """The title of each video from its info file ("" when unknown), for the videos table."""
    return {vid: video_title(layout, vid) for vid in video_ids}


def render_markdown(summary: Mapping[str, Any], titles: Mapping[str, str] | None = None) -> str:
    """The human report (``results/report.md``); with ``titles`` (see :func:`video_titles`) the
    videos table has a title column."""
    totals, dataset = summary["totals"], summary["dataset"]
    lines = [
        "# framesift report",
        "",
        f"- videos: {totals['videos']}",
        f"- frames extracted: {totals['frames']}",
        f"- kept by the filter: {totals['filtered']}",
        f"- after collapsing consecutive near-duplicates: {totals['after_collapse']}",
        f"- after cross-video dedup (dataset images): {totals['in_dataset']}"
        f" in {totals['clusters']} clusters",
        f"- labels reused from the filter/cache: {summary['labels']['reused']},"
        f" computed now: {summary['labels']['computed']}",
        "",
        "| split | images | boxes | videos |",
        "|---|---|---|---|",
    ]
    for split, counts in dataset["splits"].items():
        lines.append(f"| {split} | {counts['images']} | {counts['boxes']} | {counts['videos']} |")
    if dataset.get("warning"):
        lines += ["", f"**Warning:** {dataset['warning']}"]
    lines += ["", "## Videos", "", *_videos_table(summary["videos"], titles)]
    failed, no_match = split_failures(summary)
    lines += ["", "## Failures", ""]
    lines += [
        f"- {f['video_id']} ({f['stage']}, {f['state']}): {markdown_text(f['reason'])}"
        for f in failed
    ] or ["none"]
    lines += ["", "## No matching frame", ""]
    lines += [
        f"- {f['video_id']} ({f['stage']}): {markdown_text(f['reason'])}" for f in no_match
    ] or ["none"]
    lines += ["", "## Skipped URL lines", ""]
    lines += [f"- {markdown_text(line)}" for line in summary["skipped_url_lines"]] or ["none"]
    return "\n".join(lines) + "\n"


def _videos_table(
    videos: Mapping[str, Mapping[str, Any]], titles: Mapping[str, str] | None
) -> list[str]:
    columns = ["video", "frames", "filtered", "after collapse", "in dataset", "url"]
    if titles is not None:
        columns.insert(1, "title")
    rows = [f"| {' | '.join(columns)} |", "|" + "---|" * len(columns)]
    for vid, v in videos.items():
        cells = [vid, v["frames"], v["filtered"], v["after_collapse"], v["in_dataset"]]
        cells.append(markdown_text(v["url"]))
        if titles is not None:
            cells.insert(1, markdown_text(titles.get(vid, "")) or "–")
        rows.append(f"| {' | '.join(str(c) for c in cells)} |")
    return rows
