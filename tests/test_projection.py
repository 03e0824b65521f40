"""The relative projection: what it is invariant to, and what not (float64)."""

from __future__ import annotations

import pytest
import torch

from relreps.projection import relative_projection


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 16, generator=g, dtype=torch.float64)
    a = torch.randn(10, 16, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
    return x, a, q, g


def test_is_cosine_similarity(data):
    x, a, _, _ = data
    z = relative_projection(x, anchors=a, standardize=False)
    ref = torch.nn.functional.cosine_similarity(x[:, None, :], a[None, :, :], dim=-1)
    assert z.shape == (32, 10)
    torch.testing.assert_close(z, ref)
    assert z.abs().max() <= 1 + 1e-12


def test_anchor_to_itself_is_one(data):
    _, a, _, _ = data
    for standardize in (False, True):
        z = relative_projection(a, anchors=a, standardize=standardize)
        torch.testing.assert_close(z.diagonal(), torch.ones(10, dtype=torch.float64))


def test_invariant_to_orthogonal_maps_and_scaling(data):
    x, a, q, _ = data
    z = relative_projection(x, anchors=a, standardize=False)
    torch.testing.assert_close(relative_projection(x @ q, anchors=a @ q, standardize=False), z)
    torch.testing.assert_close(relative_projection(3.7 * x, anchors=3.7 * a, standardize=False), z)


def test_standardised_invariant_to_shift_and_per_dim_scale(data):
    x, a, _, g = data
    z = relative_projection(x, anchors=a, standardize=True)
    shift = torch.randn(16, generator=g, dtype=torch.float64) * 5
    scale = torch.rand(16, generator=g, dtype=torch.float64) * 4 + 0.1
    torch.testing.assert_close(relative_projection(x * scale + shift, anchors=a * scale + shift, standardize=True), z)


def test_not_invariant_to_what_it_should_not_be(data):
    x, a, q, g = data
    z = relative_projection(x, anchors=a, standardize=False)
    # a map applied to x only, a non-orthogonal map, a translation (without standardisation)
    assert not torch.allclose(relative_projection(x @ q, anchors=a, standardize=False), z)
    m = torch.randn(16, 16, generator=g, dtype=torch.float64)
    assert not torch.allclose(relative_projection(x @ m, anchors=a @ m, standardize=False), z)
    assert not torch.allclose(relative_projection(x + 2.0, anchors=a + 2.0, standardize=False), z)
    # standardisation is per dimension: a general rotation changes the result
    assert not torch.allclose(relative_projection(x @ q, anchors=a @ q, standardize=True),
                              relative_projection(x, anchors=a, standardize=True))


def test_gradients_flow_to_x_only_if_anchors_detached(data):
    x, a, _, _ = data
    x = x.clone().requires_grad_(True)
    relative_projection(x, anchors=a).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_bad_shapes():
    with pytest.raises(ValueError, match="embedding sizes differ"):
        relative_projection(torch.zeros(2, 3), anchors=torch.zeros(4, 5))
    with pytest.raises(ValueError, match="2-D"):
        relative_projection(torch.zeros(2, 3, 1), anchors=torch.zeros(4, 3))
    with pytest.raises(TypeError):
        relative_projection(torch.zeros(2, 3), torch.zeros(4, 3))  # anchors is keyword-only


def test_std_floor_drops_a_nearly_dead_unit():
    # a unit dead for every input, whose moving-average anchor embedding kept a 1e-8 residue
    g = torch.Generator().manual_seed(0)
    anchors, x = torch.randn(20, 6, generator=g), torch.randn(5, 6, generator=g)
    anchors[:, 0] = 1e-8 * torch.rand(20, generator=g)
    x[:, 0] = 0.0
    live = relative_projection(x[:, 1:], anchors=anchors[:, 1:], standardize=True)
    plain = relative_projection(x, anchors=anchors, standardize=True)
    floored = relative_projection(x, anchors=anchors, standardize=True, std_floor=1e-3)
    assert (plain - live).abs().max() > 0.05  # without a floor, the residue weighs like a live unit
    torch.testing.assert_close(floored, live, atol=1e-4, rtol=0)
    # a floor no spread falls below changes nothing
    torch.testing.assert_close(relative_projection(x[:, 1:], anchors=anchors[:, 1:], standardize=True, std_floor=1e-6),
                               live)
    with pytest.raises(ValueError, match="std_floor"):
        relative_projection(x, anchors=anchors, standardize=True, std_floor=1.5)


def test_center_is_rotation_scale_and_shift_invariant_and_ignores_dead_units():
    g = torch.Generator().manual_seed(1)
    anchors, x = torch.randn(20, 6, generator=g), torch.randn(5, 6, generator=g)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g))
    shift = torch.randn(1, 6, generator=g)
    centred = relative_projection(x, anchors=anchors, standardize="center")
    moved = relative_projection(3.0 * x @ q + shift, anchors=3.0 * anchors @ q + shift, standardize="center")
    torch.testing.assert_close(centred, moved, atol=1e-5, rtol=0)
    # per-dimension standardisation is not rotation invariant (test above); centring differs from it
    assert not torch.allclose(centred, relative_projection(x, anchors=anchors, standardize=True))
    # and centring is the default
    torch.testing.assert_close(relative_projection(x, anchors=anchors), centred)
    # a dead unit's residue changes nothing: no division by its spread
    anchors[:, 0] = 1e-8 * torch.rand(20, generator=g)
    x[:, 0] = 0.0
    torch.testing.assert_close(relative_projection(x, anchors=anchors, standardize="center"),
                               relative_projection(x[:, 1:], anchors=anchors[:, 1:], standardize="center"))


def test_bad_standardize_choices():
    x, a = torch.randn(2, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="unknown standardize 'centre'.*'center'"):
        relative_projection(x, anchors=a, standardize="centre")
    with pytest.raises(ValueError, match="std_floor applies to the per-dimension"):
        relative_projection(x, anchors=a, standardize="center", std_floor=1e-3)
    with pytest.raises(ValueError, match="std_floor applies to the per-dimension"):
        relative_projection(x, anchors=a, standardize=False, std_floor=0.0)
