rule extract_frames:
    input:
        video="results/videos/{vid}." + CONTAINER,
    output:
        frames=directory("results/frames/{vid}"),
    params:
        settings=config["frames"],
        failure="results/failures/frames/{vid}.json",
    log:
        "logs/extract_frames/{vid}.log",
    benchmark:
        "benchmarks/extract_frames/{vid}.tsv"
    script:
        "../scripts/extract_frames.py"
