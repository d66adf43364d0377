# Config validation and input functions shared by all rules.
import json
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")


# The package lives in workflow/; make it importable here and in every job, whether or
# not it was pip-installed (conda envs built by --sdm conda do not install it).
PACKAGE_DIR = os.path.join(workflow.basedir, "workflow")
sys.path.insert(0, PACKAGE_DIR)

from feddiff.config import expand_method_grids

# Hyperparameter grids (list-valued method keys) become one plain method per
# combination before anything else reads the config.
expand_method_grids(config)
validate(config, schema="../config/schema/config.schema.yaml")

# Relative to the working directory, so moving a project with its results does not
# change the command (a params change would trigger reruns).
FEDDIFF = (
    f"PYTHONPATH={os.path.relpath(PACKAGE_DIR)}${{PYTHONPATH:+:$PYTHONPATH}} python -m feddiff"
)

from feddiff.config import (
    check_semantics,
    data_path,
    expand_runs,
    partition_dir,
    partition_tag,
)

check_semantics(config)

RUNS = expand_runs(config)
RUNS_BY_DIR = {run.run_dir: run for run in RUNS}
PARTITIONS_BY_TAG = {
    partition_tag(setting): (name, setting) for name, setting in config["partitions"].items()
}
LOG_DIR = "results/logs"
BENCH_DIR = (
    "results/benchmarks"  # Snakemake benchmark: files (wall time, max RSS) of the costly rules
)


wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed=r"\d+",
    ptag=r"[^/]+",
    mtag=r"[^/]+",
    ttag=r"[^/]+",


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def dataset_spec(wildcards):
    # Key order kept: a multi-domain dataset stores its domains in declaration order.
    return json.dumps(config["datasets"][wildcards.dataset])


def partition_setting(wildcards):
    return as_json(PARTITIONS_BY_TAG[wildcards.ptag][1])


def partition_name(wildcards):
    return PARTITIONS_BY_TAG[wildcards.ptag][0]


def run_of(wildcards):
    run_dir = (
        f"results/runs/{wildcards.dataset}/{wildcards.ptag}/{wildcards.mtag}/"
        f"{wildcards.ttag}/seed{wildcards.seed}"
    )
    return RUNS_BY_DIR[run_dir]


def run_settings(wildcards):
    return as_json(run_of(wildcards).settings())


def run_labels(wildcards):
    return as_json(run_of(wildcards).labels())


def run_inputs(wildcards):
    run = run_of(wildcards)
    inputs = {
        "data": data_path(run.dataset),
        "partition": f"{run.partition_dir}/partition.npz",
    }
    if run.method_setting["strategy"] == "feddifrc":  # its cached diffusion features
        inputs["features"] = run.method_setting["features"]
    if run.method_setting["strategy"] == "fedddpm":  # its auxiliary set
        inputs["auxiliary"] = run.method_setting["auxiliary"]
    return inputs


def report_manifest():
    return as_json([{"run_dir": run.run_dir, "labels": run.labels()} for run in RUNS])


def run_metrics():
    return sorted({f"{run.run_dir}/metrics.csv" for run in RUNS})


def partition_heatmaps():
    return sorted({f"{run.partition_dir}/heatmap.png" for run in RUNS})


def calibrating_experiments():
    """Experiments with a FedDDPM method: the report draws their calibrations."""
    return [
        name
        for name, exp in config["experiments"].items()
        if any(config["methods"][m]["strategy"] == "fedddpm" for m in exp["methods"])
    ]


def report_outputs():
    tables = [f"results/tables/accuracy.{ext}" for ext in ("csv", "md", "tex")]
    figures = [
        f"results/figures/accuracy_vs_round_{exp}.{ext}"
        for exp in config["experiments"]
        for ext in ("png", "pdf")
    ]
    calibration = [
        f"results/figures/calibration_{exp}.{ext}"
        for exp in calibrating_experiments()
        for ext in ("png", "pdf")
    ]
    return tables + figures + calibration


# FedDifRC's cached diffusion features (rules/features.smk).
from feddiff.features.config import feature_targets

FEATURES_BY_PATH = {target.path: target for target in feature_targets(config)}
FIGURE_FILES = ("tsne.png", "tsne.pdf", "pca.png", "pca.pdf", "kmeans.csv", "kmeans.md")


def features_of(wildcards):
    path = f"results/features/{wildcards.dataset}/{wildcards.backbone}/{wildcards.ftag}.h5"
    return FEATURES_BY_PATH[path]


def features_inputs(wildcards):
    target = features_of(wildcards)
    inputs = {"data": data_path(target.dataset)}
    if target.model_input:  # the pipeline's own federated DDPM
        inputs["model"] = target.model_input
    return inputs


def features_spec(wildcards):
    return as_json(features_of(wildcards).settings)


def features_name(wildcards):
    return features_of(wildcards).name


def feature_figures():
    return sorted(
        f"{target.figures_dir}/{name}"
        for target in FEATURES_BY_PATH.values()
        for name in FIGURE_FILES
    )


# FedDiffuse federated DDPM runs (rules/diffusion.smk); none without a diffusion section.
from feddiff.diffusion.config import classifier_settings, expand_diffusion_runs

DIFFUSION_RUNS = expand_diffusion_runs(config)
DIFFUSION_RUNS_BY_DIR = {run.run_dir: run for run in DIFFUSION_RUNS}


def diffusion_run_of(wildcards):
    run_dir = (
        f"results/diffusion/{wildcards.dataset}/{wildcards.ptag}/{wildcards.mode}/"
        f"{wildcards.ttag}/seed{wildcards.seed}"
    )
    return DIFFUSION_RUNS_BY_DIR[run_dir]


def diffusion_inputs(wildcards):
    run = diffusion_run_of(wildcards)
    inputs = {
        "data": data_path(run.dataset),
        "partition": f"{run.partition_dir}/partition.npz",
        "classifier": f"{run.classifier_dir}/model.safetensors",
    }
    if run.calibration_setting is not None:  # FedDDPM's auxiliary set
        inputs["auxiliary"] = run.calibration_setting["auxiliary"]
    return inputs


def diffusion_settings(wildcards):
    return as_json(diffusion_run_of(wildcards).settings())


def diffusion_labels(wildcards):
    return as_json(diffusion_run_of(wildcards).labels())


def fid_classifier_settings(wildcards):
    return as_json(classifier_settings(config["diffusion"]))


def diffusion_manifest():
    return as_json([{"run_dir": run.run_dir, "labels": run.labels()} for run in DIFFUSION_RUNS])


def diffusion_metrics():
    return sorted(f"{run.run_dir}/metrics.csv" for run in DIFFUSION_RUNS)


DIFFUSION_REPORT = (
    [f"results/tables/diffusion_fid.{ext}" for ext in ("csv", "md", "tex")]
    + [f"results/figures/diffusion_fid_vs_params.{ext}" for ext in ("png", "pdf")]
    + (  # FedDDPM on the global DDPM: its corrections
        [f"results/figures/diffusion_calibration.{ext}" for ext in ("png", "pdf")]
        if any(run.calibration for run in DIFFUSION_RUNS)
        else []
    )
)


def diffusion_outputs():
    return DIFFUSION_REPORT if DIFFUSION_RUNS else []


# FedDDPM's auxiliary sets (rules/auxiliary.smk).
from feddiff.auxiliary.config import auxiliary_targets

AUXILIARY_BY_PATH = {target.path: target for target in auxiliary_targets(config)}


def auxiliary_of(wildcards):
    path = (
        f"results/auxiliary/{wildcards.dataset}/{wildcards.ptag}/seed{wildcards.seed}/"
        f"{wildcards.atag}.h5"
    )
    return AUXILIARY_BY_PATH[path]


def auxiliary_inputs(wildcards):
    target = auxiliary_of(wildcards)
    return {
        "data": data_path(target.dataset),
        "partition": f"{target.partition_dir}/partition.npz",
    }


def auxiliary_settings(wildcards):
    return as_json(auxiliary_of(wildcards).settings())


def auxiliary_grids():
    return sorted(f"{path[: -len('.h5')]}/grid.png" for path in AUXILIARY_BY_PATH)


def all_outputs():
    return (
        report_outputs()
        + partition_heatmaps()
        + feature_figures()
        + diffusion_outputs()
        + auxiliary_grids()
    )
