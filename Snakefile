"""framesift: video URLs -> frames -> YOLO-filtered frames -> de-duplicated, labelled dataset."""

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


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


onsuccess:
    print_run_summary()


onerror:
    print_run_summary()
