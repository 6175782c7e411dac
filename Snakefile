"""framesift: video URLs -> frames -> YOLO-filtered frames -> de-duplicated, labelled dataset."""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# common.smk validates the config (one-line errors naming the key, then schema defaults)
include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/frames.smk"
include: "rules/filter.smk"
include: "rules/hash.smk"
include: "rules/aggregate.smk"


rule all:
    default_target: True
    input:
        "results/dataset/data.yaml",
        "results/report.md",
    log:
        "logs/all.log",


rule frames:
    input:
        expand("results/frames/{vid}", vid=VIDEO_IDS),
    log:
        "logs/frames.log",


rule filtered:
    input:
        expand("results/filtered/{vid}", vid=VIDEO_IDS),
    log:
        "logs/filtered.log",


onsuccess:
    print_run_summary()


onerror:
    print_run_summary()
