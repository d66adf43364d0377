"""The one table of output paths: every file a rule writes, as a Snakemake pattern.

Each template is written once, here, with Snakemake-style ``{wildcard}`` fields. The
rules use the templates as their ``output:``/``log:``/``benchmark:`` patterns, and the
spec classes (:class:`feddiff.fl.config.RunSpec` and the sections' targets) fill them
with :func:`fill`, so the path a rule declares and the path an input function asks for
cannot drift apart. A template is built from a *key* (the wildcards that identify one
job) under a root; logs and benchmarks reuse the key under their own roots.

Bottom layer: imports nothing from the package (and nothing heavy), so the DAG build
and every stage may use it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

RESULTS = "results"
TABLES = f"{RESULTS}/tables"
FIGURES = f"{RESULTS}/figures"
LOGS = f"{RESULTS}/logs"
PRELOAD_LOG = f"{LOGS}/preload.log"  # the local run's preload server (feddiff.preload)
BENCHMARKS = f"{RESULTS}/benchmarks"  # Snakemake benchmark: files (wall time, max RSS)

# ---- keys: the wildcards that name one job's outputs -------------------------------
DATA_KEY = "{dataset}"
PARTITION_KEY = "{dataset}/{ptag}/seed{seed}"
RUN_KEY = "{dataset}/{ptag}/{mtag}/{ttag}/seed{seed}"
FEATURES_KEY = "{dataset}/{backbone}/{ftag}"
AUXILIARY_KEY = "{dataset}/{ptag}/seed{seed}/{atag}"
CLASSIFIER_KEY = "{dataset}/{ctag}"
DIFFUSION_KEY = "{dataset}/{ptag}/{mode}/{ttag}/seed{seed}"
PAPER_KEY = "{table}"

# ---- datasets and partitions -------------------------------------------------------
DATA = f"{RESULTS}/data/{DATA_KEY}.h5"
PARTITION_DIR = f"{RESULTS}/partitions/{PARTITION_KEY}"
PARTITION = f"{PARTITION_DIR}/partition.npz"
PARTITION_COUNTS = f"{PARTITION_DIR}/counts.csv"
PARTITION_HEATMAP = f"{PARTITION_DIR}/heatmap.png"
DOMAIN_COUNTS = f"{PARTITION_DIR}/domain_counts.csv"  # multi-domain datasets only
DOMAIN_HEATMAP = f"{PARTITION_DIR}/domain_heatmap.png"

# ---- classifier runs ---------------------------------------------------------------
RUN_DIR = f"{RESULTS}/runs/{RUN_KEY}"
RUN_METRICS = f"{RUN_DIR}/metrics.csv"
RUN_MODEL = f"{RUN_DIR}/model.safetensors"
RUN_INFO = f"{RUN_DIR}/run.json"

# ---- FedDifRC's diffusion features -------------------------------------------------
FEATURES = f"{RESULTS}/features/{FEATURES_KEY}.h5"
FEATURES_DIR = f"{RESULTS}/features/{FEATURES_KEY}"  # its figures
FEATURE_FIGURE_FILES = (
    *("tsne.png", "tsne.pdf", "pca.png", "pca.pdf"),
    *("kmeans.csv", "kmeans.md", "kmeans.tex", "kmeans.html"),
)
FEATURE_FIGURES = tuple(f"{FEATURES_DIR}/{name}" for name in FEATURE_FIGURE_FILES)
FEATURES_TSNE, FEATURES_PCA = FEATURE_FIGURES[0], FEATURE_FIGURES[2]  # shown in the report
FEATURES_KMEANS_PAGE = FEATURE_FIGURES[FEATURE_FIGURE_FILES.index("kmeans.html")]  # and this

# ---- FedDDPM's auxiliary sets ------------------------------------------------------
AUXILIARY = f"{RESULTS}/auxiliary/{AUXILIARY_KEY}.h5"
AUXILIARY_DIR = f"{RESULTS}/auxiliary/{AUXILIARY_KEY}"
AUXILIARY_COUNTS = f"{AUXILIARY_DIR}/counts.csv"
AUXILIARY_GRID = f"{AUXILIARY_DIR}/grid.png"

# ---- FedDiffuse: FID classifier and federated DDPM runs ----------------------------
CLASSIFIER_DIR = f"{RESULTS}/fid_classifier/{CLASSIFIER_KEY}"
CLASSIFIER_MODEL = f"{CLASSIFIER_DIR}/model.safetensors"
CLASSIFIER_INFO = f"{CLASSIFIER_DIR}/info.json"
DIFFUSION_DIR = f"{RESULTS}/diffusion/{DIFFUSION_KEY}"
DIFFUSION_METRICS = f"{DIFFUSION_DIR}/metrics.csv"
DIFFUSION_COMMUNICATION = f"{DIFFUSION_DIR}/communication.csv"
DIFFUSION_FID = f"{DIFFUSION_DIR}/fid.json"
DIFFUSION_INFO = f"{DIFFUSION_DIR}/run.json"
DIFFUSION_MODEL = f"{DIFFUSION_DIR}/model"  # a directory
DIFFUSION_SAMPLES = f"{DIFFUSION_DIR}/samples"  # a directory
DIFFUSION_SAMPLE_FIGURE = f"{FIGURES}/diffusion_samples/{DIFFUSION_KEY}.{{ext}}"

# ---- tables and figures of the report stages ---------------------------------------
TABLE_EXTS = ("csv", "md", "tex")
PAGE_EXT = "html"  # a table's page for the HTML report, written by its stage beside the table
TABLE_PAGE_EXTS = (*TABLE_EXTS, PAGE_EXT)
FIGURE_EXTS = ("png", "pdf")
ACCURACY_TABLE = f"{TABLES}/accuracy.{{ext}}"
ACCURACY_CURVES = f"{FIGURES}/accuracy_vs_round_{{experiment}}.{{ext}}"
CALIBRATION_FIGURE = f"{FIGURES}/calibration_{{experiment}}.{{ext}}"
DOMAIN_TABLE = f"{TABLES}/accuracy_domains.{{ext}}"
DIFFUSION_FID_TABLE = f"{TABLES}/diffusion_fid.{{ext}}"
DIFFUSION_FID_FIGURE = f"{FIGURES}/diffusion_fid_vs_params.{{ext}}"
DIFFUSION_CALIBRATION_FIGURE = f"{FIGURES}/diffusion_calibration.{{ext}}"
PAPER_TABLE = f"{TABLES}/paper_{PAPER_KEY}.{{ext}}"


def fields(template: str) -> list[str]:
    """The wildcard names of ``template``, in order of first appearance."""
    names: list[str] = []
    for _, name, _, _ in string.Formatter().parse(template):
        if name and name not in names:
            names.append(name)
    return names


def fill(template: str, values: Any = None, /, **extra: Any) -> str:
    """``template`` with its wildcards replaced.

    ``values`` is a mapping or an object with attributes (Snakemake's ``wildcards``);
    keyword arguments add to or override it. Only the template's own fields are read,
    so a rule's wildcards object fits every template of that rule.
    """
    out: dict[str, Any] = {}
    for name in fields(template):
        if name in extra:
            out[name] = extra[name]
        elif isinstance(values, Mapping):
            out[name] = values[name]
        elif values is not None and hasattr(values, name):
            out[name] = getattr(values, name)
        else:
            raise KeyError(f"no value for wildcard {{{name}}} of {template!r}")
    return template.format(**out)


def partial(template: str, **values: Any) -> str:
    """``template`` with only the given fields replaced (a pattern with fewer wildcards)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def expand(template: str, **lists: Any) -> list[str]:
    """One path per value of each list-valued field (e.g. ``ext=TABLE_EXTS``), in order."""
    names = [n for n in fields(template) if n in lists]
    out = [template]
    for name in names:
        out = [partial(p, **{name: v}) for p in out for v in _as_list(lists[name])]
    return out


def match(template: str, path: str) -> dict[str, str] | None:
    """The wildcard values that make ``template`` into ``path``, or None if none do.

    Each wildcard matches a non-empty part of one path component, as the rules'
    ``wildcard_constraints`` allow. A wildcard left unfilled in ``path`` (a rule's
    output pattern) matches itself: ``match(PAPER_TABLE, PAPER_TABLE)`` gives
    ``{"table": "{table}", "ext": "{ext}"}``. Lets the report flag a path by the template
    it came from rather than by a second, hand-written pattern.
    """
    regex, pos, seen = "", 0, set()
    for found in re.finditer(r"\{(\w+)\}", template):
        name = found.group(1)
        regex += re.escape(template[pos : found.start()])
        regex += f"(?P={name})" if name in seen else f"(?P<{name}>[^/]+)"
        seen.add(name)
        pos = found.end()
    values = re.fullmatch(regex + re.escape(template[pos:]), path)
    return values.groupdict() if values else None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def log(rule: str, key: str | None = None) -> str:
    """The log file pattern of ``rule``: one per job key, or one for the rule."""
    return f"{LOGS}/{rule}.log" if key is None else f"{LOGS}/{rule}/{key}.log"


def benchmark(rule: str, key: str) -> str:
    """The benchmark file pattern of ``rule`` (one per job key)."""
    return f"{BENCHMARKS}/{rule}/{key}.tsv"
