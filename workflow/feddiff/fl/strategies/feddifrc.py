"""FedDifRC: diffusion representation collaboration (Wang et al., ICCV 2025).

Each client adds two terms, built from diffusion representations cached offline by
the ``extract-features`` stage (:mod:`feddiff.features`), to its local loss::

    loss = CE(logits, y) + lambda_tdcl * TDCL + lambda_ndcr * NDCR

* TDCL (text-driven diffusion contrastive learning): the sample embedding ``z_i`` is
  pulled towards the conditional representation of its own class, ``r_i^{y_i}`` (the
  image run through the diffusion model under "a photo of a <class y_i>"), and pushed
  from the same image's representations under the other classes' prompts. The paper's
  loss, ``log(1 + sum_{c != y_i} exp(s(z_i, r_i^c)/tau) / exp(s(z_i, r_i^{y_i})/tau))``,
  is InfoNCE (cross-entropy over the K representations, positive ``y_i``); the forms
  differ in the similarity ``s`` and in what is contrasted (``tdcl``):

  - ``paper`` (default): the paper's "normalised cosine similarity" with normalisation
    factor U, "the mean distance between all sample embeddings and the current
    diffusion representation" (``../shared/papers/feddifrc-summary.txt``; the equation
    itself was not available). Our reading: ``s(z_i, r) = cos(z_i, r) / U(r)`` with
    ``U(r) = mean_b (1 - cos(z_b, r))`` -- the distance is the cosine distance (the one
    that matches the similarity being normalised, and scale-free: PCA coordinates and
    classifier features live on unrelated scales), "all sample embeddings" are the B
    embeddings of the current batch, "the current diffusion representation" is the
    representation ``r`` that ``s`` is evaluated against (each of the K of every sample,
    so each gets its own U), and U is detached: a normalising constant of the batch, like
    a temperature, not a quantity the model may lower (with gradient through U a sample's
    loss would move every other sample's embedding). U is floored at 1e-6. A
    representation every embedding of the batch is close to gets a larger logit scale.
    With B = 1 a sample's U is its own cosine distance.
  - ``cosine``: plain ``cos(z_i, r) / tau`` per sample (this pipeline's earlier form,
    kept for comparison): ``-log(exp(cos(z_i, r_i^{y_i})/tau) / sum_c exp(cos(z_i, r_i^c)/tau))``.
  - ``reference``: the reference code's batch-pooled InfoNCE (``calculate_infonce`` in
    ``main_FedDifRC.py``): one loss per batch,
    ``-log(sum_pos exp(cos/tau) / sum_all exp(cos/tau))``, over the B positive pairs
    ``(z_b, r_b^{y_b})`` and B(K-1) negative pairs formed as the reference forms them --
    the negatives stacked sample by sample (``r_0^{c != y_0}``, then ``r_1^{...}``, ...)
    and paired row by row with the batch of embeddings tiled K times (its ``repeat``), so
    negative row ``j`` meets ``z_{j mod B}``, usually not the sample it came from. The
    reference file's order of a sample's negatives is not published (its extraction
    script is not in the repository; its positive is stored last); ours are in ascending
    class order. The result is not divided by B (one InfoNCE per batch, as there).

  tau = 0.04 (the reference's ``--infonce_t``) in all three.
* NDCR (noise-driven diffusion consistency regularisation): ``z_i`` is kept close to
  the image's denoised representation ``d_i`` (the denoising prompt, no class).
  ``ndcr: l2`` (default, the paper's L2 form) is ``||z_i/|z_i| - d_i/|d_i| ||^2``;
  ``ndcr: kl`` is the reference code's ``KL(softmax(d_i/|d_i|) || softmax(z_i/|z_i|))``
  (``KLDivLoss(batchmean)``). Both compare unit vectors: PCA coordinates of a diffusion
  model live on a scale unrelated to the classifier's features (and differ between
  backbones), so an unnormalised L2 would make ``lambda_ndcr`` mean something else for
  every backbone. (With 512 dimensions the softmaxes of unit vectors are nearly flat,
  so the KL term is small; that is the reference's behaviour.)

The sample embedding ``z_i``: the reference contrasts the classifier's penultimate
features directly (ResNet-10's 512-d average-pooled features against 512-d diffusion
vectors), with no projection head. ``projection: auto`` does the same whenever the
widths match and otherwise inserts one linear layer from the model's features to the
representation width (e.g. the 128-d CNN, or a subset of layers); ``linear`` always
uses one. The head is part of the model and averaged with it.

Differences from the reference code (github.com/hwang52/FedDifRC, main_FedDifRC.py):

* TDCL: the reference runs the batch-pooled InfoNCE (``tdcl: reference``) with plain
  cosine; the default follows the paper (``tdcl: paper``, per sample, normalised).
* NDCR: the reference runs the KL form (``ndcr: kl``); the default is the paper's L2.
* Pooling of the hypercolumns (``features.pooling``): the reference takes each PCA
  component's L2 norm over positions (``norm``); see :mod:`feddiff.features.pca` for
  why the paper configs use it.
* The representations come from one PCA basis fitted once on the training set (see
  :mod:`feddiff.features.extract`), not a PCA refitted on every batch.

Ablations: ``lambda_ndcr: 0`` is TDCL only, ``lambda_tdcl: 0`` NDCR only; ``layers``
("all", or block positions joined by "+", e.g. "0+2") keeps only those blocks' slices
of the concatenated vectors. Self-supervised (``self_supervised: true``, with features
extracted in ``mode: self_supervised``): the positive is the image under "a photo of a
similar object", the negatives the image under vocabulary-word prompts, the denoising
prompt "a photo of a visual object", and no CE shapes the encoder. The classifier is
then trained on detached features (an online linear probe: labels reach the linear
layer only), so the reported test accuracy measures the learnt representation.

The cached vectors of the training split are loaded once onto the training device and
looked up by dataset index (``ctx.batch_indices``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from feddiff.fl.strategies.feddifrc_params import TDCL_KINDS, FedDifRCParams
from feddiff.fl.strategy import LocalContext, Strategy, register

#: Floor of the paper form's normalisation factor U (a cosine distance, in [0, 2]).
U_FLOOR = 1e-6


def tdcl_cosine(
    z: torch.Tensor, reps: torch.Tensor, target: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Batch mean of InfoNCE: ``z`` (B, D) against its own ``reps`` (B, K, D), positive ``reps[b,
    target[b]]``."""
    sims = F.cosine_similarity(z.unsqueeze(1), reps, dim=-1) / temperature
    return F.cross_entropy(sims, target)


def tdcl_paper(
    z: torch.Tensor, reps: torch.Tensor, target: torch.Tensor, temperature: float
) -> torch.Tensor:
    """As :func:`tdcl_cosine` with ``cos(z_i, r) / U(r)``, ``U(r)`` the batch's mean cosine distance
    to ``r``."""
    zn, rn = F.normalize(z, dim=-1), F.normalize(reps, dim=-1)
    cos = torch.einsum("bd,bkd->bk", zn, rn)  # cos(z_b, r_b^k)
    cos_all = torch.einsum("ad,bkd->abk", zn.detach(), rn)  # cos(z_a, r_b^k) for every a
    u = (1.0 - cos_all).mean(0).clamp_min(U_FLOOR)  # (B, K), detached
    return F.cross_entropy(cos / (u * temperature), target)


def tdcl_reference(
    z: torch.Tensor, reps: torch.Tensor, target: torch.Tensor, temperature: float
) -> torch.Tensor:
    """The reference's single InfoNCE over the batch's positive and (mis)paired negative rows."""
    b, k, _ = reps.shape
    rows = torch.arange(b, device=reps.device)
    pos = reps[rows, target]  # (B, D)
    keep = torch.ones(b, k, dtype=torch.bool, device=reps.device)
    keep[rows, target] = False
    neg = reps[keep]  # (B*(K-1), D), sample-major
    protos = torch.cat([pos, neg], dim=0)
    logits = F.cosine_similarity(z.repeat(k, 1), protos, dim=1) / temperature
    return torch.logsumexp(logits, 0) - torch.logsumexp(logits[:b], 0)


#: The forms by name; the names are declared once, with the hyperparameter (``TDCL_KINDS``).
TDCL_FORMS = dict(zip(TDCL_KINDS, (tdcl_paper, tdcl_cosine, tdcl_reference), strict=True))


def tdcl_loss(
    z: torch.Tensor,
    reps: torch.Tensor,
    target: torch.Tensor,
    temperature: float,
    kind: str = "paper",
) -> torch.Tensor:
    """TDCL of the given form (see the module docstring)."""
    if kind not in TDCL_FORMS:
        raise ValueError(f"unknown TDCL kind {kind!r}")
    return TDCL_FORMS[kind](z, reps, target, temperature)


def ndcr_loss(z: torch.Tensor, denoised: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Batch mean of the NDCR term between unit vectors (see the module docstring)."""
    zn, dn = F.normalize(z, dim=1), F.normalize(denoised, dim=1)
    if kind == "l2":
        return (zn - dn).pow(2).sum(1).mean()
    if kind == "kl":
        return F.kl_div(F.log_softmax(zn, dim=1), F.softmax(dn, dim=1), reduction="batchmean")
    raise ValueError(f"unknown NDCR kind {kind!r}")


class FedDifRCModel(nn.Module):
    """The classifier plus an optional projection to the representation width.

    ``forward`` returns ``(z, logits)``: ``z`` the projected features the FedDifRC terms
    see, logits from the base classifier (on detached features when ``probe``).
    """

    def __init__(self, base: nn.Module, rep_dim: int, projection: str, probe: bool) -> None:
        super().__init__()
        self.base = base
        dim = int(base.feature_dim)
        identity = projection == "auto" and dim == rep_dim
        self.projection: nn.Module = nn.Identity() if identity else nn.Linear(dim, rep_dim)
        self.feature_dim = rep_dim
        self.probe = probe

    @property
    def classifier(self) -> nn.Module:  # the model contract; not registered twice
        return self.base.classifier

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, logits = self.base(x)
        if self.probe:
            logits = self.base.classifier(h.detach())
        return self.projection(h), logits


@register("feddifrc")
class FedDifRC(Strategy):
    """FedAvg aggregation with FedDifRC's TDCL and NDCR terms in the local objective."""

    params: FedDifRCParams

    def __init__(self, params: FedDifRCParams, num_clients: int, num_classes: int) -> None:
        super().__init__(params, num_clients, num_classes)
        self._cond: torch.Tensor | None = None
        self._den: torch.Tensor | None = None

    def bind_data(self, data: object, dataset_fingerprint: str | None = None) -> None:
        """Load the run's cached vectors onto its device and check they match its data."""
        y = data.y_train
        self._load(y.device, dataset_fingerprint, y)

    def _load(
        self, device: torch.device, fingerprint: str | None, labels: torch.Tensor | None
    ) -> None:
        from feddiff.features.store import load_features

        path = str(self.params.features)
        cache = load_features(path, "train", device="cpu", dataset_fingerprint=fingerprint)
        ss = cache.mode == "self_supervised"
        if ss != self.params.self_supervised:
            raise ValueError(
                f"method.self_supervised is {self.params.self_supervised} but {path} was extracted "
                f"in mode {cache.mode}; use features extracted with mode "
                f"{'self_supervised' if self.params.self_supervised else 'supervised'}"
            )
        if not ss and cache.conditional.shape[1] != self.num_classes:
            raise ValueError(
                f"{path} has {cache.conditional.shape[1]} class representations per image, "
                f"the dataset {self.num_classes} classes"
            )
        if labels is not None and (
            cache.labels.numel() != labels.numel() or not torch.equal(cache.labels, labels.cpu())
        ):
            raise ValueError(f"{path} does not belong to this run's training split (labels differ)")
        cols = cache.layer_columns(self.params.layer_indices())
        self._cond = cache.conditional[:, :, cols].contiguous().to(device)
        self._den = cache.denoised[:, cols].contiguous().to(device)

    def wrap_model(self, model: nn.Module) -> nn.Module:
        if isinstance(model, FedDifRCModel):
            return model
        if (
            self._den is None
        ):  # not bound to a run (direct engine use): load without the data checks
            self._load(next(model.parameters()).device, None, None)
        assert self._den is not None
        return FedDifRCModel(
            model, int(self._den.shape[1]), self.params.projection, self.params.self_supervised
        )

    def loss(
        self,
        ctx: LocalContext,
        x: torch.Tensor,
        y: torch.Tensor,
        features: torch.Tensor,
        logits: torch.Tensor,
    ) -> torch.Tensor:
        if ctx.batch_indices is None or self._cond is None or self._den is None:
            raise RuntimeError("FedDifRC needs the batch's dataset indices and loaded features")
        idx = ctx.batch_indices
        total = F.cross_entropy(
            logits, y
        )  # the probe's loss when self-supervised (detached features)
        p = self.params
        if p.lambda_tdcl > 0:
            target = torch.zeros_like(y) if p.self_supervised else y
            total = total + p.lambda_tdcl * tdcl_loss(
                features, self._cond[idx], target, p.temperature, p.tdcl
            )
        if p.lambda_ndcr > 0:
            total = total + p.lambda_ndcr * ndcr_loss(features, self._den[idx], p.ndcr)
        return total
