rule filter_frames:
    input:
        frames="results/frames/{vid}",
    output:
        kept=directory("results/filtered/{vid}"),
    log:
        "logs/filter_frames/{vid}.log",
    benchmark:
        "benchmarks/filter_frames/{vid}.tsv"
    conda:
        "../workflow/envs/framesift.yaml"
    resources:
        gpu=1,
    params:
        settings=config["filter"],
        failure="results/failures/filter/{vid}.json",
    script:
        "../scripts/filter_frames.py"
