# etasvae: ETAS parameter grids -> synthetic seismicity -> VAEs -> statistical verdicts.
# Stages live in workflow/rules/*.smk; docs/configuration.md documents the config, docs/outputs.md the outputs.


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/windows.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/apply.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/invert.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/surrogate.smk"


rule all:
    default_target: True
    input:
        all_targets,
