rule filter_frames:
    input:
        frames="results/frames/{vid}",
    output:
        kept=directory("results/filtered/{vid}"),
    params:
        settings=config["filter"],
        failure="results/failures/filter/{vid}.json",
    resources:
        gpu=1,
    log:
        "logs/filter_frames/{vid}.log",
    benchmark:
        "benchmarks/filter_frames/{vid}.tsv"
    script:
        "../scripts/filter_frames.py"
