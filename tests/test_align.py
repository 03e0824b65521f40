"""relreps.align: the zero-shot alignment maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from relreps import align, stitching


def _pair(n=200, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))  # a rotation (or reflection)
    return x, rng, q


def test_each_kind_recovers_the_map_it_is_built_for():
    x, rng, q = _pair()
    shift = rng.normal(size=8)
    assert np.allclose(align.fit(x, x + shift, "mean-shift")(x), x + shift)
    y = 2.5 * x @ q + shift  # a scaled rotation and a shift
    m = align.fit(x, y, "orthogonal")
    assert np.allclose(m.matrix, 2.5 * q) and np.allclose(m(x), y)
    w = rng.normal(size=(8, 5))  # a general affine map, to another size
    y = x @ w + rng.normal(size=5)
    assert np.allclose(align.fit(x, y, "least-squares")(x), y)
    m = align.fit(x, y, "affine")  # the ridge shrinks it a little, no more
    assert np.abs(m(x) - y).max() < 0.05 and not np.allclose(m(x), y, atol=1e-9)
    assert np.abs(align.fit(x, y, "affine", ridge=1e-9)(x) - y).max() < 1e-6


def test_the_affine_fit_is_the_ridge_solution():
    x, rng, _ = _pair(n=50, d=6)
    y = rng.normal(size=(50, 3))
    xc, yc = x - x.mean(0), y - y.mean(0)
    lam = align.RIDGE * np.trace(xc.T @ xc) / 6
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(6), xc.T @ yc)
    m = align.fit(x, y)
    assert m.kind == "affine" and np.allclose(m.matrix, w) and np.allclose(m.shift, y.mean(0) - x.mean(0) @ w)
    # stitching's float32 tensors are the same map
    matrix, shift = stitching.fit_affine(x, y)
    assert matrix.dtype == torch.float32 and np.allclose(matrix.numpy(), w, atol=1e-6)
    assert np.allclose(shift.numpy(), m.shift, atol=1e-6)


def test_a_map_applies_to_tensors_on_their_device_and_dtype():
    x, _, q = _pair()
    m = align.fit(x, x @ q + 1.0, "orthogonal")
    z = torch.as_tensor(x[:4], dtype=torch.float32)
    out = m(z)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert np.allclose(out.numpy(), m(x[:4]), atol=1e-5)
    matrix, shift = align.fit(x, x + 1.0, "mean-shift").tensors()
    assert matrix is None and torch.allclose(shift, torch.ones(8))


@pytest.mark.parametrize("kind, x, y, match", [
    ("rotate", np.ones((5, 2)), np.ones((5, 2)), "unknown alignment 'rotate'"),
    ("affine", np.ones((5, 2)), np.ones((4, 2)), "same n states"),
    ("affine", np.ones(5), np.ones(5), "same n states"),
    ("mean-shift", np.ones((5, 2)), np.ones((5, 3)), "one size"),
    ("affine", np.random.default_rng(0).normal(size=(3, 4)), np.ones((3, 2)), "too few"),
    ("affine", np.ones((9, 2)), np.ones((9, 2)), "same for every state"),
    ("orthogonal", np.ones((9, 2)), np.ones((9, 2)), "same for every state"),
])
def test_bad_fits_are_refused_with_the_reason(kind, x, y, match):
    with pytest.raises(ValueError, match=match):
        align.fit(x, y, kind)


def test_a_ridge_must_be_positive():
    x = _pair()[0]
    with pytest.raises(ValueError, match="ridge must be > 0"):
        align.fit(x, x, "affine", ridge=0.0)
