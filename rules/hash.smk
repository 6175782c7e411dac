rule hash_frames:
    input:
        kept="results/filtered/{vid}",
    output:
        hashes="results/hashes/{vid}.tsv",
    params:
        settings=config["hash"],
    log:
        "logs/hash_frames/{vid}.log",
    benchmark:
        "benchmarks/hash_frames/{vid}.tsv"
    script:
        "../scripts/hash_frames.py"
