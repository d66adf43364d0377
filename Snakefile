# feddiff: diffusion models in federated learning, as one reproducible DAG.
# Run: snakemake --cores 2        Config: config/config.yaml (validated on load)


# A config given with --configfile replaces the default rather than merging into it:
# Snakemake's merge would otherwise add the default's experiments to a paper config's.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/report_common.smk"  # before the rules that use flag_for_html_report
include: "rules/data.smk"
include: "rules/partition.smk"
include: "rules/features.smk"
include: "rules/auxiliary.smk"
include: "rules/train.smk"
include: "rules/diffusion.smk"
include: "rules/report.smk"
include: "rules/paper.smk"


# `snakemake --report report.html`: a self-contained HTML report of tables and figures.
report: "workflow/report/workflow.rst"


# One warm interpreter for the jobs of a local run (config `preload`, feddiff.preload).
onstart:
    start_preload()


onsuccess:
    stop_preload()


onerror:
    stop_preload()


# Light rules run on the submitting host under a cluster executor (profiles/slurm).
localrules:
    partition,
    report,
    diffuse_report,
    feature_figures,
    paper_table,
    diffusion_samples,


rule all:
    default_target: True
    input:
        all_outputs(),
        report_extras(),
