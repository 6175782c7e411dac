rule build_dataset:
    input:
        hashes=expand("results/hashes/{vid}.tsv", vid=VIDEO_IDS),
        kept=expand("results/filtered/{vid}", vid=VIDEO_IDS),
    output:
        data_yaml="results/dataset/data.yaml",
        clusters="results/dedup/clusters.tsv",
        report="results/report.md",
        summary="results/summary.json",
    log:
        "logs/build_dataset.log",
    benchmark:
        "benchmarks/build_dataset.tsv"
    conda:
        "../workflow/envs/framesift.yaml"
    resources:
        gpu=1,
    params:
        videos=video_table,
        url_problems=url_problems,
        dedup=config["dedup"],
        dataset=config["dataset"],
        detect=detect_settings,
    script:
        "../scripts/build_dataset.py"
