"""The two kinds of FID this pipeline reports, as the labels tables and figures print.

Torch-free, so the report stages and the config checks (paper links, at DAG build)
name a kind without importing the feature networks of :mod:`feddiff.diffusion.fid`.
"""

from __future__ import annotations

#: torch-fidelity's Inception-v3 features: the FID papers report.
KIND_INCEPTION = "Inception FID (torch-fidelity)"
#: The offline fallback's features (:mod:`feddiff.diffusion.fid_classifier`): never
#: to be read as Inception FID.
KIND_CLASSIFIER = "classifier-feature FD (not Inception FID)"
