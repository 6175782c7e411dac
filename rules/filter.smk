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
        models=model_specs,
        classes=config["filter"]["classes"],
    script:
        "../scripts/check_model.py"


rule filter_frames:
    input:
        frames=str(LAYOUT.frames("{vid}")),
        check=str(LAYOUT.model_check),
        models=model_files,
    output:
        kept=directory(str(LAYOUT.filtered("{vid}"))),
    log:
        log_path("filter_frames", "{vid}"),
    benchmark:
        benchmark_path("filter_frames", "{vid}")
    retries: job_retries("filter")
    conda:
        "../workflow/envs/framesift.yaml"
    resources:
        gpu=1,
        attempt=job_attempt,
    params:
        settings=config["filter"],
        generation=generation_of("filter"),
    script:
        "../scripts/filter_frames.py"
