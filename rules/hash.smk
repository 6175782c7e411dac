rule hash_frames:
    input:
        kept=str(LAYOUT.filtered("{vid}")),
        frames=str(LAYOUT.frames("{vid}")),
    output:
        hashes=str(LAYOUT.hashes("{vid}")),
        negatives=str(LAYOUT.negative_hashes("{vid}")),
    log:
        log_path("hash_frames", "{vid}"),
    benchmark:
        benchmark_path("hash_frames", "{vid}")
    retries: job_retries("hash")
    conda:
        "../workflow/envs/framesift.yaml"
    resources:
        attempt=job_attempt,
    params:
        settings=config["hash"],
        negatives=config["dataset"]["negatives"] > 0,
        generation=generation_of("hash"),
    script:
        "../scripts/hash_frames.py"
