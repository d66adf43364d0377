"""Measure how FedDifRC's cached diffusion representations behave (one row per features file).

Why: TDCL pulls a sample's embedding towards its own-class conditional representation
and away from the same image's other-class ones. In the paper (Stable Diffusion) those
representations are image-dominated and prompt-modulated; if instead the condition
dominates, TDCL degenerates into matching one of K fixed class codes. These statistics
say which regime a features file is in. Reads the plain HDF5 layout documented in
``workflow/feddiff/features/store.py`` (``/train/conditional`` (N, K, D),
``/<split>/denoised`` (N, D), ``/<split>/labels``).

Usage (from the repository root, the package importable, e.g. the project's venv)::

    python docs/feddifrc_study/measure_features.py NAME=PATH.h5 [NAME=PATH.h5 ...] > table.md
    python docs/feddifrc_study/measure_features.py --config docs/feddifrc_study/features.yaml \
        --directory /tmp/study                     # every entry the config's experiments use
    python docs/feddifrc_study/measure_features.py --config ... --list   # the .h5 targets only

Columns (train split unless said otherwise):

* ``own·other cos``: mean cosine between an image's own-class conditional vector and its
  other-class ones (near 1: the prompt barely changes the vector; near 0: each prompt
  gives an unrelated vector).
* ``offset consistency``: the class offset ``c[i,k] - mean_j c[i,j]`` of prompt k, mean
  pairwise cosine over images, averaged over k (1: the same vector for every image,
  i.e. a fixed class code added regardless of the image).
* ``image / prompt / interaction share``: two-way ANOVA of ``c[i,k]``: the fraction of
  the total variance from the image main effect, the prompt main effect, and the rest.
  Image-dominated = the image share is the largest.
* ``NCM own-class``: nearest-class-mean accuracy on ``c[i, y_i]`` (train means, train
  rows): high whenever the condition is in the vector, so it measures label leakage,
  not image content.
* ``NCM prompt-avg``: the same on the label-free ``mean_k c[i,k]``, class means from
  even rows, accuracy on odd rows: the image content the conditional vectors carry.
* ``NCM denoised (test)``: class means of the train denoised vectors, accuracy on the
  test split's denoised vectors.
* ``prompt match``: fraction of images whose denoised vector is closer (cosine) to its
  own-class conditional vector than to any other class's -- what TDCL asks the
  embedding to learn, reachable from image content.
* ``NMI denoised (test)``: K-means (K = classes, 10 restarts, seed 0) NMI on the test
  denoised vectors.
"""

from __future__ import annotations

import sys

import h5py
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _ncm(train_x: np.ndarray, train_y: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    classes = np.unique(train_y)
    means = np.stack([train_x[train_y == c].mean(0) for c in classes])
    dist = ((x[:, None, :] - means[None]) ** 2).sum(-1)
    return float((classes[dist.argmin(1)] == y).mean())


def measure(path: str) -> dict[str, float]:
    with h5py.File(path, "r") as f:
        cond = np.asarray(f["train/conditional"], dtype=np.float64)  # (N, K, D)
        den = np.asarray(f["train/denoised"], dtype=np.float64)
        y = np.asarray(f["train/labels"])
        den_test = np.asarray(f["test/denoised"], dtype=np.float64)
        y_test = np.asarray(f["test/labels"])
    n, k, _ = cond.shape
    rows = np.arange(n)
    own = cond[rows, y]
    unit = _unit(cond)
    cos_own = np.einsum("nd,nkd->nk", unit[rows, y], unit)
    other = np.ones((n, k), dtype=bool)
    other[rows, y] = False

    offsets = _unit(cond - cond.mean(1, keepdims=True))  # (N, K, D)
    sums = offsets.sum(0)  # (K, D)
    pairwise = ((sums**2).sum(-1) - n) / (n * (n - 1))  # mean cos over image pairs, per prompt

    grand = cond.mean((0, 1))
    image_eff = cond.mean(1) - grand  # (N, D)
    prompt_eff = cond.mean(0) - grand  # (K, D)
    total = ((cond - grand) ** 2).sum()
    ss_image = k * (image_eff**2).sum()
    ss_prompt = n * (prompt_eff**2).sum()

    avg = cond.mean(1)
    even, odd = rows % 2 == 0, rows % 2 == 1
    match = np.einsum("nd,nkd->nk", _unit(den), unit).argmax(1) == y
    km = KMeans(n_clusters=len(np.unique(y)), n_init=10, random_state=0).fit(den_test)
    return {
        "own·other cos": float(cos_own[other].mean()),
        "offset consistency": float(pairwise.mean()),
        "image share": float(ss_image / total),
        "prompt share": float(ss_prompt / total),
        "interaction share": float(1 - (ss_image + ss_prompt) / total),
        "NCM own-class": _ncm(own, y, own, y),
        "NCM prompt-avg": _ncm(avg[even], y[even], avg[odd], y[odd]),
        "NCM denoised (test)": _ncm(den, y, den_test, y_test),
        "prompt match": float(match.mean()),
        "NMI denoised (test)": float(normalized_mutual_info_score(y_test, km.labels_)),
    }


def config_files(config: str, directory: str) -> list[tuple[str, str]]:
    """(entry name, path under ``directory``) of each features file the config's runs use."""
    from pathlib import Path

    from feddiff.plan import build_plan, load_config

    plan = build_plan(load_config(config))
    return [(t.name, str(Path(directory) / t.path)) for t in plan.features]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "--config":
        directory = argv[argv.index("--directory") + 1] if "--directory" in argv else "."
        files = config_files(argv[1], directory)
        if "--list" in argv:
            print("\n".join(path for _, path in files))
            return 0
    else:
        files = [(arg.partition("=")[0], arg.partition("=")[2]) for arg in argv]
    rows = [(name, measure(path)) for name, path in files]
    header = ["features"] + list(rows[0][1])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, stats in rows:
        print("| " + " | ".join([name] + [f"{v:.2f}" for v in stats.values()]) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
