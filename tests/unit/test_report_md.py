"""report.md (framesift.report.markdown.render_markdown): sections, and user strings kept inert."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

from framesift.core.layout import Layout
from framesift.core.stage_table import STAGES
from framesift.lifecycle.records import (
    DONE,
    EMPTY,
    PERMANENT,
    SKIPPED,
    StageRecord,
    failures_of,
    write_record,
)
from framesift.report.markdown import markdown_text, render_markdown, summary_dict, video_titles

EVIL_URL = "https://example.test/<script>alert(1)</script>"
PIPE_TITLE = "Cats | Dogs *compilation* [part 1](javascript:alert(1))"
EVIL_REASON = "HTTP Error 404: <img src=x onerror=alert(1)> | `code`"
GOOD = ("good-0123456789", "https://example.test/good_clip.mp4?a=1&b=2")
EMPTY_VIDEO = ("nomatch-0123456789", "https://example.test/nomatch.mp4")
BAD = ("evil-0123456789", EVIL_URL)


def _results(root: Path) -> tuple[Layout, dict]:
    """Stage records of a finished, an empty and a failed video; the run's summary."""
    layout = Layout(root)
    for vid, url in (GOOD, EMPTY_VIDEO):
        for stage in STAGES[:2]:
            write_record(layout.record(stage, vid), StageRecord(vid, stage, DONE, url=url))
    write_record(layout.record("filter", GOOD[0]), StageRecord(GOOD[0], "filter", DONE))
    reason = "no frame shows square, circle (of 4 frames)"
    nomatch = StageRecord(EMPTY_VIDEO[0], "filter", EMPTY, reason, EMPTY_VIDEO[1])
    write_record(layout.record("filter", EMPTY_VIDEO[0]), nomatch)
    vid, url = BAD
    write_record(
        layout.record("download", vid), StageRecord(vid, "download", PERMANENT, EVIL_REASON, url)
    )
    for stage in STAGES[1:]:
        write_record(
            layout.record(stage, vid), StageRecord(vid, stage, SKIPPED, "download failed", url)
        )
    layout.info(GOOD[0]).parent.mkdir(parents=True, exist_ok=True)
    layout.info(GOOD[0]).write_text(json.dumps({"title": PIPE_TITLE}))
    counts = {"frames": 4, "filtered": 0, "after_collapse": 0, "in_dataset": 0}
    per_video = {vid: {"url": url, **counts} for vid, url in (GOOD, EMPTY_VIDEO, BAD)}
    per_video[GOOD[0]].update(filtered=3, after_collapse=2, in_dataset=2)
    splits = {s: {"images": 1, "boxes": 1, "videos": 1} for s in ("train", "val")}
    result = SimpleNamespace(
        per_video=per_video,
        clusters=2,
        dataset={"splits": splits, "warning": None},
        labels_reused=2,
        labels_computed=0,
    )
    skipped = ["urls.txt:3: not an http(s) URL: '[x](javascript:alert(1))'"]
    return layout, summary_dict(result, failures_of(layout, list(per_video)), skipped)


def _section(text: str, title: str) -> list[str]:
    body = text.split(f"## {title}\n\n", 1)[1]
    return body.split("\n\n", 1)[0].splitlines()


def _cells(row: str) -> list[str]:
    """A GFM table row's cells: split on the pipes that are not backslash-escaped."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def test_empty_videos_are_listed_apart_from_failures(tmp_path: Path) -> None:
    layout, summary = _results(tmp_path / "results")
    text = render_markdown(summary)
    failures = _section(text, "Failures")
    assert len(failures) == 1 and failures[0].startswith(
        f"- {BAD[0]} (download, failed-permanent):"
    )
    assert _section(text, "No matching frame") == [
        f"- {EMPTY_VIDEO[0]} (filter): no frame shows square, circle (of 4 frames)"
    ]
    none = dict(summary, failures=[])
    assert _section(render_markdown(none), "Failures") == ["none"]
    assert _section(render_markdown(none), "No matching frame") == ["none"]


def test_user_strings_cannot_inject_html_or_break_tables(tmp_path: Path) -> None:
    layout, summary = _results(tmp_path / "results")
    text = render_markdown(summary, video_titles(layout, summary["videos"]))
    assert "<" not in text and ">" not in text  # no tag, no autolink
    assert "https://example.test/&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "](javascript" not in text.replace("\\](", "")  # no link can form

    table = _section(text, "Videos")
    header = _cells(table[0])
    assert header == ["video", "title", "frames", "filtered", "after collapse", "in dataset", "url"]
    rows = {cells[0]: cells for cells in map(_cells, table[2:])}
    assert all(len(cells) == len(header) for cells in rows.values())
    good = rows[GOOD[0]]
    assert good[1] == r"Cats \| Dogs \*compilation\* \[part 1\](javascript:alert(1))"
    assert good[-1] == "https://example.test/good_clip.mp4?a=1&amp;b=2"  # a_b: no escape needed
    assert rows[EMPTY_VIDEO[0]][1] == "–"  # no info file, no title

    failure = _section(text, "Failures")[0]
    assert failure.endswith(r"HTTP Error 404: &lt;img src=x onerror=alert(1)&gt; \| \`code\`")
    skipped = _section(text, "Skipped URL lines")
    assert skipped == [r"- urls.txt:3: not an http(s) URL: '\[x\](javascript:alert(1))'"]
    assert _cells(_section(render_markdown(summary), "Videos")[0])[1] == "frames"  # no titles


def test_markdown_text() -> None:
    assert markdown_text("plain text, 1.5 s (a_b)") == "plain text, 1.5 s (a_b)"
    assert markdown_text("_x_ and **y** ~z~") == r"\_x\_ and \*\*y\*\* \~z\~"
    assert markdown_text("a\\b `c`") == r"a\\b \`c\`"
    assert markdown_text("line one\nline two\r\t") == "line one line two"
    assert markdown_text("# heading") == r"\# heading"
    assert markdown_text("- item") == r"\- item" and markdown_text("+ x") == r"\+ x"
    assert markdown_text("12. step") == r"12\. step" and markdown_text("3) x") == r"3\) x"
    assert markdown_text("> quote & <b>") == "&gt; quote &amp; &lt;b&gt;"
    assert markdown_text("&lt;") == "&amp;lt;"  # an entity in the text stays text
