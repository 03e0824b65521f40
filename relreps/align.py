"""Zero-shot alignment maps between two encoders' outputs: ``z -> z W + b``.

Fitted on the outputs of two encoders for the **same states** (rows ``i`` of ``x`` and ``y``: e.g.
the frames of one anchor set, each encoder's in its own colour), a map carries the first encoder's
outputs into the second's space, so that the second agent's policy head can read them. No
training, no episodes, no reward: what a fit costs is the two embeddings and a small linear solve.

Kinds (:data:`KINDS`), simplest first:

- ``"mean-shift"``: ``W = I``, ``b = mean(y) - mean(x)`` (the two spaces differ by an offset);
- ``"orthogonal"``: centred orthogonal Procrustes with one scale: ``W = s U V^T`` from the SVD
  ``U S V^T`` of ``x_c^T y_c`` (each side scaled to unit Frobenius norm), ``s = |y_c| / |x_c|``,
  ``b = mean(y) - mean(x) W`` (a rotation, reflection and scaling: angles are kept);
- ``"affine"``: ridge-regularised least squares, what ``stitching.stitch(..., align="affine")``
  uses: ``W = (G + lam I)^-1 x_c^T y_c`` with ``G = x_c^T x_c`` and ``lam = ridge * trace(G) / d``
  (:data:`RIDGE` times the mean eigenvalue of ``G``);
- ``"least-squares"``: the minimum-norm least-squares affine map without a ridge (unstable on
  rank-deficient outputs such as relative representations: the book's lab notes, "An affine map
  fitted on the anchors"; kept for comparison).

Fits are computed in float64; :meth:`Map.tensors` gives the float32 tensors an encoder wrapper uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["KINDS", "RIDGE", "Map", "fit"]

#: The kinds of map :func:`fit` makes.
KINDS = ("mean-shift", "orthogonal", "affine", "least-squares")

#: The ridge penalty of ``kind="affine"``, as a fraction of the mean eigenvalue of the centred Gram
#: matrix ``x^T x``. Without one, the fit is unstable: a relative representation is rank-deficient,
#: and a change of 1e-6 in the encoder's outputs (one CPU thread or two) moved entries of the
#: minimum-norm least-squares map by 4e4 (the book's lab notes, "An affine map fitted on the anchors").
RIDGE = 1e-3


@dataclass(frozen=True)
class Map:
    """``z -> z @ matrix + shift`` (``matrix`` ``None``: the identity), float64 arrays."""

    kind: str
    matrix: np.ndarray | None  #: ``(d_x, d_y)``, or ``None`` for a mean shift
    shift: np.ndarray  #: ``(d_y,)``

    def __call__(self, z):
        """Map rows ``z`` ``(n, d_x)``: a float64 array for an array, a tensor (on ``z``'s device and
        in its dtype) for a tensor."""
        if isinstance(z, torch.Tensor):
            matrix, shift = self.tensors(z.device)
            out = z.float() if matrix is None else z.float() @ matrix
            return (out + shift).to(z.dtype)
        z = np.asarray(z, dtype=np.float64)
        return (z if self.matrix is None else z @ self.matrix) + self.shift

    def tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(matrix, shift)`` as float32 tensors (``matrix`` ``None`` for a mean shift)."""
        matrix = None if self.matrix is None else torch.as_tensor(self.matrix, dtype=torch.float32, device=device)
        return matrix, torch.as_tensor(self.shift, dtype=torch.float32, device=device)


def fit(x, y, kind: str = "affine", *, ridge: float = RIDGE) -> Map:
    """The ``kind`` map (:data:`KINDS`, module docstring) from rows ``x`` ``(n, d_x)`` to rows ``y``
    ``(n, d_y)`` of the same ``n`` states (arrays, or CPU tensors without gradient).

    Raises:
        ValueError: ``kind`` is unknown; ``x`` and ``y`` are not two 2-D sets of the same number of
            rows; a mean shift between outputs of different sizes; for ``"affine"``, no more rows than
            ``x`` has columns, a ``ridge`` that is not positive, or constant outputs ``x``;
            ``"orthogonal"`` on constant outputs.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown alignment {kind!r}: expected one of {KINDS}")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) < 1:
        raise ValueError(f"expected (n, d) outputs of the same n states; got {x.shape} and {y.shape}")
    mx, my = x.mean(0), y.mean(0)
    if kind == "mean-shift":
        if x.shape[1] != y.shape[1]:
            raise ValueError(f"a mean shift needs outputs of one size; got {x.shape[1]} and {y.shape[1]}")
        return Map(kind, None, my - mx)
    xc, yc = x - mx, y - my
    if kind == "affine":
        if len(x) <= x.shape[1]:
            raise ValueError(f"{len(x)} states are not more than the encoder's {x.shape[1]} outputs: too few to "
                             f"fit an affine map")
        if not ridge > 0:
            raise ValueError(f"ridge must be > 0 (the unregularised fit is unstable), got {ridge}")
        gram = xc.T @ xc
        if not np.trace(gram) > 0:
            raise ValueError("the encoder's outputs are the same for every state: no map can be fitted from them")
        lam = ridge * np.trace(gram) / len(gram)
        w = np.linalg.solve(gram + lam * np.eye(len(gram)), xc.T @ yc)
    elif kind == "orthogonal":
        sx, sy = np.linalg.norm(xc), np.linalg.norm(yc)
        if not (sx > 0 and sy > 0):
            raise ValueError("the outputs are the same for every state: no rotation can be fitted from them")
        u, _, vt = np.linalg.svd((xc / sx).T @ (yc / sy), full_matrices=False)
        w = u @ vt * (sy / sx)
    else:  # least-squares
        w = np.linalg.lstsq(xc, yc, rcond=None)[0]
    return Map(kind, w, my - mx @ w)
