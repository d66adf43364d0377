"""Per-layer PCA of hypercolumns, fitted once from streamed second moments.

A block output ``(C, h, w)`` is ``h * w`` hypercolumns of ``C`` channels. The fit
accumulates, in float64, the sum and the Gram matrix of every hypercolumn the fit
images produce (under every condition), so memory does not grow with the data and a
fit can be saved and resumed. The components are the leading eigenvectors of the
covariance, signed so the largest-magnitude entry of each is positive (the basis is
then a function of the data alone). :func:`reduce_maps` projects centred
hypercolumns onto the components and pools them over space.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MomentAccumulator:
    """Running count, sum and Gram matrix of hypercolumns of one layer (float64)."""

    count: float
    total: torch.Tensor
    gram: torch.Tensor

    @classmethod
    def empty(cls, channels: int, device: torch.device | str = "cpu") -> MomentAccumulator:
        z = torch.zeros(channels, dtype=torch.float64, device=device)
        return cls(0.0, z, torch.zeros(channels, channels, dtype=torch.float64, device=device))

    def to(self, device: torch.device | str) -> MomentAccumulator:
        return MomentAccumulator(self.count, self.total.to(device), self.gram.to(device))

    def update(self, maps: torch.Tensor) -> None:
        """Add the hypercolumns of ``maps`` (..., C, h, w)."""
        cols = hypercolumns(maps).reshape(-1, maps.shape[-3]).to(self.gram.device, torch.float64)
        self.count += cols.shape[0]
        self.total += cols.sum(0)
        self.gram += cols.T @ cols


@dataclass
class LayerPCA:
    """``components`` (d, C), ``mean`` (C,), and the variance each component explains."""

    components: torch.Tensor
    mean: torch.Tensor
    explained_variance: torch.Tensor
    explained_variance_ratio: torch.Tensor
    num_samples: float


def fit_pca(acc: MomentAccumulator, dim: int, where: str = "features.dims") -> LayerPCA:
    """The ``dim`` leading principal components of the accumulated hypercolumns."""
    channels = acc.total.numel()
    if dim > channels:
        raise ValueError(
            f"{where}: {dim} components requested but the block has only {channels} channels"
        )
    if acc.count < 2 or dim > acc.count:
        raise ValueError(
            f"{where}: {dim} components need more than {acc.count:.0f} fitted hypercolumns"
        )
    mean = (acc.total / acc.count).cpu()
    cov = (acc.gram.cpu() - acc.count * torch.outer(mean, mean)) / (acc.count - 1)
    cov = 0.5 * (cov + cov.T)
    values, vectors = torch.linalg.eigh(cov)  # ascending
    order = torch.argsort(values, descending=True)[:dim]
    values = values[order].clamp_min(0)
    comps = vectors[:, order].T.contiguous()
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    comps = comps * torch.where(signs == 0, torch.ones_like(signs), signs)
    total = torch.diagonal(cov).clamp_min(0).sum()
    ratio = values / total if total > 0 else torch.zeros_like(values)
    return LayerPCA(comps.float(), mean.float(), values.float(), ratio.float(), acc.count)


def hypercolumns(maps: torch.Tensor) -> torch.Tensor:
    """(..., C, h, w) -> (..., h*w, C)."""
    return maps.flatten(-2).transpose(-1, -2)


def reduce_maps(maps: torch.Tensor, pca: LayerPCA, pooling: str) -> torch.Tensor:
    """(..., C, h, w) -> (..., d): PCA of each hypercolumn, then pooled over positions.

    ``mean`` is global average pooling: signed coordinates, centred on the fit's mean,
    so about half are negative. ``norm`` is the reference code's pooling (FedDifRC's
    ``get_noise_fea``: each component's L2 norm over the ``h*w`` positions): a
    non-negative vector, the energy of each component. Why it matters: FedDifRC
    contrasts the classifier's penultimate features with these vectors directly, with no
    projection head when the widths match (ResNet-10's 512 = 256 + 128 + 128), and those
    features are post-ReLU averages, hence >= 0. A non-negative ``z`` can reach at best
    ``cos(z, t) = |t_+| / |t|`` against a target ``t`` (``t_+`` its positive part), so
    against signed mean-pooled targets TDCL's positives and NDCR's targets are partly out
    of reach (and ``cos = 0`` when a target has no positive entry), while norm-pooled
    targets are all reachable. The paper configs use ``norm`` for this reason (and
    because the reference does); ``mean`` remains for backbones and models where a head
    maps the features (``projection: linear``), which can produce signed outputs.
    """
    cols = hypercolumns(maps.float())
    comps = pca.components.to(cols.device)
    proj = (cols - pca.mean.to(cols.device)) @ comps.T  # (..., h*w, d)
    if pooling == "mean":
        return proj.mean(-2)
    if pooling == "norm":
        return proj.norm(dim=-2)
    raise ValueError(f"features.pooling must be 'mean' or 'norm', got {pooling!r}")
