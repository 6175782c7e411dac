rule build_dataset:
    input:
        hashes=expand(str(LAYOUT.hashes("{vid}")), vid=VIDEO_IDS),
        kept=expand(str(LAYOUT.filtered("{vid}")), vid=VIDEO_IDS),
        check=str(LAYOUT.model_check),
        models=model_files,
    output:
        data_yaml=str(LAYOUT.data_yaml),
        clusters=str(LAYOUT.clusters),
        report=str(LAYOUT.report),
        summary=str(LAYOUT.summary),
    log:
        log_path("build_dataset"),
    benchmark:
        benchmark_path("build_dataset")
    conda:
        "../workflow/envs/framesift.yaml"
    params:
        videos=video_table,
        url_problems=url_problems,
        dedup=config["dedup"],
        dataset=config["dataset"],
        detect=detect_settings,
        idle_timeout=config["worker"]["idle_timeout"],
    script:
        "../scripts/build_dataset.py"
