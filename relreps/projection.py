"""The relative projection (Moschella et al., 2023; Ricciardi et al., 2023, eq. 2-3).

    z_rel = E(x) E(A)^T,  with the embeddings rescaled to unit norm (cosine similarities).

Before the cosine, both ``x`` and the anchor embeddings may be centred on the anchor embeddings'
mean (``standardize="center"``, :data:`DEFAULT_STANDARDIZE`: the recipe the relative agents train
with), standardised with their per-dimension mean and standard deviation (``True``, the authors'
later code) or left as they are (``False``, the paper's equation). This is the only logic here: no
networks, no state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "DEFAULT_STANDARDIZE",
    "STANDARDIZE",
    "check_options",
    "prepare_anchors",
    "project",
    "relative_projection",
]


#: The projection's ``standardize`` choices: per-dimension mean and std (the authors' code), the
#: mean only, or neither.
STANDARDIZE = (True, "center", False)
#: The default everywhere (the projection, the relative encoder, ``TrainConfig``): centring, which
#: keeps the representation invariant to rotations and scalings of the latent (the book's lab notes,
#: "Short runs after the fix").
DEFAULT_STANDARDIZE: bool | str = "center"


def check_options(standardize: bool | str = DEFAULT_STANDARDIZE, std_floor: float | None = None) -> None:
    """Refuse a ``standardize`` that is not one of :data:`STANDARDIZE`, a ``std_floor`` outside
    ``[0, 1)`` (``None``: no floor), and a floor without the per-dimension standardisation."""
    if not any(standardize is choice or (isinstance(choice, str) and standardize == choice) for choice in STANDARDIZE):
        raise ValueError(f"unknown standardize {standardize!r}: expected True (per-dimension mean and std), "
                         f"'center' (the mean only) or False")
    if std_floor is not None and not 0.0 <= std_floor < 1.0:
        raise ValueError(f"std_floor must be in [0, 1) or None, got {std_floor}")
    if std_floor is not None and standardize is not True:
        raise ValueError(f"std_floor applies to the per-dimension standardisation only (standardize=True), "
                         f"got standardize={standardize!r}")


def prepare_anchors(
    anchors: torch.Tensor, *, standardize: bool | str = DEFAULT_STANDARDIZE, eps: float = 1e-8, std_floor: float | None = None
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """The anchors' part of :func:`relative_projection`: ``(mean, std, unit anchors)``.

    Computed once per set of anchor embeddings (an encoder caches it between anchor updates);
    ``mean`` and ``std`` are ``None`` without standardisation (``std`` also with ``"center"``).
    """
    if anchors.ndim != 2:
        raise ValueError(f"expected 2-D anchors (n_anchors, dim); got {tuple(anchors.shape)}")
    check_options(standardize, std_floor)
    mean = std = None
    if standardize:  # True or "center"
        mean = anchors.mean(dim=0, keepdim=True)
        if standardize is True:
            std = anchors.std(dim=0, keepdim=True)
            if std_floor:
                std = torch.clamp(std, min=std_floor * std.max())
            std = std + eps
            anchors = (anchors - mean) / std
        else:
            anchors = anchors - mean
    return mean, std, F.normalize(anchors, p=2, dim=-1, eps=eps)


def project(x: torch.Tensor, prepared: tuple, *, eps: float = 1e-8) -> torch.Tensor:
    """:func:`relative_projection` with the anchors' part already computed by :func:`prepare_anchors`."""
    mean, std, unit_anchors = prepared
    if x.ndim != 2:
        raise ValueError(f"expected 2-D embeddings (batch, dim); got {tuple(x.shape)}")
    if x.shape[1] != unit_anchors.shape[1]:
        raise ValueError(
            f"embedding sizes differ: x has dim {x.shape[1]}, anchors have dim {unit_anchors.shape[1]}"
        )
    if mean is not None:
        x = x - mean
    if std is not None:
        x = x / std
    return F.normalize(x, p=2, dim=-1, eps=eps) @ unit_anchors.T


def relative_projection(
    x: torch.Tensor,
    *,
    anchors: torch.Tensor,
    standardize: bool | str = DEFAULT_STANDARDIZE,
    eps: float = 1e-8,
    std_floor: float | None = None,
) -> torch.Tensor:
    """Cosine similarities of each row of ``x`` to each anchor embedding.

    Args:
        x: embeddings, shape ``(batch, dim)``.
        anchors: anchor embeddings, shape ``(n_anchors, dim)`` (keyword-only, so the two cannot be
            swapped by accident).
        standardize: ``True``: first subtract the anchors' per-dimension mean from both and divide
            by their per-dimension standard deviation (``+ eps``), as the authors' code does;
            ``"center"`` (the default, :data:`DEFAULT_STANDARDIZE`): subtract the mean only;
            ``False``: neither (the paper's equation).
        eps: guards the division by the standard deviation and by the norms.
        std_floor: with standardisation, raise each dimension's standard deviation to at least
            this fraction of the largest one (``None``, the default: no floor).
            A unit that is dead (ReLU) for every anchor keeps only a tiny residue in moving-average
            anchor embeddings; without a floor, dividing by its tiny spread makes it as large as a
            live unit (the book's lab notes, "The fixed anchor update ...").

    Returns:
        ``(batch, n_anchors)`` similarities in ``[-1, 1]``.

    Invariances: without standardisation the result is unchanged when the same orthogonal map or
    the same positive scaling is applied to ``x`` and ``anchors``; with ``"center"``, also by the
    same shift (the mean goes with the map); with per-dimension standardisation, it is unchanged
    by per-dimension shifts and positive per-dimension scalings, but not by general rotations.
    """
    if x.ndim != 2 or anchors.ndim != 2:
        raise ValueError(
            f"expected 2-D tensors (batch, dim) and (n_anchors, dim); got {tuple(x.shape)} and "
            f"{tuple(anchors.shape)}"
        )
    return project(x, prepare_anchors(anchors, standardize=standardize, eps=eps, std_floor=std_floor), eps=eps)
