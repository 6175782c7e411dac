"""The HTML report (framesift.report.html) on a small real results folder, rendered in Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import imagehash
import pytest
from PIL import Image, ImageDraw

from framesift.core.layout import Layout
from framesift.core.stage_table import STAGES
from framesift.dataset.clusters import ClusterRow, write_cluster_table
from framesift.dataset.writer import Box, DatasetImage, write_dataset
from framesift.hashing.tables import hex_distance
from framesift.lifecycle.records import (
    DONE,
    EMPTY,
    PERMANENT,
    SKIPPED,
    StageRecord,
    failures_of,
    write_record,
)
from framesift.report.data import DatasetEntry, sample_images
from framesift.report.diff import Changes
from framesift.report.html import THUMBS, write_html_report
from framesift.report.markdown import summary_dict
from framesift.report.sections import changes_since, plural

CLASSES = ["square", "circle"]
W, H = 480, 270
EVIL_URL = 'https://example.test/"><script>alert(1)</script>'
EVIL_REASON = 'HTTP Error 404: <script>alert("x")</script>'
# video id -> (url, title, duration s, {timestamp_ms: (background, square x, circle or None)})
VIDEOS = {
    "alpha": (
        "https://example.test/watch?v=alpha&t=1",
        "Alpha <b>bold</b> & co",
        125.4,
        {
            0: ((40, 90, 160), 60, (300, 120)),
            500: ((40, 150, 90), 140, None),
            1000: ((150, 60, 60), 220, (330, 60)),
            1500: ((150, 60, 60), 236, (330, 66)),  # near-duplicate of 1000, dropped
        },
    ),
    "beta": (
        "https://example.test/beta.mp4",
        "Beta",
        3725.0,
        {0: ((200, 170, 60), 100, (260, 150)), 1000: ((90, 60, 140), 300, None)},
    ),
}
FAILED = ("gamma", EVIL_URL)
DROPPED = ("alpha", 1500)


# --------------------------------------------------------------------------- building results


def _draw(path: Path, background: tuple, square_x: int, circle: tuple | None) -> tuple[Box, ...]:
    """A frame with a square (and maybe a circle) on a flat background; its boxes."""
    img = Image.new("RGB", (W, H), background)
    draw = ImageDraw.Draw(img)
    square = (square_x, 80, square_x + 90, 170)
    draw.rectangle(square, fill=(240, 240, 240))
    boxes = [Box(0, "square", 0.9, tuple(float(v) for v in square))]
    if circle is not None:
        x, y = circle
        ellipse = (x, y, x + 70, y + 70)
        draw.ellipse(ellipse, fill=(20, 20, 20))
        boxes.append(Box(1, "circle", 0.8, tuple(float(v) for v in ellipse)))
    if not path.exists():  # a rerun keeps the frames it already has (and their mtimes)
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, quality=90)
    return tuple(boxes)


def _frame_name(vid: str, ts: int) -> str:
    return f"{vid}_{ts:09d}.jpg"


def _add_video(layout: Layout, vid: str, spec: tuple) -> list[DatasetImage]:
    """Filtered frames, info JSON and done records of one video; its dataset images."""
    url, title, duration, frames = spec
    images = []
    for ts, (background, square_x, circle) in frames.items():
        path = layout.filtered(vid) / _frame_name(vid, ts)
        boxes = _draw(path, background, square_x, circle)
        if (vid, ts) != DROPPED:
            images.append(DatasetImage(path, vid, url, ts, W, H, boxes))
    layout.info(vid).parent.mkdir(parents=True, exist_ok=True)
    layout.info(vid).write_text(json.dumps({"title": title, "duration": duration}))
    counts = {"frames": len(frames) + 3, "filter": len(frames)}
    for stage in STAGES:
        record = StageRecord(vid, stage, DONE, url=url, count=counts.get(stage))
        write_record(layout.record(stage, vid), record)
    return images


def _add_failed(layout: Layout, vid: str, url: str) -> None:
    write_record(
        layout.record("download", vid), StageRecord(vid, "download", PERMANENT, EVIL_REASON, url)
    )
    for stage in STAGES[1:]:
        record = StageRecord(vid, stage, SKIPPED, "download failed", url)
        write_record(layout.record(stage, vid), record)


def _write_clusters(
    layout: Layout, images: list[DatasetImage], distance: int | None = None
) -> None:
    """One cluster per dataset image; the dropped frame joins its predecessor's cluster, at the
    Hamming distance of the two frames' hashes (or ``distance`` when given)."""
    rows = []
    for k, img in enumerate(images):
        hex_ = str(imagehash.phash(Image.open(img.source)))
        kept = f"{img.video_id}/{img.name}"
        rows.append(ClusterRow(k, img.video_id, img.name, img.timestamp_ms, hex_, True, kept, 0))
        if (img.video_id, img.timestamp_ms + 500) == DROPPED:
            vid, ts = DROPPED
            hex_dup = str(imagehash.phash(Image.open(layout.filtered(vid) / _frame_name(vid, ts))))
            d = hex_distance(hex_, hex_dup) if distance is None else distance
            rows.append(ClusterRow(k, vid, _frame_name(vid, ts), ts, hex_dup, False, kept, d))
    write_cluster_table(layout.clusters, rows)


def _add_empty(layout: Layout, vid: str, url: str) -> None:
    """A video that finished with no frame showing a wanted class (not a failure)."""
    for stage in STAGES[:2]:
        write_record(layout.record(stage, vid), StageRecord(vid, stage, DONE, url=url, count=4))
    reason = "no frame shows square, circle (of 4 frames)"
    write_record(layout.record("filter", vid), StageRecord(vid, "filter", EMPTY, reason, url))


def _build(
    layout: Layout,
    videos: dict,
    failed=FAILED,
    distance: int | None = None,
    empty: tuple[str, str] | None = None,
) -> dict:
    """Write a whole small results folder; return the run's summary (report.summary_dict)."""
    images: list[DatasetImage] = []
    for vid, spec in videos.items():
        images += _add_video(layout, vid, spec)
    _add_failed(layout, *failed)
    listed = [*videos.items(), (failed[0], (failed[1], "", 0, {}))]
    if empty is not None:
        _add_empty(layout, *empty)
        listed.append((empty[0], (empty[1], "", 0, {})))
    dataset = write_dataset(images, CLASSES, layout.dataset, 0.5, 0)
    dataset["warning"] = "only 2 videos: the val split is one video"
    _write_clusters(layout, images, distance)
    per_video = {}
    for vid, (url, _, _, frames) in listed:
        n = sum(1 for i in images if i.video_id == vid)
        per_video[vid] = {
            "url": url,
            "frames": len(frames) + 3 if frames else 0,
            "filtered": len(frames),
            "after_collapse": n + int(vid == DROPPED[0]),
            "in_dataset": n,
        }
    result = SimpleNamespace(
        per_video=per_video,
        clusters=len(images),
        dataset=dataset,
        labels_reused=len(images),
        labels_computed=0,
    )
    ids = list(per_video)
    return summary_dict(result, failures_of(layout, ids), ["line 7: <not a url>"])


def _videos(videos: dict, failed=FAILED) -> list[tuple[str, str]]:
    return [(vid, spec[0]) for vid, spec in videos.items()] + [failed]


@pytest.fixture
def results(tmp_path: Path) -> tuple[Layout, dict]:
    layout = Layout(tmp_path / "results")
    return layout, _build(layout, VIDEOS)


# --------------------------------------------------------------------------- HTML checks


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text of table rows / the contact sheet."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def of(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.tags
            if t == tag and (cls is None or cls in a.get("class", "").split())
        ]


def _parse(text: str) -> _Tags:
    tags = _Tags()
    tags.feed(text)
    return tags


def _video_rows(tags: _Tags) -> list[str]:
    return [a["id"] for a in tags.of("tr") if a.get("id", "").startswith("v-")]


def _assert_offline(tags: _Tags, text: str, folder: Path) -> None:
    """No remote or scripted resource: images are relative files that exist, links are links."""
    assert not tags.of("script") and not tags.of("link") and not tags.of("iframe")
    assert "url(" not in text
    for tag, attrs in tags.tags:
        for name in ("src", "srcset", "poster", "data"):
            assert name not in attrs or tag == "img" and name == "src", (tag, attrs)
        if tag == "a":
            assert attrs["href"].startswith(("#", "http://", "https://")), attrs
    for img in tags.of("img"):
        src = img["src"]
        assert not src.startswith(("http:", "https:", "//", "/", "file:", "data:")), src
        assert (folder / src).is_file(), src


def test_report_tables_escaping_and_offline(results: tuple[Layout, dict]) -> None:
    layout, summary = results
    index = write_html_report(layout, _videos(VIDEOS), summary)
    assert index == layout.report_html == layout.root / "report" / "index.html"
    text = index.read_text()
    tags = _parse(text)
    _assert_offline(tags, text, index.parent)

    assert _video_rows(tags) == ["v-alpha", "v-beta", "v-gamma"]
    assert text.count('class="badge ok">in dataset<') == 2
    assert 'class="badge bad">failed-permanent<' in text
    assert "<script" not in text.lower()
    assert "download: HTTP Error 404: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "https://example.test/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Alpha &lt;b&gt;bold&lt;/b&gt; &amp; co" in text
    assert "2:05" in text and "1:02:05" in text  # durations from the info files
    assert "&lt;not a url&gt;" in text  # skipped URL lines
    assert "only 2 videos: the val split is one video" in text  # dataset warning
    assert "First report: nothing to compare with." in text

    # contact sheet: all 5 dataset images, thumbnails with boxes drawn, in thumbs/
    sheet = tags.of("img", "sheet")
    assert len(sheet) == 5 and "showing 5 of 5" in text
    for img in sheet:
        assert img["src"].startswith(f"{THUMBS}/")
        with Image.open(index.parent / img["src"]) as thumb:
            assert thumb.format == "JPEG" and thumb.width == 320 == int(img["width"])

    # boxes per class: 5 squares, 3 circles, as bars with train/val parts
    assert "<b>5</b>" in text and "<b>3</b>" in text
    assert len(tags.of("span", "seg")) == 4

    # dedup: the kept frame beside the frame it replaced, with the real Hamming distance
    vid, ts = DROPPED
    kept = imagehash.phash(Image.open(layout.filtered(vid) / _frame_name(vid, ts - 500)))
    dropped = imagehash.phash(Image.open(layout.filtered(vid) / _frame_name(vid, ts)))
    assert f"d = {kept - dropped}<" in text
    assert len(tags.of("div", "cluster")) == 1 and len(tags.of("img", "dedup")) == 2
    assert "1 frame dropped in 1 cluster;" in text

    # split sizes come from the summary
    splits = summary["dataset"]["splits"]
    assert sorted(splits) == ["train", "val"]
    for counts in splits.values():
        row = f'<td class="n">{counts["images"]}</td><td class="n">{counts["boxes"]}</td>'
        assert row in text


def test_dedup_distance_comes_from_the_cluster_table(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "results")
    summary = _build(layout, VIDEOS, distance=7)  # not the hashes' distance: must be the table's
    text = write_html_report(layout, _videos(VIDEOS), summary).read_text()
    assert "d = 7<" in text


def test_old_cluster_table_layout_is_refused(results: tuple[Layout, dict]) -> None:
    """No fallback for a clusters.tsv without the distance column (it computed hashes' distance)."""
    layout, summary = results
    lines = layout.clusters.read_text().splitlines()
    layout.clusters.write_text("\n".join(line.rsplit("\t", 1)[0] for line in lines) + "\n")
    with pytest.raises(ValueError, match="expected columns"):
        write_html_report(layout, _videos(VIDEOS), summary)


def test_no_matching_frame_is_not_counted_as_a_failure(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "results")
    empty = ("nomatch", "https://example.test/nomatch.mp4")
    summary = _build(layout, VIDEOS, empty=empty)
    assert {f["state"] for f in summary["failures"]} == {"failed-permanent", "empty"}
    text = write_html_report(layout, [*_videos(VIDEOS), empty], summary).read_text()
    assert "<b>1</b><span>failed videos</span>" in text
    assert "<b>1</b><span>no matching frame</span>" in text
    assert 'class="badge other">empty<' in text
    assert '<td class="reason">filter: no frame shows square, circle (of 4 frames)</td>' in text
    assert '<td class="reason bad">download: HTTP Error 404' in text


def test_changes_name_counts_in_plural() -> None:
    changes = Changes("2026-01-01T00:00:00+00:00", ("a.jpg", "b.jpg"), ("c.jpg",), ("d", "e"), ())
    text = changes_since(changes)
    assert "<b>2 new videos</b>: <code>d</code>, <code>e</code>" in text
    assert "<b>2 images added</b>" in text and "<b>1 image removed</b>" in text
    gone = changes_since(Changes("x", (), (), (), ("f", "g", "h")))
    assert "<b>3 videos no longer listed</b>" in gone


def test_plural() -> None:
    assert plural(1, "new video", "new videos") == "1 new video"
    assert plural(2, "new video", "new videos") == "2 new videos"
    assert plural(0, "frame") == "0 frames"
    assert plural(1, "box") == "1 box" and plural(3, "box") == "3 boxes"
    assert plural(1200, "image added", "images added") == "1,200 images added"


def test_changes_since_previous_report_and_stale_thumbs(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "results")
    summary = _build(layout, VIDEOS)
    index = write_html_report(layout, _videos(VIDEOS), summary)
    first = {a["src"] for a in _parse(index.read_text()).of("img")}
    thumbs = index.parent / THUMBS
    mtimes = {p.name: p.stat().st_mtime_ns for p in thumbs.iterdir()}

    # next run: alpha's frame at 500 ms left the dataset, a new video delta came in
    alpha = VIDEOS["alpha"]
    frames = {ts: f for ts, f in alpha[3].items() if ts != 500}
    delta = ("https://example.test/delta.mp4", "Delta", 9.0, {0: ((30, 30, 30), 200, (40, 40))})
    videos = {"alpha": (*alpha[:3], frames), "beta": VIDEOS["beta"], "delta": delta}
    (layout.filtered("alpha") / _frame_name("alpha", 500)).unlink()
    summary = _build(layout, videos)
    text = write_html_report(layout, _videos(videos), summary).read_text()
    tags = _parse(text)
    assert "<b>1 new video</b>: <code>delta</code>" in text
    assert "<b>1 image added</b>: <code>delta_000000000.jpg</code>" in text
    assert "<b>1 image removed</b>: <code>alpha_000000500.jpg</code>" in text
    assert _video_rows(tags) == ["v-alpha", "v-beta", "v-delta", "v-gamma"]

    second = {a["src"] for a in tags.of("img")}
    on_disk = {f"{THUMBS}/{p.name}" for p in thumbs.iterdir()}
    assert on_disk == second  # stale thumbnails removed, no temp files left
    assert not any("alpha_000000500" in src for src in second)
    assert any("alpha_000000500" in src for src in first)
    reused = [p for p in thumbs.iterdir() if p.name in mtimes]
    assert reused and all(p.stat().st_mtime_ns == mtimes[p.name] for p in reused)

    text = write_html_report(layout, _videos(videos), summary).read_text()
    assert "No change since" in text


def test_sample_is_spread_over_videos_and_deterministic() -> None:
    rows = [
        DatasetEntry(f"images/train/{vid}_{t:09d}.jpg", "train", vid, t, 1)
        for vid, n in (("big", 100), ("mid", 10), ("small", 2))
        for t in range(n)
    ]
    picked = sample_images(rows, 20)
    assert len(picked) == 20
    per_video = {
        v: [r.timestamp_ms for r in picked if r.video_id == v] for v in ("big", "mid", "small")
    }
    assert {v: len(ts) for v, ts in per_video.items()} == {"big": 9, "mid": 9, "small": 2}
    assert per_video["big"] == sorted(per_video["big"])
    assert per_video["big"][0] < 10 and per_video["big"][-1] > 90  # spread over the whole video
    assert sample_images(list(reversed(rows)), 20) == picked
    assert sample_images(rows, 1000) == sample_images(list(reversed(rows)), 1000)
    assert len(sample_images(rows, 1000)) == 112
    assert len(sample_images(rows, 2)) == 2


def test_report_caps_the_contact_sheet(results: tuple[Layout, dict]) -> None:
    layout, summary = results
    text = write_html_report(layout, _videos(VIDEOS), summary, max_images=3).read_text()
    sheet = _parse(text).of("img", "sheet")
    assert "showing 3 of 5" in text and len(sheet) == 3
    assert {"alpha", "beta"} <= {img["alt"].split("_")[0] for img in sheet}


# --------------------------------------------------------------------------- real browser


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        message = "chromium is not on PATH: the HTML report cannot be rendered"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set: install chromium)")
        pytest.skip(message)
    return found


def _headless(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--no-first-run",
        "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(results: tuple[Layout, dict], tmp_path: Path) -> None:
    chromium = _chromium()
    layout, summary = results
    start = time.perf_counter()
    index = write_html_report(layout, _videos(VIDEOS), summary)
    took = time.perf_counter() - start
    size = sum(p.stat().st_size for p in index.parent.rglob("*") if p.is_file())
    print(f"report written in {took:.3f} s, {size / 1024:.0f} KiB with thumbnails")

    png = tmp_path / "report.png"
    url = index.absolute().as_uri()
    shot = _headless(chromium, tmp_path / "profile-1", f"--screenshot={png}",
                     "--window-size=1280,2000", url)  # fmt: skip
    assert png.is_file(), f"no screenshot:\n{shot.stderr[-3000:]}"
    dom = _headless(chromium, tmp_path / "profile-2", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-3000:]

    tags = _parse(dom.stdout)
    assert len(tags.of("img", "sheet")) == 5
    assert len(tags.of("img", "dedup")) == 2
    assert _video_rows(tags) == ["v-alpha", "v-beta", "v-gamma"]
    assert not tags.of("script")  # the untrusted URL and reason stayed text

    with Image.open(png) as img:
        assert img.size == (1280, 2000)
        colours = img.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50, "the screenshot looks blank"
