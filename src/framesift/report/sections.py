"""The sections of the HTML report, each rendered to an HTML fragment.

Every string that comes from the results (URLs, titles, reasons, file names) is escaped here;
links are made for http(s) URLs only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from framesift.core.layout import Layout
from framesift.dataset.clusters import ClusterRow
from framesift.lifecycle.states import IN_DATASET, PENDING, VideoState, read_info
from framesift.report.data import DatasetEntry, DedupSummary, YoloBox
from framesift.report.diff import Changes
from framesift.report.markdown import split_failures
from framesift.report.thumbnails import Thumbnails, class_color

THUMB_WIDTH = 320
DEDUP_WIDTH = 200
MAX_LISTED = 40  # names listed per change (added / removed images), the rest counted


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 new video``, ``2 new videos``, ``3 boxes``; ``many`` when the plural is not ``one``
    with an s (or es) at the end, e.g. ``plural(n, "image added", "images added")``."""
    if many is None:
        many = one + ("es" if one.endswith(("s", "x", "ch", "sh")) else "s")
    return f"{n:,} {one if n == 1 else many}"


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "–"


def _duration(seconds: Any) -> str:
    """``1:02:03`` / ``2:03`` from seconds, "–" when unknown."""
    if not isinstance(seconds, int | float) or seconds < 0:
        return "–"
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _timestamp(ms: int) -> str:
    m, rest = divmod(int(ms), 60000)
    return f"{m}:{rest / 1000:06.3f}"


def _link(url: str) -> str:
    """A link for http(s) URLs (escaped), plain escaped text for anything else."""
    if urlsplit(url).scheme.lower() in ("http", "https"):
        return f'<a href="{_e(url)}" rel="noreferrer noopener">{_e(url)}</a>'
    return _e(url)


def _state_class(state: VideoState) -> str:
    if state.failed:
        return "bad"
    if state.state == IN_DATASET:
        return "ok"
    if state.state == PENDING:
        return "wait"
    return "other"


def overview(summary: Mapping[str, Any], n_videos: int) -> str:
    """Totals as cards, the split table and the dataset's notes."""
    totals = summary.get("totals", {})
    dataset = summary.get("dataset", {})
    failed, no_match = split_failures(summary)
    cards = [
        ("videos", totals.get("videos", n_videos)),
        ("frames extracted", totals.get("frames")),
        ("kept by the filter", totals.get("filtered")),
        ("after in-video collapse", totals.get("after_collapse")),
        ("dataset images", totals.get("in_dataset")),
        ("dedup clusters", totals.get("clusters")),
        ("failed videos", len(failed)),
        ("no matching frame", len(no_match)),
    ]
    stats = "".join(
        f'<div class="stat"><b>{_num(value)}</b><span>{_e(label)}</span></div>'
        for label, value in cards
    )
    split_rows = "".join(
        f'<tr><td>{_e(split)}</td><td class="n">{_num(c.get("images"))}</td>'
        f'<td class="n">{_num(c.get("boxes"))}</td><td class="n">{_num(c.get("videos"))}</td>'
        "</tr>"
        for split, c in dataset.get("splits", {}).items()
    )
    notes = []
    if dataset.get("warning"):
        notes.append(f'<p class="warning">⚠ {_e(dataset["warning"])}</p>')
    if dataset.get("val_is_train"):
        notes.append('<p class="muted">No separate validation split: val = train.</p>')
    labels = summary.get("labels", {})
    if labels:
        notes.append(
            f'<p class="muted">Labels reused from the filter/cache: {_num(labels.get("reused"))},'
            f" computed now: {_num(labels.get('computed'))}.</p>"
        )
    return (
        '<section id="overview"><div class="stats">'
        + stats
        + "</div>"
        + '<h2>Dataset splits</h2><table class="splits"><thead><tr><th>split</th>'
        '<th class="n">images</th><th class="n">boxes</th><th class="n">videos</th></tr>'
        "</thead><tbody>" + split_rows + "</tbody></table>" + "".join(notes) + "</section>"
    )


_CHANGE_LABELS = (  # (attribute of Changes, one, many, css class)
    ("new_videos", "new video", "new videos", "plus"),
    ("gone_videos", "video no longer listed", "videos no longer listed", "minus"),
    ("added", "image added", "images added", "plus"),
    ("removed", "image removed", "images removed", "minus"),
)


def changes_since(changes: Changes) -> str:
    """What changed since the previous report."""
    head = '<section id="changes"><h2>Since the previous report</h2>'
    if not changes.since:
        return head + '<p class="muted">First report: nothing to compare with.</p></section>'
    if not (changes.added or changes.removed or changes.new_videos or changes.gone_videos):
        return head + f'<p class="muted">No change since {_e(changes.since)}.</p></section>'
    items = []
    for attribute, one, many, cls in _CHANGE_LABELS:
        values = getattr(changes, attribute)
        if not values:
            continue
        shown = ", ".join(f"<code>{_e(v)}</code>" for v in values[:MAX_LISTED])
        more = f" … and {len(values) - MAX_LISTED:,} more" if len(values) > MAX_LISTED else ""
        items.append(
            f'<li class="{cls}"><b>{plural(len(values), one, many)}</b>: {shown}{more}</li>'
        )
    return (
        head
        + f'<p class="muted">Compared with the report of {_e(changes.since)}.</p>'
        + '<ul class="changes">'
        + "".join(items)
        + "</ul></section>"
    )


def videos_table(
    layout: Layout, states: Sequence[VideoState], per_video: Mapping[str, Mapping[str, Any]]
) -> str:
    """One row per video: title, URL, duration, counts, state and reason."""
    rows = []
    for s in states:
        counts = per_video.get(s.video_id, {})
        info = read_info(layout, s.video_id)
        frames = counts.get("frames", s.frames)
        kept = counts.get("filtered", s.kept)
        reason = f"{s.stage}: {s.reason}" if s.stage and s.reason else s.reason or s.stage
        reason_class = "reason bad" if s.failed else "reason"
        rows.append(
            f'<tr id="v-{_e(s.video_id)}"><td><code>{_e(s.video_id)}</code></td>'
            f'<td class="title">{_e(info.get("title") or s.title or "–")}</td>'
            f'<td class="url">{_link(s.url)}</td>'
            f'<td class="n">{_duration(info.get("duration"))}</td>'
            f'<td class="n">{_num(frames)}</td><td class="n">{_num(kept)}</td>'
            f'<td class="n">{_num(counts.get("after_collapse"))}</td>'
            f'<td class="n">{_num(counts.get("in_dataset", s.in_dataset))}</td>'
            f'<td><span class="badge {_state_class(s)}">{_e(s.state)}</span></td>'
            f'<td class="{reason_class}">{_e(reason)}</td></tr>'
        )
    return (
        f'<section id="videos"><h2>Videos <small>{len(states):,}</small></h2>'
        '<div class="scroll"><table class="videos"><thead><tr><th>video</th><th>title</th>'
        '<th>URL</th><th class="n">duration</th><th class="n" title="frames extracted">'
        'extracted</th><th class="n" title="kept by the filter">filtered</th>'
        '<th class="n" title="after collapsing consecutive near-duplicates">collapsed</th>'
        '<th class="n">in dataset</th><th>state</th><th>reason</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></div></section>"
    )


def class_chart(names: Sequence[str], per_class: Mapping[int, Counter[str]]) -> str:
    """Boxes per class as bars, one segment per split."""
    ids = sorted(set(range(len(names))) | set(per_class))
    top = max((sum(per_class.get(i, Counter()).values()) for i in ids), default=0) or 1
    bars = []
    for i in ids:
        counts = per_class.get(i, Counter())
        total = sum(counts.values())
        name = names[i] if 0 <= i < len(names) else f"class {i}"
        color = "#{:02x}{:02x}{:02x}".format(*class_color(i))
        segments = "".join(
            f'<span class="seg {_e(split)}" style="width:{100 * n / top:.2f}%;'
            f'background:{color}" title="{_e(split)}: {n:,}"></span>'
            for split, n in sorted(counts.items())
        )
        detail = " · ".join(f"{_e(split)} {n:,}" for split, n in sorted(counts.items()))
        bars.append(
            f'<div class="bar"><span class="name">{_e(name)}</span>'
            f'<span class="track">{segments}</span>'
            f'<span class="count"><b>{total:,}</b> <small>{detail}</small></span></div>'
        )
    body = "".join(bars) or '<p class="muted">No classes.</p>'
    return (
        '<section id="classes"><h2>Boxes per class</h2>'
        '<p class="muted">Darker part: train, lighter part: val.</p>'
        f'<div class="chart">{body}</div></section>'
    )


def contact_sheet(
    layout: Layout,
    sample: Sequence[DatasetEntry],
    total: int,
    labels: Mapping[str, Sequence[YoloBox]],
    thumbs: Thumbnails,
) -> str:
    """Thumbnails of the sampled dataset images with their boxes, "showing N of M"."""
    cards = []
    for entry in sample:
        made = thumbs.make(layout.dataset / entry.image, THUMB_WIDTH, labels.get(entry.image, ()))
        caption = (
            f"<figcaption><code>{_e(entry.video_id)}</code> {_timestamp(entry.timestamp_ms)}"
            f' <span class="muted">{_e(entry.split)} · {plural(entry.n_boxes, "box")}</span>'
            "</figcaption>"
        )
        if made is None:
            cards.append(f'<figure class="missing"><div>image missing</div>{caption}</figure>')
            continue
        src, w, h = made
        cards.append(
            f'<figure><img class="sheet" src="{_e(quote(src))}" width="{w}" height="{h}"'
            f' loading="lazy" decoding="async" alt="{_e(Path(entry.image).name)}">'
            f"{caption}</figure>"
        )
    note = f"showing {len(sample):,} of {total:,}"
    body = "".join(cards) or '<p class="muted">The dataset has no images.</p>'
    return (
        f'<section id="sheet"><h2>Contact sheet <small>{note}</small></h2>'
        f'<div class="grid">{body}</div></section>'
    )


def dedup_section(layout: Layout, summary: DedupSummary, thumbs: Thumbnails) -> str:
    """Each example cluster: its kept frame, then frames it replaced with their distance."""
    head = '<section id="dedup"><h2>Near-duplicates removed</h2>'
    if not summary.examples:
        return head + '<p class="muted">No frame was dropped as a near-duplicate.</p></section>'
    blocks = []
    for ex in summary.examples:
        tiles = [_dedup_tile(layout, ex.kept, thumbs)]
        tiles += [_dedup_tile(layout, row, thumbs) for row in ex.replaced]
        more = ex.dropped - len(ex.replaced)
        extra = f'<div class="more">+{more:,} more</div>' if more > 0 else ""
        blocks.append(
            f'<div class="cluster"><div class="clabel">cluster {ex.cluster}<br>'
            f"<small>{ex.dropped:,} dropped</small></div>{''.join(tiles)}{extra}</div>"
        )
    note = (
        f"{plural(summary.dropped, 'frame')} dropped in"
        f" {plural(summary.clusters_with_drops, 'cluster')};"
        f" showing {len(summary.examples)} (most dropped first), the kept frame first, then"
        " the frames it replaced, farthest first, with their Hamming distance d"
    )
    return head + f'<p class="muted">{note}.</p>' + "".join(blocks) + "</section>"


def _dedup_tile(layout: Layout, row: ClusterRow, thumbs: Thumbnails) -> str:
    made = thumbs.make(layout.filtered(row.video_id) / row.file, DEDUP_WIDTH)
    tag = "kept" if row.kept else f"d = {row.distance}"
    caption = (
        f'<figcaption><span class="tag">{tag}</span> <code>{_e(row.video_id)}</code>'
        f" {_timestamp(row.timestamp_ms)}</figcaption>"
    )
    cls = "kept" if row.kept else "dropped"
    if made is None:
        return f'<figure class="{cls} missing"><div>frame missing</div>{caption}</figure>'
    src, w, h = made
    return (
        f'<figure class="{cls}"><img class="dedup" src="{_e(quote(src))}" width="{w}"'
        f' height="{h}" loading="lazy" decoding="async" alt="{_e(row.file)}">{caption}</figure>'
    )


def skipped_lines(lines: Sequence[str]) -> str:
    """The URL-file lines that were skipped ("" when none)."""
    if not lines:
        return ""
    items = "".join(f"<li><code>{_e(line)}</code></li>" for line in lines)
    return f'<section id="skipped"><h2>Skipped URL lines</h2><ul>{items}</ul></section>'
