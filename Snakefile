"""framesift: video URLs -> frames -> YOLO-filtered frames -> de-duplicated, labelled dataset."""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# common.smk validates the config (one-line errors naming the key, then schema defaults), reads
# the URL file and prints the one-line state summary at the end of every run
include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/frames.smk"
include: "rules/filter.smk"
include: "rules/aggregate.smk"


rule all:
    default_target: True
    input:
        final_targets,
    log:
        log_path("all"),


rule frames:
    input:
        expand(str(LAYOUT.frames("{vid}")), vid=VIDEO_IDS),
    log:
        log_path("frames"),


rule filtered:
    input:
        expand(str(LAYOUT.filtered("{vid}")), vid=VIDEO_IDS),
    log:
        log_path("filtered"),
