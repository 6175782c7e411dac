rule hash_frames:
    input:
        kept="results/filtered/{vid}",
    output:
        hashes="results/hashes/{vid}.tsv",
    log:
        "logs/hash_frames/{vid}.log",
    benchmark:
        "benchmarks/hash_frames/{vid}.tsv"
    conda:
        "../workflow/envs/framesift.yaml"
    params:
        settings=config["hash"],
    script:
        "../scripts/hash_frames.py"
