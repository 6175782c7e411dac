"""Snakemake adapter: download one video (rule download_video)."""

import sys
from pathlib import Path

from framesift.download import DownloadFailed, DownloadOptions, download_video
from framesift.failures import PERMANENT, TRANSIENT, FailureRecord, clear_record, write_record
from framesift.fsutil import atomic_write_text
from framesift.stagelog import run_stage


def main(smk, log):
    vid, url = smk.wildcards.vid, smk.params.url
    settings = {**smk.config["download"], **smk.params.settings}
    options = DownloadOptions(
        **{k: settings[k] for k in DownloadOptions.__dataclass_fields__ if k in settings}
    )
    log.info(f"downloading {url} as {vid}")
    try:
        meta, lines = download_video(
            url, vid, Path(smk.output.video), Path(smk.output.info), options
        )
    except DownloadFailed as failure:
        kind = PERMANENT if failure.permanent else TRANSIENT
        write_record(smk.params.failure, FailureRecord(vid, "download", kind, failure.reason, url))
        if not failure.permanent:
            log.error(f"{vid}: {url}: {failure.reason} (transient: a rerun retries it)")
            sys.exit(1)
        log.warning(f"{vid}: {url}: {failure.reason} (permanent: recorded, video skipped)")
        Path(smk.output.video).write_bytes(b"")
        atomic_write_text(smk.output.info, f'{{"video_id": "{vid}", "failed": true}}\n')
        return
    for line in lines:
        log.info(line)
    clear_record(smk.params.failure)
    log.info(f"done: {meta.get('title')!r}, {Path(smk.output.video).stat().st_size} bytes")


run_stage("download_video", main, snakemake)  # noqa: F821 - injected by Snakemake
