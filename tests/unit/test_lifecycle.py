"""The failure lifecycle (framesift.lifecycle: records, jobs) and the results layout."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framesift.core.layout import Layout, staging_leftovers
from framesift.lifecycle.jobs import Outcome, StageFailed, StageJob, run_video_stage
from framesift.lifecycle.records import (
    DONE,
    EMPTY,
    PERMANENT,
    SKIPPED,
    TRANSIENT,
    StageRecord,
    archive_removed,
    conclude,
    generation,
    read_record,
    request_retry,
    write_record,
)
from framesift.lifecycle.states import totals, video_states

LOG = logging.getLogger("test-lifecycle")


def _layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "results")


def _end(previous, outcome, reason="r", generation=0, max_attempts=3) -> StageRecord:
    return conclude(
        previous,
        video_id="v",
        stage="download",
        outcome=outcome,
        reason=reason,
        url="http://x/v.mp4",
        generation=generation,
        max_attempts=max_attempts,
        started="2026-01-01T00:00:00+00:00",
    )


def test_transient_failures_count_across_runs_then_become_permanent() -> None:
    first = _end(None, TRANSIENT, "HTTP 503")
    assert (first.outcome, first.attempts) == (TRANSIENT, 1)
    second = _end(first, TRANSIENT, "HTTP 503")
    assert (second.outcome, second.attempts) == (TRANSIENT, 2)
    third = _end(second, TRANSIENT, "HTTP 503")
    assert third.outcome == PERMANENT and third.attempts == 3
    assert third.reason == "gave up after 3 attempts: HTTP 503"
    assert third.describe() == "failed-permanent"
    assert second.describe() == "failed-transient (attempt 2 of 3)"
    # a success in between starts the count afresh; so does a user-requested retry
    assert _end(_end(first, DONE), TRANSIENT).attempts == 1
    requested = StageRecord("v", "download", PERMANENT, attempts=3, retry_requested=True)
    assert _end(requested, TRANSIENT).attempts == 1


def test_generation_goes_up_only_while_a_retry_is_due(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    path = layout.record("download", "v")
    assert generation(layout, "download", "v") == 0  # never ran
    write_record(path, StageRecord("v", "download", TRANSIENT, generation=0, attempts=1))
    assert generation(layout, "download", "v") == 1  # retry due
    write_record(path, StageRecord("v", "download", DONE, generation=1))
    assert generation(layout, "download", "v") == 1  # ran with 1 and succeeded: stable
    write_record(path, StageRecord("v", "download", PERMANENT, generation=1))
    assert generation(layout, "download", "v") == 1  # permanent: not retried
    request_retry(layout, ["v"])
    assert generation(layout, "download", "v") == 2  # until the user asks
    assert read_record(path).retry_requested


def test_retry_failed_marks_only_failed_stages_of_the_named_videos(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    write_record(layout.record("download", "a"), StageRecord("a", "download", PERMANENT))
    write_record(layout.record("download", "b"), StageRecord("b", "download", DONE))
    write_record(layout.record("frames", "b"), StageRecord("b", "frames", PERMANENT))
    write_record(layout.record("filter", "c"), StageRecord("c", "filter", EMPTY))
    assert [r.video_id for r in request_retry(layout, ["a", "b", "c"], "frames")] == ["b"]
    assert not read_record(layout.record("download", "a")).retry_requested
    assert [r.stage for r in request_retry(layout, ["a", "c"])] == ["download"]
    assert not read_record(layout.record("filter", "c")).retry_requested  # empty: not failed


def test_video_state_comes_from_the_first_unfinished_stage(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    for stage in ("download", "frames", "filter"):
        for vid in ("ok", "dup"):
            write_record(layout.record(stage, vid), StageRecord(vid, stage, DONE, count=4))
    write_record(layout.record("download", "half"), StageRecord("half", "download", DONE))
    write_record(
        layout.record("download", "bad"),
        StageRecord("bad", "download", TRANSIENT, "HTTP 503", attempts=1, max_attempts=3),
    )
    write_record(layout.record("frames", "bad"), StageRecord("bad", "frames", SKIPPED))
    aggregated = {"ok": {"in_dataset": 2}, "dup": {"in_dataset": 0}}
    layout.summary.write_text(json.dumps({"videos": aggregated}))
    videos = [(v, "") for v in ("ok", "dup", "half", "bad", "new")]
    states = {s.video_id: s for s in video_states(layout, videos)}
    assert states["ok"].state == "in dataset" and states["ok"].in_dataset == 2
    # finished, but all its frames were near-duplicates of other videos': not "in dataset"
    dup = states["dup"]
    assert (dup.state, dup.in_dataset, dup.failed) == ("done, 0 images", 0, False)
    assert "near-duplicate" in dup.reason
    assert totals(list(states.values())).done == 2
    assert states["ok"].frames == 4
    assert states["half"].state == "downloaded"
    assert states["new"].state == "pending"
    bad = states["bad"]
    assert bad.state == "failed-transient (attempt 1 of 3)" and bad.stage == "download"
    assert bad.retry_next_run and bad.failed


def test_records_of_removed_urls_are_archived(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    for vid in ("keep", "gone"):
        write_record(layout.record("download", vid), StageRecord(vid, "download", PERMANENT))
    assert archive_removed(layout, ["keep"]) == ["gone"]
    assert layout.record("download", "keep").exists()
    assert not layout.record("download", "gone").exists()
    assert (layout.removed_records() / "download" / "gone.json").exists()


def _job(tmp_path: Path, stage: str = "frames", **kw) -> StageJob:
    return StageJob(stage, "v", "http://x/v.mp4", _layout(tmp_path), **{"max_attempts": 3, **kw})


def test_stage_job_retries_in_run_then_completes_the_chain(tmp_path: Path) -> None:
    placeholders = []

    def body() -> Outcome:
        raise StageFailed("HTTP 503", permanent=False)

    job = _job(tmp_path, "download", attempt=1, in_run_attempts=2)
    assert run_video_stage(job, body, lambda: placeholders.append(1), LOG) == 1
    assert not job.record_path.exists() and not placeholders  # Snakemake retries the job
    job = _job(tmp_path, "download", attempt=2, in_run_attempts=2)
    assert run_video_stage(job, body, lambda: placeholders.append(1), LOG) == 0
    assert placeholders == [1]
    record = read_record(job.record_path)
    assert (record.outcome, record.attempts, record.reason) == (TRANSIENT, 1, "HTTP 503")


def test_unexpected_errors_are_transient_and_upstream_failures_skip(tmp_path: Path) -> None:
    job = _job(tmp_path, "frames")

    def crash() -> Outcome:
        raise OSError("disk full")

    assert run_video_stage(job, crash, lambda: None, LOG) == 0
    record = read_record(job.record_path)
    assert record.outcome == TRANSIENT and record.reason == "OSError: disk full"

    layout = job.layout
    write_record(layout.record("frames", "v"), StageRecord("v", "frames", PERMANENT))
    ran = []
    filter_job = _job(tmp_path, "filter")
    assert run_video_stage(filter_job, lambda: ran.append(1) or Outcome(), lambda: None, LOG) == 0
    assert not ran and read_record(filter_job.record_path).outcome == SKIPPED


def test_stage_job_removes_its_own_staging_leftovers_only(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    frames = layout.frames("v").parent
    (frames / ".v.tmp-1234abcd").mkdir(parents=True)
    (frames / ".v.old-1234abcd").mkdir()
    (frames / ".other.tmp-1234abcd").mkdir()
    (frames / "v").mkdir()
    assert [p.name for p in staging_leftovers(frames)] == [
        ".other.tmp-1234abcd",
        ".v.old-1234abcd",
        ".v.tmp-1234abcd",
    ]
    run_video_stage(_job(tmp_path, "frames"), lambda: Outcome(count=0), lambda: None, LOG)
    assert [p.name for p in staging_leftovers(frames)] == [".other.tmp-1234abcd"]
    assert (frames / "v").is_dir()


def test_status_command_over_1000_videos(tmp_path: Path) -> None:
    """`framesift status` on 1000 videos reads results only (its CPU time is printed; the
    speed goal lives in the closing note, not in an assertion)."""
    (tmp_path / "config").mkdir()
    urls = [f"https://example.org/v{i}.mp4" for i in range(1000)]
    (tmp_path / "config" / "urls.txt").write_text("\n".join(urls) + "\n")
    from framesift.core.urls import video_id

    layout = Layout(tmp_path / "results")
    for i, url in enumerate(urls):
        vid = video_id(url)
        for stage in ("download", "frames", "filter"):
            outcome = PERMANENT if (i % 10 == 0 and stage == "download") else DONE
            write_record(layout.record(stage, vid), StageRecord(vid, stage, outcome, url=url))
    command = [sys.executable, "-m", "framesift", "status", "-d", str(tmp_path)]
    started = time.process_time()
    from framesift.cli.main import build_parser
    from framesift.cli.status import run_status

    args = build_parser().parse_args(["status", "-d", str(tmp_path), "--json"])
    code = run_status(args)
    own_cpu = time.process_time() - started
    assert code == 1
    proc = subprocess.run([*command, "--failed", "--json"], capture_output=True, text=True)
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and len(data["videos"]) == 100
    assert data["totals"]["failed"] == 100 and data["totals"]["videos"] == 1000
    print(f"\nstatus over 1000 videos: {own_cpu:.2f} CPU-s in-process")


@pytest.mark.parametrize("broken", ["missing-urls", "bad-config"])
def test_status_bad_input_is_one_line(tmp_path: Path, broken: str) -> None:
    (tmp_path / "config").mkdir()
    if broken == "bad-config":
        (tmp_path / "config" / "urls.txt").write_text("")
        (tmp_path / "config" / "config.yaml").write_text("retry: {max_attempts: zero}\n")
    command = [sys.executable, "-m", "framesift", "status", "-d", str(tmp_path)]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("framesift status: "), proc.stderr
    expected = "does not exist" if broken == "missing-urls" else "retry.max_attempts"
    assert expected in lines[0]


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 64 KiB tmpfs (root only, as in CI): writes past its size fail with ENOSPC."""
    import os

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> None:
    """Write into ``folder`` until the file system refuses (ENOSPC)."""
    import errno

    with pytest.raises(OSError) as full, open(folder / "filler", "wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()
    assert full.value.errno == errno.ENOSPC


def test_a_full_disk_ends_in_a_transient_record(tmp_path: Path, full_disk: Path) -> None:
    """The body and the empty result both hit the full disk: the job fails, and its record
    (on another disk) says why, as a transient failure that the next run retries."""

    def body() -> Outcome:
        (full_disk / "kept").mkdir()
        _fill(full_disk / "kept")
        (full_disk / "kept" / "more.jpg").write_bytes(b"\0" * 8192)  # raises: disk full
        return Outcome()

    def placeholder() -> None:
        (full_disk / "kept" / "empty.json").write_text("{}" * 4096)

    job = _job(tmp_path, "filter")
    assert run_video_stage(job, body, placeholder, LOG) == 1
    record = read_record(job.record_path)
    assert record is not None and record.outcome == TRANSIENT
    assert "No space left on device" in record.reason
    assert "could not be written either" in record.reason


def test_stage_errors_on_a_full_disk_are_one_line(tmp_path: Path, full_disk: Path) -> None:
    """The aggregate (no wildcards) failing on a full disk whose log cannot be written either:
    one stderr line without an empty video id, and no `--- Logging error ---` dumps."""
    log = full_disk / "build_dataset.log"
    code = (
        "import types\n"
        "from framesift.lifecycle.snakemake_job import run_stage\n"
        "def body(smk, log):\n"
        "    log.info('x' * 200000)\n"  # fails: the disk is full
        "    raise OSError(28, 'No space left on device')\n"
        f"smk = types.SimpleNamespace(log=[{str(log)!r}], wildcards={{}})\n"
        "run_stage('build_dataset', body, smk)\n"
    )
    _fill(full_disk)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == ["framesift build_dataset: OSError: [Errno 28] No space left on device"]
