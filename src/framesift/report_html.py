"""The HTML run report (``results/report/index.html``).

One self-contained page readable offline: inline CSS, no scripts, no remote resources. It shows
the per-video table (state, counts, failure reason), per-class box counts, a contact sheet of
dataset images with their boxes drawn, examples of near-duplicates the dedup dropped, the split
sizes and what changed since the previous report.

Thumbnails are JPEG files in ``report/thumbs/``, referenced by relative paths. A thumbnail's name
carries a digest of what it shows (source file, size, mtime, boxes, class names), so unchanged
ones are reused across runs and thumbnails no longer referenced are removed. The report keeps
``report/previous_run.json`` (video ids and image names of this report) to compare the next
report with.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml
from PIL import Image, ImageDraw, ImageFont

from framesift.fsutil import atomic_write_text
from framesift.layout import Layout
from framesift.lifecycle import IN_DATASET, PENDING, VideoState, now_iso, read_info, video_state

THUMB_WIDTH = 320
DEDUP_WIDTH = 200
MAX_IMAGES = 200
MAX_CLUSTERS = 12
MAX_REPLACED = 4
MAX_LISTED = 40  # names listed per change (added / removed images), the rest counted
PREVIOUS = "previous_run.json"
THUMBS = "thumbs"
_THUMB_VERSION = "1"  # bump when the drawing changes, so old thumbnails are redrawn
PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 200, 200),
    (240, 50, 230),
    (160, 160, 0),
    (0, 128, 128),
    (170, 110, 40),
)

YoloBox = tuple[int, float, float, float, float]  # class, cx, cy, w, h (normalised)


def class_color(class_id: int) -> tuple[int, int, int]:
    """The colour of a class, the same in thumbnails and the bar chart."""
    return PALETTE[class_id % len(PALETTE)]


# --------------------------------------------------------------------------- reading results


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of the dataset's ``manifest.csv`` ([] when there is none)."""
    try:
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def read_class_names(data_yaml: Path, fallback: Sequence[str] = ()) -> list[str]:
    """Class names from ``data.yaml`` (``names`` as a list or an id → name map)."""
    try:
        names = (yaml.safe_load(data_yaml.read_text()) or {}).get("names")
    except (OSError, yaml.YAMLError, AttributeError):
        names = None
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names, key=int)]
    if isinstance(names, list):
        return [str(n) for n in names]
    return list(fallback)


def label_path(dataset: Path, image: str) -> Path:
    """The YOLO label file of a manifest ``image`` (``images/{split}/x.jpg``)."""
    parts = Path(image).parts
    return dataset.joinpath("labels", *parts[1:]).with_suffix(".txt")


def read_yolo_labels(path: Path) -> list[YoloBox]:
    """``class cx cy w h`` lines of a label file; malformed lines are skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    boxes = []
    for line in lines:
        parts = line.split()
        if len(parts) != 5:
            continue
        try:
            cx, cy, w, h = (float(p) for p in parts[1:])
            boxes.append((int(parts[0]), cx, cy, w, h))
        except ValueError:
            continue
    return boxes


def hamming(a: str, b: str) -> int | None:
    """Hamming distance of two hex hashes of the same length (None when not comparable)."""
    if len(a) != len(b):
        return None
    try:
        return (int(a, 16) ^ int(b, 16)).bit_count()
    except ValueError:
        return None


# --------------------------------------------------------------------------- sampling


def sample_images(rows: Sequence[dict[str, str]], limit: int) -> list[dict[str, str]]:
    """At most ``limit`` manifest rows spread over videos, in video then time order.

    Each video gets an equal share (videos with fewer images give their unused share to the
    others); within a video the picks are evenly spaced in time. Deterministic.
    """
    by_video: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_video[row["video_id"]].append(row)
    for frames in by_video.values():
        frames.sort(key=lambda r: (_int(r.get("timestamp_ms")), r["image"]))
    if len(rows) > limit:
        remaining = max(limit, 0)
        ranked = sorted(by_video, key=lambda v: (len(by_video[v]), v))
        for left, vid in zip(range(len(ranked), 0, -1), ranked, strict=True):
            frames = by_video[vid]
            take = min(len(frames), remaining // left)
            remaining -= take
            by_video[vid] = [frames[(2 * i + 1) * len(frames) // (2 * take)] for i in range(take)]
    return [row for vid in sorted(by_video) for row in by_video[vid]]


# --------------------------------------------------------------------------- thumbnails


class Thumbnails:
    """Writes thumbnails into ``folder`` (reusing unchanged ones) and remembers which are used."""

    def __init__(self, folder: Path, class_names: Sequence[str]):
        self.folder = folder
        self.names = list(class_names)
        self.used: set[str] = set()
        self.written = 0
        folder.mkdir(parents=True, exist_ok=True)
        self._font = _font(14)

    def make(
        self, source: Path, width: int, boxes: Sequence[YoloBox] = ()
    ) -> tuple[str, int, int] | None:
        """(relative path, width, height) of the thumbnail of ``source``; None if unreadable."""
        try:
            stat = source.stat()
        except OSError:
            return None
        key = json.dumps(
            [_THUMB_VERSION, str(source), stat.st_size, stat.st_mtime_ns, width, boxes, self.names]
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", source.stem)[:60]
        name = f"{stem}-{digest}.jpg"
        target = self.folder / name
        try:
            if target.exists():
                with Image.open(target) as done:
                    size = done.size
            else:
                size = self._draw(source, target, width, boxes)
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
        self.used.add(name)
        return f"{THUMBS}/{name}", size[0], size[1]

    def _draw(
        self, source: Path, target: Path, width: int, boxes: Sequence[YoloBox]
    ) -> tuple[int, int]:
        with Image.open(source) as img:
            img.draft("RGB", (width, max(1, width * img.height // max(img.width, 1))))
            img = img.convert("RGB")
            height = max(1, round(img.height * width / img.width))
            thumb = img.resize((width, height), Image.Resampling.LANCZOS)
        self._boxes(thumb, boxes)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        thumb.save(tmp, "JPEG", quality=82, optimize=True)
        os.replace(tmp, target)
        self.written += 1
        return thumb.size

    def _boxes(self, img: Image.Image, boxes: Sequence[YoloBox]) -> None:
        draw = ImageDraw.Draw(img)
        w, h = img.size
        for cls, cx, cy, bw, bh in boxes:
            color = class_color(cls)
            x1, y1 = (cx - bw / 2) * w, (cy - bh / 2) * h
            x2, y2 = (cx + bw / 2) * w, (cy + bh / 2) * h
            draw.rectangle((x1, y1, x2, y2), outline=color, width=2)
            text = self.names[cls] if 0 <= cls < len(self.names) else str(cls)
            left, top, right, bottom = draw.textbbox((0, 0), text, font=self._font)
            tw, th = right - left + 6, bottom - top + 4
            ty = y1 - th if y1 - th >= 0 else y1
            tx = min(max(x1, 0), max(w - tw, 0))
            draw.rectangle((tx, ty, tx + tw, ty + th), fill=color)
            draw.text((tx + 3 - left, ty + 2 - top), text, fill=(255, 255, 255), font=self._font)

    def remove_stale(self) -> int:
        """Delete files in the folder that this report does not reference; how many."""
        removed = 0
        for path in self.folder.iterdir():
            if path.name not in self.used and path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


# --------------------------------------------------------------------------- dedup examples


@dataclass(frozen=True)
class DedupFrame:
    """A candidate frame in ``clusters.tsv``; ``distance`` to its kept frame (0 when kept)."""

    video_id: str
    file: str
    timestamp_ms: int
    distance: int | None


@dataclass(frozen=True)
class DedupExample:
    """One cluster: the kept frame and up to a few of the frames it replaced."""

    cluster: str
    kept: DedupFrame
    replaced: tuple[DedupFrame, ...]
    dropped: int  # all frames the cluster dropped


@dataclass(frozen=True)
class DedupSummary:
    """Examples plus totals over the whole clusters table."""

    examples: tuple[DedupExample, ...]
    clusters_with_drops: int
    dropped: int


def dedup_examples(
    path: Path, limit: int = MAX_CLUSTERS, per_cluster: int = MAX_REPLACED
) -> DedupSummary:
    """The ``limit`` clusters that dropped most frames (two passes, little memory).

    Replaced frames are listed farthest first: they show what the threshold lets through. The
    distance comes from a ``distance`` column when the table has one, else from the hashes.
    """
    dropped: Counter[str] = Counter()
    for row in _tsv_rows(path):
        if row.get("kept") == "0":
            dropped[row.get("cluster", "")] += 1
    chosen = sorted(dropped, key=lambda c: (-dropped[c], _int(c), c))[:limit]
    wanted = set(chosen)
    members: dict[str, list[dict[str, str]]] = defaultdict(list)
    has_distance = False
    for row in _tsv_rows(path):
        has_distance = has_distance or "distance" in row
        if row.get("cluster") in wanted:
            members[row["cluster"]].append(row)
    examples = []
    for cluster in chosen:
        rows = members[cluster]
        kept = next((r for r in rows if r.get("kept") == "1"), None)
        if kept is None:
            continue
        frames = []
        for row in rows:
            if row is kept or row.get("kept") != "0":
                continue
            distance = _int(row.get("distance"), None) if has_distance else None
            if distance is None:
                distance = hamming(row.get("hash", ""), kept.get("hash", ""))
            frames.append(_dedup_frame(row, distance))
        frames.sort(key=lambda f: (-(f.distance or 0), f.video_id, f.timestamp_ms))
        examples.append(
            DedupExample(cluster, _dedup_frame(kept, 0), tuple(frames[:per_cluster]), len(frames))
        )
    return DedupSummary(tuple(examples), len(dropped), sum(dropped.values()))


def _tsv_rows(path: Path) -> Iterable[dict[str, str]]:
    try:
        with path.open(newline="") as f:
            yield from csv.DictReader(f, delimiter="\t")
    except OSError:
        return


def _dedup_frame(row: Mapping[str, str], distance: int | None) -> DedupFrame:
    return DedupFrame(
        row.get("video_id", ""), row.get("file", ""), _int(row.get("timestamp_ms")), distance
    )


# --------------------------------------------------------------------------- changes


@dataclass(frozen=True)
class Changes:
    """What changed since the previous report (``since`` is "" for the first report)."""

    since: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    new_videos: tuple[str, ...]
    gone_videos: tuple[str, ...]


def snapshot(video_ids: Sequence[str], rows: Sequence[dict[str, str]]) -> dict[str, Any]:
    """What the next report compares with: video ids and dataset image names."""
    return {
        "generated": now_iso(),
        "videos": list(video_ids),
        "images": sorted(Path(r["image"]).name for r in rows),
    }


def compare(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> Changes:
    """Images added/removed (by name: a split move is no change) and videos new/gone."""
    if not previous:
        return Changes("", (), (), (), ())
    old_images, new_images = set(previous.get("images", [])), set(current["images"])
    old_videos, new_videos = list(previous.get("videos", [])), list(current["videos"])
    old_set, new_set = set(old_videos), set(new_videos)
    return Changes(
        str(previous.get("generated", "")) or "unknown",
        tuple(sorted(new_images - old_images)),
        tuple(sorted(old_images - new_images)),
        tuple(v for v in new_videos if v not in old_set),
        tuple(v for v in old_videos if v not in new_set),
    )


def read_snapshot(path: Path) -> dict[str, Any] | None:
    """The previous report's snapshot; None when there is none (or it is unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------- the report


def write_html_report(
    layout: Layout,
    videos: Sequence[tuple[str, str]],
    summary: Mapping[str, Any],
    max_images: int = MAX_IMAGES,
) -> Path:
    """Write ``results/report/index.html`` (and its thumbnails); return its path.

    ``videos`` are the run's (video id, URL) pairs in URL-file order, ``summary`` the dict of
    :func:`framesift.report.summary_dict`. Reads the dataset, ``dedup/clusters.tsv``, the stage
    records and the videos' info files under ``layout.root``.
    """
    out = layout.report_dir
    out.mkdir(parents=True, exist_ok=True)
    dataset = summary.get("dataset", {})
    names = read_class_names(layout.data_yaml, dataset.get("classes", ()))
    thumbs = Thumbnails(out / THUMBS, names)

    rows = read_manifest(layout.manifest)
    labels = {
        r["image"]: read_yolo_labels(label_path(layout.dataset, r["image"]))
        for r in rows
        if r.get("n_boxes") != "0"
    }
    per_class: dict[int, Counter[str]] = defaultdict(Counter)
    for r in rows:
        for box in labels.get(r["image"], ()):
            per_class[box[0]][r.get("split", "")] += 1

    per_video = summary.get("videos", {})
    states = [video_state(layout, vid, url, per_video) for vid, url in videos]
    current = snapshot([vid for vid, _ in videos], rows)
    previous_path = out / PREVIOUS
    changes = compare(read_snapshot(previous_path), current)

    sheet = sample_images(rows, max_images)
    body = [
        _overview(summary, len(videos)),
        _changes(changes),
        _videos_table(layout, states, per_video),
        _class_chart(names, per_class),
        _contact_sheet(layout, sheet, len(rows), labels, thumbs),
        _dedup(layout, dedup_examples(layout.clusters), thumbs),
        _skipped(summary.get("skipped_url_lines", [])),
    ]
    index = layout.report_html
    atomic_write_text(index, _page("\n".join(part for part in body if part)))
    atomic_write_text(previous_path, json.dumps(current) + "\n")
    thumbs.remove_stale()
    return index


# --------------------------------------------------------------------------- HTML sections


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _int(value: Any, default: Any = 0) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _plural(n: int, singular: str) -> str:
    """``1 image added``, ``3 images added`` (the first word takes the s)."""
    first, _, rest = singular.partition(" ")
    word = first if n == 1 else f"{first}es" if first.endswith("x") else f"{first}s"
    return f"{n:,} {word} {rest}".rstrip()


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


def _overview(summary: Mapping[str, Any], n_videos: int) -> str:
    totals = summary.get("totals", {})
    dataset = summary.get("dataset", {})
    cards = [
        ("videos", totals.get("videos", n_videos)),
        ("frames extracted", totals.get("frames")),
        ("kept by the filter", totals.get("filtered")),
        ("after in-video collapse", totals.get("after_collapse")),
        ("dataset images", totals.get("in_dataset")),
        ("dedup clusters", totals.get("clusters")),
        ("failed videos", len(summary.get("failures", []))),
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


def _changes(changes: Changes) -> str:
    head = '<section id="changes"><h2>Since the previous report</h2>'
    if not changes.since:
        return head + '<p class="muted">First report: nothing to compare with.</p></section>'
    if not (changes.added or changes.removed or changes.new_videos or changes.gone_videos):
        return head + f'<p class="muted">No change since {_e(changes.since)}.</p></section>'
    items = []
    for label, values, cls in (
        ("new video", changes.new_videos, "plus"),
        ("video no longer listed", changes.gone_videos, "minus"),
        ("image added", changes.added, "plus"),
        ("image removed", changes.removed, "minus"),
    ):
        if not values:
            continue
        shown = ", ".join(f"<code>{_e(v)}</code>" for v in values[:MAX_LISTED])
        more = f" … and {len(values) - MAX_LISTED:,} more" if len(values) > MAX_LISTED else ""
        label = _plural(len(values), label)
        items.append(f'<li class="{cls}"><b>{label}</b>: {shown}{more}</li>')
    return (
        head
        + f'<p class="muted">Compared with the report of {_e(changes.since)}.</p>'
        + '<ul class="changes">'
        + "".join(items)
        + "</ul></section>"
    )


def _videos_table(
    layout: Layout, states: Sequence[VideoState], per_video: Mapping[str, Mapping[str, Any]]
) -> str:
    rows = []
    for s in states:
        counts = per_video.get(s.video_id, {})
        info = read_info(layout, s.video_id)
        frames = counts.get("frames", s.frames)
        kept = counts.get("filtered", s.kept)
        reason = f"{s.stage}: {s.reason}" if s.stage and s.reason else s.reason or s.stage
        rows.append(
            f'<tr id="v-{_e(s.video_id)}"><td><code>{_e(s.video_id)}</code></td>'
            f'<td class="title">{_e(info.get("title") or s.title or "–")}</td>'
            f'<td class="url">{_link(s.url)}</td>'
            f'<td class="n">{_duration(info.get("duration"))}</td>'
            f'<td class="n">{_num(frames)}</td><td class="n">{_num(kept)}</td>'
            f'<td class="n">{_num(counts.get("after_collapse"))}</td>'
            f'<td class="n">{_num(counts.get("in_dataset", s.in_dataset))}</td>'
            f'<td><span class="badge {_state_class(s)}">{_e(s.state)}</span></td>'
            f'<td class="reason">{_e(reason)}</td></tr>'
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


def _class_chart(names: Sequence[str], per_class: Mapping[int, Counter[str]]) -> str:
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


def _contact_sheet(
    layout: Layout,
    sample: Sequence[dict[str, str]],
    total: int,
    labels: Mapping[str, Sequence[YoloBox]],
    thumbs: Thumbnails,
) -> str:
    cards = []
    for row in sample:
        made = thumbs.make(layout.dataset / row["image"], THUMB_WIDTH, labels.get(row["image"], ()))
        caption = (
            f"<figcaption><code>{_e(row['video_id'])}</code>"
            f" {_timestamp(_int(row.get('timestamp_ms')))}"
            f' <span class="muted">{_e(row.get("split", ""))} ·'
            f" {_e(_plural(_int(row.get('n_boxes')), 'box'))}</span></figcaption>"
        )
        if made is None:
            cards.append(f'<figure class="missing"><div>image missing</div>{caption}</figure>')
            continue
        src, w, h = made
        cards.append(
            f'<figure><img class="sheet" src="{_e(quote(src))}" width="{w}" height="{h}"'
            f' loading="lazy" decoding="async" alt="{_e(Path(row["image"]).name)}">'
            f"{caption}</figure>"
        )
    note = f"showing {len(sample):,} of {total:,}"
    body = "".join(cards) or '<p class="muted">The dataset has no images.</p>'
    return (
        f'<section id="sheet"><h2>Contact sheet <small>{note}</small></h2>'
        f'<div class="grid">{body}</div></section>'
    )


def _dedup(layout: Layout, summary: DedupSummary, thumbs: Thumbnails) -> str:
    head = '<section id="dedup"><h2>Near-duplicates removed</h2>'
    if not summary.examples:
        return head + '<p class="muted">No frame was dropped as a near-duplicate.</p></section>'
    blocks = []
    for ex in summary.examples:
        tiles = [_dedup_tile(layout, ex.kept, thumbs, kept=True)]
        tiles += [_dedup_tile(layout, f, thumbs, kept=False) for f in ex.replaced]
        more = ex.dropped - len(ex.replaced)
        extra = f'<div class="more">+{more:,} more</div>' if more > 0 else ""
        blocks.append(
            f'<div class="cluster"><div class="clabel">cluster {_e(ex.cluster)}<br>'
            f"<small>{ex.dropped:,} dropped</small></div>{''.join(tiles)}{extra}</div>"
        )
    note = (
        f"{_plural(summary.dropped, 'frame')} dropped in"
        f" {_plural(summary.clusters_with_drops, 'cluster')};"
        f" showing {len(summary.examples)} (most dropped first), the kept frame first, then"
        " the frames it replaced, farthest first, with their Hamming distance d"
    )
    return head + f'<p class="muted">{note}.</p>' + "".join(blocks) + "</section>"


def _dedup_tile(layout: Layout, frame: DedupFrame, thumbs: Thumbnails, kept: bool) -> str:
    made = thumbs.make(layout.filtered(frame.video_id) / frame.file, DEDUP_WIDTH)
    tag = "kept" if kept else f"d = {frame.distance if frame.distance is not None else '?'}"
    caption = (
        f'<figcaption><span class="tag">{_e(tag)}</span> <code>{_e(frame.video_id)}</code>'
        f" {_timestamp(frame.timestamp_ms)}</figcaption>"
    )
    cls = "kept" if kept else "dropped"
    if made is None:
        return f'<figure class="{cls} missing"><div>frame missing</div>{caption}</figure>'
    src, w, h = made
    return (
        f'<figure class="{cls}"><img class="dedup" src="{_e(quote(src))}" width="{w}"'
        f' height="{h}" loading="lazy" decoding="async" alt="{_e(frame.file)}">{caption}</figure>'
    )


def _skipped(lines: Sequence[str]) -> str:
    if not lines:
        return ""
    items = "".join(f"<li><code>{_e(line)}</code></li>" for line in lines)
    return f'<section id="skipped"><h2>Skipped URL lines</h2><ul>{items}</ul></section>'


_CSS = """
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--bg:#f6f7f9;--card:#fff;--ok:#12b76a;
--bad:#d92d20;--wait:#f79009;--accent:#2e6be6}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
header{background:#1d2330;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px;font-weight:650}
header p{margin:4px 0 0;color:#b8c0cc}
nav{background:#283040;padding:6px 32px}
nav a{color:#d0d7e2;margin-right:18px;text-decoration:none;font-size:13px}
nav a:hover{color:#fff}
main{max-width:1280px;margin:0 auto;padding:8px 32px 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;
padding:16px 20px;margin:16px 0}
h2{font-size:17px;margin:0 0 10px}
h2 small{font-weight:400;color:var(--muted);font-size:13px;margin-left:6px}
.muted{color:var(--muted)}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px;
margin-bottom:16px}
.stat{background:var(--bg);border-radius:8px;padding:10px 12px}
.stat b{display:block;font-size:22px;font-weight:650}
.stat span{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.splits{width:auto;min-width:360px}
.scroll{overflow-x:auto}
td.url{max-width:260px;overflow-wrap:anywhere;font-size:12px}
td.url a{color:var(--accent);text-decoration:none}
td.title{max-width:220px}
td.reason{max-width:300px;overflow-wrap:anywhere;color:var(--bad);font-size:12px}
tbody tr:hover{background:#fafbfc}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;
white-space:nowrap;background:#eef0f3}
.badge.ok{background:#dcfae6;color:#067647}.badge.bad{background:#fee4e2;color:#b42318}
.badge.wait{background:#fef0c7;color:#93370d}
.warning{background:#fffaeb;border:1px solid #fedf89;border-radius:8px;padding:8px 12px}
ul.changes{margin:0;padding-left:18px}
ul.changes li{margin:4px 0}
li.plus b{color:#067647}li.minus b{color:#b42318}
.chart{display:grid;gap:6px}
.bar{display:grid;grid-template-columns:140px 1fr 200px;align-items:center;gap:10px}
.bar .name{text-align:right;font-weight:600;overflow-wrap:anywhere}
.track{display:flex;height:18px;background:var(--bg);border-radius:4px;overflow:hidden}
.seg{display:block;height:100%}.seg.val{opacity:.55}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:12px}
figure{margin:0;background:var(--bg);border-radius:8px;overflow:hidden}
figure img{display:block;width:100%;height:auto;background:#ddd}
figcaption{padding:4px 8px 6px;font-size:12px}
figure.missing div{padding:30px 8px;text-align:center;color:var(--muted)}
.cluster{display:flex;gap:10px;align-items:flex-start;padding:10px 0;
border-top:1px solid var(--line);overflow-x:auto}
.cluster figure{flex:0 0 170px}
.cluster figure.kept{outline:3px solid var(--ok)}
.cluster figure.dropped{opacity:.9}
.clabel{flex:0 0 90px;color:var(--muted);font-size:12px}
.tag{font-weight:700}.kept .tag{color:#067647}.dropped .tag{color:#b42318}
.more{align-self:center;color:var(--muted);font-size:12px}
"""


def _page(body: str) -> str:
    nav = "".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in (
            ("overview", "Overview"),
            ("changes", "Changes"),
            ("videos", "Videos"),
            ("classes", "Classes"),
            ("sheet", "Contact sheet"),
            ("dedup", "Dedup"),
        )
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        " img-src 'self' file:; style-src 'unsafe-inline'\">"
        '<meta name="referrer" content="no-referrer">'
        f"<title>framesift report</title><style>{_CSS}</style></head>\n<body>"
        f"<header><h1>framesift report</h1><p>generated {_e(now_iso())}</p></header>"
        f"<nav>{nav}</nav><main>\n{body}\n</main></body></html>\n"
    )
