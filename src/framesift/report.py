"""The run report: per-video counts, dedup totals, dataset split, failures and skipped URL lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from framesift.lifecycle import StageRecord


def summary_dict(
    result: Any, failures: Sequence[StageRecord], url_problems: Sequence[str]
) -> dict[str, Any]:
    """Machine-readable summary (``results/summary.json``)."""
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


def render_markdown(summary: dict[str, Any]) -> str:
    """The human report (``results/report.md``)."""
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
    lines += [
        "",
        "## Videos",
        "",
        "| video | frames | filtered | after collapse | in dataset | url |",
        "|---|---|---|---|---|---|",
    ]
    for vid, v in summary["videos"].items():
        lines.append(
            f"| {vid} | {v['frames']} | {v['filtered']} | {v['after_collapse']}"
            f" | {v['in_dataset']} | {v['url']} |"
        )
    lines += ["", "## Failures", ""]
    failures = summary["failures"]
    lines += [f"- {f['video_id']} ({f['stage']}, {f['state']}): {f['reason']}" for f in failures]
    if not failures:
        lines.append("none")
    lines += ["", "## Skipped URL lines", ""]
    lines += [f"- {line}" for line in summary["skipped_url_lines"]] or ["none"]
    return "\n".join(lines) + "\n"
