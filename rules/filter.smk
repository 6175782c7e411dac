rule check_model:
    input:
        models=model_files,
    output:
        check=str(LAYOUT.model_check),
    log:
        log_path("check_model"),
    localrule: True
    conda:
        "../workflow/envs/framesift.yaml"
    params:
        settings=detector_settings,
        classes=config["filter"]["classes"],
        idle_timeout=config["worker"]["idle_timeout"],
    script:
        "../scripts/check_model.py"


rule filter_frames:
    input:
        frames=str(LAYOUT.frames("{vid}")),
        check=str(LAYOUT.model_check),
        models=model_files,
    output:
        kept=directory(str(LAYOUT.filtered("{vid}"))),
        # the worker hashes the frames it decoded for detection (docs/worker.md)
        hashes=str(LAYOUT.hashes("{vid}")),
        negatives=str(LAYOUT.negative_hashes("{vid}")),
    log:
        log_path("filter_frames", "{vid}"),
    benchmark:
        benchmark_path("filter_frames", "{vid}")
    retries: job_retries("filter")
    conda:
        "../workflow/envs/framesift.yaml"
    threads: 1
    resources:
        # no gpu=1: this job is a cheap client; the shared worker holds the GPU, batches the
        # frames of concurrent jobs (docs/worker.md); the SLURM profile asks a GPU per group
        attempt=job_attempt,
    params:
        settings=config["filter"],
        hash=config["hash"],
        negatives=config["dataset"]["negatives"] > 0,
        idle_timeout=config["worker"]["idle_timeout"],
        generation=generation_of("filter"),
    script:
        "../scripts/filter_frames.py"
