rule extract_frames:
    input:
        video=f"results/videos/{{vid}}.{CONTAINER}",
        info="results/videos/{vid}.info.json",
    output:
        frames=directory("results/frames/{vid}"),
    log:
        "logs/extract_frames/{vid}.log",
    benchmark:
        "benchmarks/extract_frames/{vid}.tsv"
    conda:
        "../workflow/envs/framesift.yaml"
    params:
        settings=config["frames"],
        failure="results/failures/frames/{vid}.json",
    script:
        "../scripts/extract_frames.py"
