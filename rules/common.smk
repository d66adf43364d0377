# The config checked and expanded once into a plan (feddiff.plan), and the one-line
# lookups the rules use. Every path pattern comes from feddiff.paths.
import json
import os
import re
import sys

from snakemake.utils import min_version, validate

min_version("9.0")


# The package lives in workflow/; make it importable here and in every job, whether or
# not it was pip-installed (conda envs built by --sdm conda do not install it).
PACKAGE_DIR = os.path.join(workflow.basedir, "workflow")
sys.path.insert(0, PACKAGE_DIR)

from feddiff import paths, preload
from feddiff.config import expand_method_grids
from feddiff.diffusion.config import MODE_WILDCARD
from feddiff.plan import build_plan

# Hyperparameter grids (list-valued method keys) become one plain method per
# combination before anything else reads the config.
expand_method_grids(config)
validate(config, schema="../config/schema/config.schema.yaml")
PLAN = build_plan(config)

# Relative to the working directory, so moving a project with its results does not
# change the command (a params change would trigger reruns).
FEDDIFF = (
    f"PYTHONPATH={os.path.relpath(PACKAGE_DIR)}${{PYTHONPATH:+:$PYTHONPATH}} python -m feddiff"
)
PRELOAD_SERVERS = []  # the local run's preload server (Snakefile: onstart, onsuccess, onerror)
RUNS = PLAN.runs
DIFFUSION_RUNS = PLAN.diffusion_runs
DOMAIN_DATASETS = PLAN.domain_datasets


def start_preload():
    """A preload server for a local run whose jobs share this Python (feddiff.preload);
    not under a cluster executor or --sdm conda, off Linux, nor with FEDDIFF_PRELOAD=0."""
    software = workflow.deployment_settings.deployment_method
    off = os.environ.get(preload.ENV, "").strip().lower() in preload.OFF[1:]
    local = workflow.local_exec and not software and preload.supported()
    if config["preload"] and local and not off:
        PRELOAD_SERVERS.append(preload.start(paths.PRELOAD_LOG, os.path.relpath(PACKAGE_DIR)))


def stop_preload():
    while PRELOAD_SERVERS:
        preload.stop(PRELOAD_SERVERS.pop())


wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed=r"\d+",
    ptag=r"[^/]+",
    mtag=r"[^/]+",
    ttag=r"[^/]+",
    backbone=r"stable_diffusion|ddpm",
    ftag=r"[^/]+",
    atag=r"[^/]+",
    ctag=r"[^/]+",
    mode=MODE_WILDCARD,
    table=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def domain_datasets_pattern():
    return "|".join(re.escape(name) for name in DOMAIN_DATASETS)


# ---- datasets and partitions (rules/data.smk, rules/partition.smk) -----------------
def dataset_spec(wildcards):
    # Key order kept: a multi-domain dataset stores its domains in declaration order.
    return json.dumps(config["datasets"][wildcards.dataset])


def partition_setting(wildcards):
    return as_json(PLAN.partition(wildcards)[1])


def partition_name(wildcards):
    return PLAN.partition(wildcards)[0]


def partition_labels(wildcards):
    return {"partition": partition_name(wildcards), "seed": wildcards.seed}


def partition_class_labels(wildcards):
    return {**partition_labels(wildcards), "view": "classes"}


def partition_domain_labels(wildcards):
    return {**partition_labels(wildcards), "view": "domains"}


def partition_heatmaps():
    return sorted({run.path(paths.PARTITION_HEATMAP) for run in RUNS})


# ---- classifier runs and their report (rules/train.smk, rules/report.smk) ---------
def run_of(wildcards):
    return PLAN.run(wildcards)


def run_settings(wildcards):
    return as_json(run_of(wildcards).settings())


def run_labels(wildcards):
    return as_json(run_of(wildcards).labels())


def run_inputs(wildcards):
    run = run_of(wildcards)
    inputs = {"data": run.path(paths.DATA), "partition": run.path(paths.PARTITION)}
    if run.method_setting["strategy"] == "feddifrc":  # its cached diffusion features
        inputs["features"] = run.method_setting["features"]
    if run.method_setting["strategy"] == "fedddpm":  # its auxiliary set
        inputs["auxiliary"] = run.method_setting["auxiliary"]
    return inputs


def report_manifest():
    return as_json([{"run_dir": run.run_dir, "labels": run.labels()} for run in RUNS])


def run_metrics():
    return sorted({run.path(paths.RUN_METRICS) for run in RUNS})


def report_outputs():
    experiments = list(config["experiments"])
    return (
        paths.expand(paths.ACCURACY_TABLE, ext=paths.TABLE_EXTS)
        + paths.expand(paths.ACCURACY_CURVES, experiment=experiments, ext=paths.FIGURE_EXTS)
        + paths.expand(
            paths.CALIBRATION_FIGURE,
            experiment=PLAN.calibrating_experiments(),
            ext=paths.FIGURE_EXTS,
        )
    )


# ---- FedDifRC's diffusion features (rules/features.smk) ----------------------------
def features_of(wildcards):
    return PLAN.feature(wildcards)


def features_inputs(wildcards):
    target = features_of(wildcards)
    inputs = {"data": paths.fill(paths.DATA, target.wildcards)}
    if target.model_input:  # the pipeline's own federated DDPM
        inputs["model"] = target.model_input
    return inputs


def features_spec(wildcards):
    return as_json(features_of(wildcards).settings)


def features_name(wildcards):
    return features_of(wildcards).name


def features_tsne_labels(wildcards):
    return {"features": features_name(wildcards), "backbone": wildcards.backbone, "view": "t-SNE"}


def features_pca_labels(wildcards):
    return {"features": features_name(wildcards), "backbone": wildcards.backbone, "view": "PCA"}


def feature_figures():
    return sorted(path for target in PLAN.features for path in target.figures())


# ---- FedDDPM's auxiliary sets (rules/auxiliary.smk) --------------------------------
def auxiliary_of(wildcards):
    return PLAN.auxiliary_set(wildcards)


def auxiliary_inputs(wildcards):
    target = auxiliary_of(wildcards)
    return {"data": paths.fill(paths.DATA, target.wildcards), "partition": target.partition}


def auxiliary_settings(wildcards):
    return as_json(auxiliary_of(wildcards).settings())


def auxiliary_labels(wildcards):
    target = auxiliary_of(wildcards)
    return {
        "dataset": wildcards.dataset,
        "partition": target.partition_name,
        "seed": wildcards.seed,
        "set": target.name,
    }


def auxiliary_grids():
    return sorted(target.grid for target in PLAN.auxiliary)


# ---- FedDiffuse federated DDPM runs (rules/diffusion.smk) --------------------------
def diffusion_run_of(wildcards):
    return PLAN.diffusion_run(wildcards)


def diffusion_inputs(wildcards):
    run = diffusion_run_of(wildcards)
    inputs = {
        "data": run.path(paths.DATA),
        "partition": run.path(paths.PARTITION),
        "classifier": run.path(paths.CLASSIFIER_MODEL),
    }
    if run.calibration_setting is not None:  # FedDDPM's auxiliary set
        inputs["auxiliary"] = run.calibration_setting["auxiliary"]
    return inputs


def diffusion_settings(wildcards):
    return as_json(diffusion_run_of(wildcards).settings())


def diffusion_labels(wildcards):
    return as_json(diffusion_run_of(wildcards).labels())


def fid_classifier_settings(wildcards):
    return as_json(PLAN.classifier_settings)


def diffusion_manifest():
    return as_json([{"run_dir": run.run_dir, "labels": run.labels()} for run in DIFFUSION_RUNS])


def diffusion_metrics():
    return sorted(run.path(paths.DIFFUSION_METRICS) for run in DIFFUSION_RUNS)


DIFFUSION_REPORT = (
    paths.expand(paths.DIFFUSION_FID_TABLE, ext=paths.TABLE_EXTS)
    + paths.expand(paths.DIFFUSION_FID_FIGURE, ext=paths.FIGURE_EXTS)
    + (  # FedDDPM on the global DDPM: its corrections
        paths.expand(paths.DIFFUSION_CALIBRATION_FIGURE, ext=paths.FIGURE_EXTS)
        if any(run.calibration for run in DIFFUSION_RUNS)
        else []
    )
)


def diffusion_outputs():
    return DIFFUSION_REPORT if DIFFUSION_RUNS else []


# ---- paper comparisons (rules/paper.smk) -------------------------------------------
def paper_table_inputs(wildcards):
    link = PLAN.paper_link(wildcards)
    return {"results": link.results, "values": link.values}


def paper_kind(wildcards):
    return PLAN.paper_link(wildcards).kind


def paper_groups(wildcards):
    return ",".join(PLAN.paper_link(wildcards).groups)


def all_outputs():
    return (
        report_outputs()
        + partition_heatmaps()
        + feature_figures()
        + diffusion_outputs()
        + auxiliary_grids()
    )
