"""Fréchet distance between generated and real images, and the features it uses.

Inception FID needs pretrained Inception weights, which an offline machine does not
have and which this pipeline never downloads. So:

- backend ``auto`` uses torch-fidelity's Inception-v3 when ``torch_fidelity``
  imports *and* its weights file is already on disk (torch hub cache); it is then
  labelled :data:`KIND_INCEPTION`.
- otherwise (always, offline) the distance is computed in the penultimate feature
  space of a classifier this pipeline trained on the real training split
  (:mod:`feddiff.diffusion.fid_classifier`), labelled :data:`KIND_CLASSIFIER`
  wherever it is shown. Its values are comparable across runs of one pipeline
  (same classifier artifact), never with published FID numbers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from feddiff.diffusion.fid_classifier import ClassifierFeatures
from feddiff.diffusion.kinds import KIND_CLASSIFIER, KIND_INCEPTION

log = logging.getLogger(__name__)

#: The file torch-fidelity would download; looked for, never fetched.
INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"


class FeatureExtractor(Protocol):
    kind: str

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """uint8 NCHW images -> (N, D) float64 features."""
        ...


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two feature sets.

    The trace of the matrix square root is taken as the sum of square roots of the
    eigenvalues of ``S_a^(1/2) S_b S_a^(1/2)``, a symmetric PSD matrix with the same
    spectrum as ``S_a S_b``: only symmetric eigendecompositions, so no complex parts
    and no failure on the rank-deficient covariances of few samples.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with equal D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each feature set needs at least two samples")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    mid = root_a @ s_b @ root_a
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((mid + mid.T) / 2), 0, None)).sum()
    fd = float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * tr_covmean)
    return max(fd, 0.0)


class InceptionFeatures:
    """torch-fidelity's Inception-v3 pool features (2048-d), from weights already on disk."""

    kind = KIND_INCEPTION

    def __init__(self, weights: Path, device: torch.device) -> None:
        from torch_fidelity.feature_extractor_inceptionv3 import (
            FeatureExtractorInceptionV3,
        )

        self.device = device
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights)
        ).to(device)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 200) -> np.ndarray:
        out = []
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(self.device)
            if x.shape[1] == 1:
                x = x.repeat(1, 3, 1, 1)
            out.append(self.net(x)[0].double().cpu().numpy())
        return np.concatenate(out)


def inception_weights_path() -> Path | None:
    """The Inception weights file if torch-fidelity imports and the file is on disk."""
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS
    return path if path.is_file() else None


def load_feature_extractor(
    backend: str, classifier_dir: Path, device: torch.device
) -> FeatureExtractor:
    """Inception when ``backend == "auto"`` and it loads offline; the classifier otherwise."""
    if backend == "auto":
        weights = inception_weights_path()
        if weights is not None:
            try:
                return InceptionFeatures(weights, device)
            except Exception as exc:  # noqa: BLE001 - a broken install must not stop the run: fall back, say so
                log.warning(
                    "torch-fidelity Inception did not load (%s); using classifier features", exc
                )
        else:
            log.info(
                "Inception FID unavailable offline (torch-fidelity or its weights missing); "
                "using %s",
                KIND_CLASSIFIER,
            )
    elif backend != "classifier":
        raise ValueError(f"unknown FID backend {backend!r}; choose 'auto' or 'classifier'")
    return ClassifierFeatures.load(classifier_dir, device)
