rule extract_frames:
    input:
        video=str(LAYOUT.video("{vid}")),
        info=str(LAYOUT.info("{vid}")),
    output:
        frames=directory(str(LAYOUT.frames("{vid}"))),
    log:
        log_path("extract_frames", "{vid}"),
    benchmark:
        benchmark_path("extract_frames", "{vid}")
    retries: job_retries("frames")
    conda:
        "../workflow/envs/framesift.yaml"
    # ffmpeg threads (decoding, filters, JPEG encoding) of one job; Snakemake lowers it to
    # --cores when fewer
    threads: 2
    resources:
        attempt=job_attempt,
    params:
        settings=config["frames"],
        generation=generation_of("frames"),
    script:
        "../scripts/extract_frames.py"
