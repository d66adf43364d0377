# Functions of the report side: what the HTML report (`snakemake --report report.html`)
# shows, with captions (workflow/report/*.rst, relative to this file) and categories; what
# the report rule (rules/report.smk) writes; what `rule all` adds for the report. Included
# before the rules that flag their outputs with flag_for_html_report (features, diffusion,
# report, paper). Every path comes from feddiff.paths; the stages write every table's
# .html page beside its .csv/.md/.tex (feddiff.report.render).


def table_page(template):
    """The .html page of a table template of feddiff.paths (other wildcards kept)."""
    return paths.partial(template, ext=paths.PAGE_EXT)


def figure_png(template):
    """The PNG of a figure template: the report shows it, not the PDF."""
    return paths.partial(template, ext="png")


def features_kmeans_labels(wildcards):
    return {
        "features": features_name(wildcards),
        "backbone": wildcards.backbone,
        "view": "K-means table",
    }


# Outputs the HTML report shows: (feddiff.paths template, report() arguments). `labels` is
# a function of the job's wildcards, or a dict whose values may name the template's
# wildcards ("{experiment}"), read from the flagged path; one still a wildcard in the rule's
# output pattern ("{table}") is filled by Snakemake from the job's wildcards. The PDF,
# Markdown and LaTeX versions are not repeated in the report.
REPORT_ITEMS = [
    (
        paths.fill(paths.ACCURACY_TABLE, ext="csv"),
        dict(
            caption="../workflow/report/accuracy_csv.rst",
            category="Accuracy",
            subcategory="Tables",
            labels={"table": "accuracy, tidy CSV (download)"},
        ),
    ),
    (
        table_page(paths.ACCURACY_TABLE),
        dict(
            caption="../workflow/report/accuracy_table.rst",
            category="Accuracy",
            subcategory="Tables",
            labels={"table": "accuracy (mean ± std over seeds)"},
        ),
    ),
    (
        table_page(paths.DOMAIN_TABLE),
        dict(
            caption="../workflow/report/accuracy_domains_table.rst",
            category="Accuracy",
            subcategory="Tables",
            labels={"table": "accuracy per domain (mean ± std over seeds)"},
        ),
    ),
    (
        figure_png(paths.ACCURACY_CURVES),
        dict(
            caption="../workflow/report/accuracy_curves.rst",
            category="Accuracy",
            subcategory="Curves",
            labels={"experiment": "{experiment}"},
        ),
    ),
    (
        figure_png(paths.CALIBRATION_FIGURE),
        dict(
            caption="../workflow/report/calibration.rst",
            category="FedDDPM",
            subcategory="Server calibration",
            labels={"federation": "classifier", "experiment": "{experiment}"},
        ),
    ),
    (
        figure_png(paths.DIFFUSION_CALIBRATION_FIGURE),
        dict(
            caption="../workflow/report/calibration.rst",
            category="FedDDPM",
            subcategory="Server calibration",
            labels={"federation": "DDPM", "experiment": "diffusion grid"},
        ),
    ),
    (
        table_page(paths.DIFFUSION_FID_TABLE),
        dict(
            caption="../workflow/report/diffusion_fid_table.rst",
            category="FedDiffuse",
            subcategory="FID and communication",
            labels={"item": "table (mean ± std over seeds)"},
        ),
    ),
    (
        figure_png(paths.DIFFUSION_FID_FIGURE),
        dict(
            caption="../workflow/report/diffusion_fid_figure.rst",
            category="FedDiffuse",
            subcategory="FID and communication",
            labels={"item": "FID vs. parameters sent (figure)"},
        ),
    ),
    (
        table_page(paths.PAPER_TABLE),
        dict(
            caption="../workflow/report/paper_table.rst",
            category="Paper comparison",
            subcategory="Tables",
            labels={"table": "{table}"},
        ),
    ),
    (
        paths.FEATURES_KMEANS_PAGE,
        dict(
            caption="../workflow/report/features_kmeans.rst",
            category="Diffusion features",
            subcategory="{dataset}",
            labels=features_kmeans_labels,
        ),
    ),
]


def flag_for_html_report(path):
    """``path`` flagged for the HTML report if it is of a REPORT_ITEMS template."""
    for template, arguments in REPORT_ITEMS:
        values = paths.match(template, path)
        if values is None:
            continue
        labels = arguments["labels"]
        if isinstance(labels, dict):
            labels = {name: value.format(**values) for name, value in labels.items()}
        return report(path, **{**arguments, "labels": labels})
    return path


def domain_table_outputs():
    """The per-domain table (feddiff.report.domains), when a run's dataset has domains."""
    if not any(run.dataset in DOMAIN_DATASETS for run in RUNS):
        return []
    return paths.expand(paths.DOMAIN_TABLE, ext=paths.TABLE_PAGE_EXTS)


def report_rule_outputs():
    """The report rule's outputs, each once: report_outputs() (rules/common.smk), the
    accuracy table's page and the per-domain tables."""
    found = report_outputs() + [table_page(paths.ACCURACY_TABLE)] + domain_table_outputs()
    return list(dict.fromkeys(found))


def diffusion_report_outputs():
    """The diffuse_report rule's outputs, each once: DIFFUSION_REPORT (rules/common.smk)
    and the FID table's page."""
    return list(dict.fromkeys(DIFFUSION_REPORT + [table_page(paths.DIFFUSION_FID_TABLE)]))


def paper_outputs():
    """Every linked paper table in its four formats (feddiff.report.paper.PaperLink)."""
    return [path for link in PLAN.paper_links.values() for path in link.outputs()]


def diffusion_sample_figures():
    return [
        paths.fill(paths.DIFFUSION_SAMPLE_FIGURE, run.wildcards, ext=ext)
        for run in DIFFUSION_RUNS
        for ext in paths.FIGURE_EXTS
    ]


def diffusion_sample_labels(wildcards):
    # mode first: the report would turn a later two-valued label into a toggle
    return {
        "mode": wildcards.mode,
        "dataset": wildcards.dataset,
        "partition": diffusion_run_of(wildcards).partition,
        "seed": wildcards.seed,
    }


def diffusion_sample_title(wildcards):
    partition = diffusion_run_of(wildcards).partition
    return f"{wildcards.dataset} · {partition} · {wildcards.mode} · seed {wildcards.seed}"


def report_extras():
    """What `rule all` adds for the HTML report beyond all_outputs() (rules/common.smk)."""
    extras = [table_page(paths.ACCURACY_TABLE)] + domain_table_outputs() + paper_outputs()
    if DIFFUSION_RUNS:
        extras += [table_page(paths.DIFFUSION_FID_TABLE)] + diffusion_sample_figures()
    return extras
