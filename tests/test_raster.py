"""relreps._raster must write exactly the bytes pygame.gfxdraw writes.

Every test draws the same polygons with ``gfxdraw.aapolygon`` +
``gfxdraw.filled_polygon`` on one surface and with
``relreps._raster.draw_polygons`` on a twin surface over the same random
background, then compares the surfaces byte for byte.
"""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")
pygame = pytest.importorskip("pygame")
import pygame.gfxdraw as gfx  # noqa: E402

from relreps import _raster  # noqa: E402

W, H = 1000, 800


def _rot(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def _rect(rng, w, h, center):
    sq = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2.0
    return center + sq @ _rot(rng.uniform(0, 2 * np.pi)).T


def _shape(rng, kind):
    """One quadrilateral of the kinds CarRacing produces (and nastier ones)."""
    if kind == 0:  # random quad, often self-intersecting, partly off-screen
        return rng.uniform(-300, 1300, (4, 2))
    if kind == 1:  # grass squares (~270 px) anywhere around the screen
        return _rect(rng, 270, 270, rng.uniform(-250, 1250, 2))
    if kind == 2:  # road tiles (~57 x 216 px), sometimes scaled
        s = rng.uniform(0.3, 2.0)
        return _rect(rng, 57 * s, 216 * s, rng.uniform(-150, 1150, 2))
    if kind == 3:  # tiny
        return rng.uniform(-5, 1005, 2) + rng.uniform(-3, 3, (4, 2))
    if kind == 4:  # vertices exactly on integers, negative coordinates
        return np.round(rng.uniform(-150, 1150, (4, 2)))
    if kind == 5:  # degenerate: collinear / repeated points
        p, d = rng.uniform(-200, 1200, 2), rng.uniform(-300, 300, 2)
        pts = p + np.outer(rng.uniform(-1, 2, 4), d)
        if rng.random() < 0.3:
            pts[rng.integers(4)] = pts[rng.integers(4)]
        return pts
    if kind == 6:  # integer corners hugging the surface borders
        base = rng.choice([-1, 0, 1, 499, 798, 799, 800, 998, 999, 1000],
                          (4, 2))
        return base + rng.integers(-20, 21, (4, 2)) * rng.integers(0, 2)
    if kind == 7:  # wholly off-screen
        side = rng.integers(4)
        c = [np.array([-400.0, 400]), np.array([1400.0, 400]),
             np.array([500.0, -400]), np.array([500.0, 1200])][side]
        return _rect(rng, 300, 100, c + rng.uniform(-200, 200, 2))
    if kind == 8:  # huge (zoomed-in tiles): covers the screen or crosses it
        return _rect(rng, rng.uniform(500, 6000), rng.uniform(500, 6000),
                     rng.uniform(-2000, 3000, 2))
    if kind == 9:  # far-away vertices within the +-6000 px range
        return rng.uniform(-6000, 6000, (4, 2))
    raise ValueError(kind)


def _background(rng, padding):
    bg = rng.integers(0, 2**24, (W, H), dtype=np.uint32)
    if padding:  # garbage in the unused byte of XRGB8888: blending clears it
        bg |= rng.integers(0, 256, (W, H), dtype=np.uint32) << 24
    return bg


def _pygame_draw(surf, polys, colors):
    for p, c in zip(polys, colors):
        pts = [(float(x), float(y)) for x, y in p]
        col = tuple(int(v) for v in c)
        gfx.aapolygon(surf, pts, col)
        gfx.filled_polygon(surf, pts, col)


@pytest.fixture(scope="module")
def twins():
    s1, s2 = pygame.Surface((W, H)), pygame.Surface((W, H))
    assert s1.get_bitsize() == 32
    a1, a2 = pygame.surfarray.pixels2d(s1), pygame.surfarray.pixels2d(s2)
    yield s1, a1, s2, a2
    del a1, a2


def _check_batches(twins, rng, kinds, n_batches, per_batch):
    s1, a1, _s2, a2 = twins
    bgs = [_background(rng, False), _background(rng, True)]
    masks, shifts, clip = _raster.surface_format(s1)
    for b in range(n_batches):
        polys = np.array([_shape(rng, kinds[(b * per_batch + i) % len(kinds)])
                          for i in range(per_batch)])
        colors = rng.integers(0, 256, (per_batch, 3))
        a1[:] = bgs[b % 2]
        a2[:] = bgs[b % 2]
        _pygame_draw(s1, polys, colors)
        _raster.draw_polygons(a2, polys, colors, masks, shifts, clip)
        if not np.array_equal(a1, a2):
            bad = np.argwhere(a1 != a2)
            pytest.fail(f"batch {b}: {len(bad)} pixels differ, first at "
                        f"{bad[0].tolist()}; polys={polys.tolist()}, "
                        f"colors={colors.tolist()}")
    return n_batches * per_batch


def test_single_polygons_match_pygame(twins):
    # one polygon per comparison, so nothing hides an earlier mismatch
    rng = np.random.default_rng(1)
    n = _check_batches(twins, rng, list(range(10)), 600, 1)
    assert n == 600


def test_polygon_batches_match_pygame(twins):
    # overlapping polygons drawn in order (no huge ones, which would cover
    # everything drawn before them)
    rng = np.random.default_rng(2)
    kinds = [0, 1, 2, 2, 3, 4, 5, 6, 7, 2, 1, 9]
    n = _check_batches(twins, rng, kinds, 500, 6)
    assert n == 3000


def test_frame_like_batch_matches_pygame(twins):
    # a CarRacing-like frame: grass squares then road tiles, one call
    rng = np.random.default_rng(3)
    s1, a1, _s2, a2 = twins
    for _ in range(20):
        polys = np.array([_shape(rng, 1) for _ in range(12)]
                         + [_shape(rng, 2) for _ in range(13)])
        colors = rng.integers(0, 256, (25, 3))
        bg = _background(rng, False)
        a1[:] = bg
        a2[:] = bg
        _pygame_draw(s1, polys, colors)
        _raster.draw_polygons(a2, polys, colors)
        assert np.array_equal(a1, a2)


def test_coordinates_up_to_16000_match_pygame(twins):
    # beyond CarRacing's range; exercises the float32 line clipping and the
    # 16.16 fixed-point fill far away from the surface
    rng = np.random.default_rng(4)
    s1, a1, _s2, a2 = twins
    bg = _background(rng, True)
    for _ in range(200):
        poly = rng.uniform(-16000, 16000, (1, 4, 2))
        colors = rng.integers(0, 256, (1, 3))
        a1[:] = bg
        a2[:] = bg
        _pygame_draw(s1, poly, colors)
        _raster.draw_polygons(a2, poly, colors)
        assert np.array_equal(a1, a2), poly.tolist()


@pytest.mark.parametrize("fmt", ["srcalpha", "bgrx", "clip"])
def test_other_formats_and_clip_rect(fmt):
    rng = np.random.default_rng(5)

    def make():
        if fmt == "srcalpha":
            s = pygame.Surface((W, H), pygame.SRCALPHA)
        elif fmt == "bgrx":
            s = pygame.Surface((W, H), 0, 32, (0xFF, 0xFF00, 0xFF0000, 0))
        else:
            s = pygame.Surface((W, H))
            s.set_clip(pygame.Rect(100, 50, 700, 600))
        return s

    s1, s2 = make(), make()
    for _ in range(60):
        bg = rng.integers(0, 2**32, (W, H), dtype=np.uint32)
        for s in (s1, s2):
            a = pygame.surfarray.pixels2d(s)
            a[:] = bg
            del a
        polys = np.array([_shape(rng, k) for k in (0, 1, 2, 6)])
        colors = rng.integers(0, 256, (4, 3))
        _pygame_draw(s1, polys, colors)
        _raster.draw_polygons_on(s2, polys, colors)
        assert bytes(s1.get_buffer().raw) == bytes(s2.get_buffer().raw)


@pytest.mark.parametrize("k", [3, 5, 8])
def test_other_vertex_counts(twins, k):
    # self-intersecting polygons give many intersections per row (the
    # qsort-emulating merge sort path)
    rng = np.random.default_rng(6 + k)
    s1, a1, _s2, a2 = twins
    bg = _background(rng, False)
    for _ in range(40):
        polys = rng.uniform(-200, 1200, (3, k, 2))
        colors = rng.integers(0, 256, (3, 3))
        a1[:] = bg
        a2[:] = bg
        _pygame_draw(s1, polys, colors)
        _raster.draw_polygons(a2, polys, colors)
        assert np.array_equal(a1, a2)


def _bands(rng):
    """Random row bands covering the frame (and one past its bottom edge)."""
    cuts = np.unique(np.concatenate([[0, H + 7], rng.integers(1, H, rng.integers(1, 12))]))
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))


@pytest.mark.parametrize("clip", [None, (100, 50, 700, 600)])
def test_bands_in_place_and_in_a_buffer_match_pygame(twins, clip):
    # drawing row band after row band (in the frame, or in one reused buffer
    # that holds just the band) gives gfxdraw's frame: outlines clipped by the
    # frame's clip rect, not by the band
    rng = np.random.default_rng(11 if clip is None else 12)
    s1, a1, _s2, a2 = twins
    kinds = [0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9]
    s1.set_clip(clip)
    masks, shifts, frame_clip = _raster.surface_format(s1)
    buffer = np.zeros((W, 64), np.uint32, order="F")
    try:
        for b in range(150):
            polys = np.array([_shape(rng, kinds[(b + i) % len(kinds)]) for i in range(5)])
            colors = rng.integers(0, 256, (5, 3))
            bg = _background(rng, b % 2 == 1)
            a1[:] = bg
            a2[:] = bg
            _pygame_draw(s1, polys, colors)
            for r0, r1 in _bands(rng):
                if b % 2 == 0 or r1 - r0 > buffer.shape[1]:
                    _raster.draw_polygons(a2, polys, colors, masks, shifts, frame_clip, rows=(r0, r1))
                else:  # the band's rows copied into the buffer, drawn there, copied back
                    stop = min(r1, H)
                    buffer[:, : stop - r0] = a2[:, r0:stop]
                    _raster.draw_polygons(buffer, polys, colors, masks, shifts, frame_clip,
                                          rows=(r0, r1), band=True)
                    a2[:, r0:stop] = buffer[:, : stop - r0]
            if not np.array_equal(a1, a2):
                bad = np.argwhere(a1 != a2)
                pytest.fail(f"batch {b}: {len(bad)} pixels differ, first at {bad[0].tolist()}")
    finally:
        s1.set_clip(None)


def test_band_arguments_are_checked():
    pixels = np.zeros((W, 10), np.uint32)
    poly, color = np.zeros((1, 4, 2)), [[1, 2, 3]]
    with pytest.raises(ValueError, match="clip"):
        _raster.draw_polygons(pixels, poly, color, rows=(0, 10), band=True)
    with pytest.raises(ValueError, match="does not fit"):
        _raster.draw_polygons(pixels, poly, color, rows=(0, 11), band=True, clip=(0, 0, W, H))
    # a clip rect wider than the pixels would write past them (the kernels do not check indices)
    narrow = np.zeros((500, 10), np.uint32)
    with pytest.raises(ValueError, match="not inside the 500x10 pixels"):
        _raster.draw_polygons(narrow, poly, color, rows=(0, 10), band=True, clip=(0, 0, W, H))
    with pytest.raises(ValueError, match="not inside"):
        _raster.draw_polygons(pixels, poly, color, clip=(0, 0, W, H))


def test_transform_visible_matches_the_numpy_path():
    # the compiled transform must give the very same float64 coordinates as the environment's
    # numpy path (the stock renderer's operations) and select the same polygons
    from relreps.envs import ColorCarRacing

    env = ColorCarRacing("green")
    rng = np.random.default_rng(13)
    shown = 0
    for _ in range(200):
        xy = rng.uniform(-400, 400, (300, 4, 2))
        xy[rng.random(300) < 0.01] = np.nan
        angle = rng.choice([rng.uniform(-10, 10), np.pi / 2, 0.0, -np.pi])
        c, s = np.cos(angle), np.sin(angle)
        zoom, trans = rng.uniform(0.5, 20), (rng.uniform(-1500, 2500), rng.uniform(-1500, 2300))
        env.rasterizer = "gfxdraw"  # numpy
        want_idx, want_xy = env._visible(xy, c, s, zoom, trans)
        env.rasterizer = "numba"  # relreps._raster.transform_visible
        idx, got_xy = env._visible(xy, c, s, zoom, trans)
        np.testing.assert_array_equal(idx, want_idx)
        assert np.array_equal(got_xy, want_xy)  # bit for bit
        shown += len(idx)
    assert shown > 5000  # (most of the 60,000 polygons miss the screen)
    with pytest.raises(ValueError, match="shape"):
        _raster.transform_visible(np.zeros((3, 3, 2)), 1.0, 0.0, 1.0, (0, 0), (0, 1, 0, 1), (0, 1, 0, 1))


def test_polygon_coords_truncate_like_pygame():
    p = np.array([[[-0.7, 1.9], [-1.5, 2.0], [40000.2, -40000.9]]])
    np.testing.assert_array_equal(
        _raster.polygon_coords(p),
        [[[0, 1], [-1, 2], [40000 - 65536, -40000 + 65536]]])


def test_input_validation():
    pixels = np.zeros((W, H), np.uint32)
    with pytest.raises(ValueError):
        _raster.draw_polygons(pixels, np.full((1, 4, 2), np.nan), [[1, 2, 3]])
    with pytest.raises(ValueError):
        _raster.draw_polygons(pixels, np.zeros((1, 2, 2)), [[1, 2, 3]])
    with pytest.raises(ValueError):
        _raster.draw_polygons(pixels, np.zeros((2, 4, 2)), [[1, 2, 3]])
    with pytest.raises(ValueError):
        _raster.draw_polygons(pixels.astype(np.int32), np.zeros((1, 4, 2)),
                              [[1, 2, 3]])
    _raster.draw_polygons(pixels, np.zeros((0, 4, 2)), np.zeros((0, 3)))
    assert not pixels.any()


def test_module_imports_without_numba():
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "from relreps import _raster\n"
        "assert _raster.AVAILABLE is False\n"
        "import numpy as np\n"
        "try:\n"
        "    _raster.draw_polygons(np.zeros((4, 4), np.uint32),\n"
        "                          np.zeros((1, 4, 2)), [[0, 0, 0]])\n"
        "except ImportError as e:\n"
        "    assert 'numba' in str(e)\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
