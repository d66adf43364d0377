# Functions for the report-side rules (rules/paper.smk, rules/report_extras.smk): the
# paper links of the config and the extra targets `rule all` asks for.
from feddiff.report.paper import paper_links

PAPER_LINKS = paper_links(config)


def paper_link(wildcards):
    return PAPER_LINKS[wildcards.table]


def paper_inputs(wildcards):
    link = paper_link(wildcards)
    return {"results": link.results, "values": link.values}


def paper_outputs():
    return [
        path
        for link in PAPER_LINKS.values()
        for path in link.outputs() + [f"results/tables/paper_{link.table}.html"]
    ]


def diffusion_sample_figures():
    return [
        f"results/figures/diffusion_samples/{run.dataset}/{run.partition_tag}/{run.method}/"
        f"{run.training_tag}/seed{run.seed}.{ext}"
        for run in DIFFUSION_RUNS
        for ext in ("png", "pdf")
    ]


def feature_kmeans_pages():
    return sorted(f"{target.figures_dir}/kmeans.html" for target in FEATURES_BY_PATH.values())


def domain_table_outputs():
    """The per-domain table (feddiff.report.domains), when a run's dataset has domains
    (DOMAIN_DATASETS: rules/partition.smk)."""
    if not any(run.dataset in DOMAIN_DATASETS for run in RUNS):
        return []
    return [f"results/tables/accuracy_domains.{ext}" for ext in ("csv", "md", "tex")]


def report_extras():
    """What `rule all` adds for the HTML report beyond all_outputs() (rules/common.smk)."""
    extras = paper_outputs() + feature_kmeans_pages()
    if domain_table_outputs():
        extras += ["results/tables/accuracy_domains.html"]
    if DIFFUSION_RUNS:
        extras += ["results/tables/diffusion_fid.html"] + diffusion_sample_figures()
    return extras
