rule download_video:
    input:
        # ancient: a bad model stops the run before any download, and a re-check never
        # re-downloads
        check=ancient(str(LAYOUT.model_check)),
    output:
        video=str(LAYOUT.video("{vid}")),
        info=str(LAYOUT.info("{vid}")),
    log:
        log_path("download_video", "{vid}"),
    benchmark:
        benchmark_path("download_video", "{vid}")
    retries: job_retries("download")
    localrule: config["download"]["local"]
    conda:
        "../workflow/envs/framesift.yaml"
    # yt-dlp downloads in one thread (and remuxes with ffmpeg -c copy)
    threads: 1
    resources:
        attempt=job_attempt,
        # at most `downloads` at once (default DEFAULT_DOWNLOADS, see common.smk): polite to
        # the sites, whatever --cores says
        downloads=1,
    params:
        url=download_url,
        settings=download_format,
        generation=generation_of("download"),
    script:
        "../scripts/download_video.py"
