rule download_video:
    output:
        video=f"results/videos/{{vid}}.{CONTAINER}",
        info="results/videos/{vid}.info.json",
    log:
        "logs/download_video/{vid}.log",
    benchmark:
        "benchmarks/download_video/{vid}.tsv"
    retries: config["download"]["job_retries"]
    localrule: config["download"]["local"]
    conda:
        "../workflow/envs/framesift.yaml"
    params:
        url=download_url,
        settings=download_format,
        failure="results/failures/download/{vid}.json",
    script:
        "../scripts/download_video.py"
