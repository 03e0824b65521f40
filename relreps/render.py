"""The fast renderer of :class:`relreps.envs.ColorCarRacing`: the stock CarRacing frames, byte for byte.

How the fast renderer stays identical: the stock renderer rotates, scales and clip-tests about 760
polygons one by one in Python every frame, then draws the ~40 visible ones with ``pygame.gfxdraw``.
We keep all polygons of a track in one numpy array, transform and clip-test them at once with the
same floating-point operations in the same order (so the coordinates are bit-identical), and hand
exactly the same coordinates to the same ``gfxdraw`` calls (or to :mod:`relreps._raster`, their
byte-exact numba port). The HUD text is rendered once per distinct string instead of loading a font
every frame, and the drawing surfaces are reused. With numba, the visible rows are filled, drawn and
shrunk along x in bands of 100 rows (each of these steps treats a row on its own, so the bands give
the same pixels): in one small buffer that stays in the cache, except the bands the car may touch,
drawn in place; the book's lab notes ("The fast renderer") give every step and where the time goes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium.envs.box2d import car_racing as _cr

__all__ = ["FastRenderer"]


# The 400 grass patches of the stock renderer (static, world coordinates), in drawing order.
_GRASS = np.array(
    [
        [
            (_cr.GRASS_DIM * x + _cr.GRASS_DIM, _cr.GRASS_DIM * y + 0),
            (_cr.GRASS_DIM * x + 0, _cr.GRASS_DIM * y + 0),
            (_cr.GRASS_DIM * x + 0, _cr.GRASS_DIM * y + _cr.GRASS_DIM),
            (_cr.GRASS_DIM * x + _cr.GRASS_DIM, _cr.GRASS_DIM * y + _cr.GRASS_DIM),
        ]
        for x in range(-20, 20, 2)
        for y in range(-20, 20, 2)
    ],
    dtype=np.float64,
)
_B = _cr.PLAYFIELD
_FIELD = [(_B, _B), (_B, -_B), (-_B, -_B), (-_B, _B)]
_LO_X, _HI_X = -_cr.MAX_SHAPE_DIM, _cr.WINDOW_W + _cr.MAX_SHAPE_DIM
_LO_Y, _HI_Y = -_cr.MAX_SHAPE_DIM, _cr.WINDOW_H + _cr.MAX_SHAPE_DIM
# A polygon whose bounding box misses the screen by more than this many pixels draws nothing,
# anti-aliased edges included; the stock renderer still draws (and pygame clips) those within
# MAX_SHAPE_DIM (~380 px) of it.
_OFF = 2
# Screen corners with a margin: when all lie inside the background square, it covers every pixel.
_CORNER_LIST = [
    (-4.0, -4.0), (_cr.WINDOW_W + 4.0, -4.0), (_cr.WINDOW_W + 4.0, _cr.WINDOW_H + 4.0),
    (-4.0, _cr.WINDOW_H + 4.0),
]


# The fast path draws and shrinks the visible rows in bands of this many rows: a band (1000 x 100
# pixels, 400 KB) stays in the core's cache from the background fill to the x-shrink that reads it.
_BAND_ROWS = 100
# Screen bounds for the visibility tests: (x_min, x_max, y_min, y_max).
_KEEP = (_LO_X, _HI_X, _LO_Y, _HI_Y)
_FRAME_CLIP = np.array([0, 0, _cr.WINDOW_W, _cr.WINDOW_H], np.int64)


# The HUD: a black rectangle over rows 700-799 of the flipped frame, indicators and score on it.
_HUD_TOP = int(_cr.WINDOW_H - 5 * _cr.WINDOW_H / 40.0)  # 700
_HUD_MAX_VALUE = 3.9  # vertical indicators reach row H - h * (1 + value); 4 would touch row 700


# Rows 0-99 of the unflipped surface become rows 799-700 after the flip, which the HUD's black
# rectangle paints over whatever the path: nothing drawn there can reach the frame.
_HIDDEN = _cr.WINDOW_H - _HUD_TOP
_SHOW = (-_OFF, _cr.WINDOW_W - 1 + _OFF, _HIDDEN - _OFF, _cr.WINDOW_H - 1 + _OFF)


def _covers_screen(poly: list[tuple[float, float]]) -> bool:
    """Whether the convex quadrilateral ``poly`` contains the screen (plus a margin)."""
    sign = 0
    for i in range(4):
        x0, y0 = poly[i]
        x1, y1 = poly[(i + 1) % 4]
        for cx, cy in _CORNER_LIST:
            cross = (x1 - x0) * (cy - y0) - (y1 - y0) * (cx - x0)
            if cross == 0 or (sign and (cross > 0) != (sign > 0)):
                return False
            sign = 1 if cross > 0 else -1
    return True


def _numba_available() -> bool:
    from . import _raster

    return _raster.AVAILABLE


class FastRenderer:
    """The fast path of gymnasium's CarRacing ``_render("state_pixels")``, as a mixin of a
    ``CarRacing`` subclass (:class:`relreps.envs.ColorCarRacing`): the same frames, byte for byte.

    The class it is mixed into sets ``renderer`` (``"fast"`` takes this path), ``rasterizer``
    (``"numba"`` or ``"gfxdraw"``) and the colours ``bg_color`` and ``grass_color``, and calls
    :meth:`_init_fast_renderer` in its ``__init__``.
    """

    # CarRacing's state (set by its reset(), step() and render(); typed loosely there) and method
    car: Any
    surf: Any
    road_poly: list
    t: float
    reward: float
    _render_indicators: Any
    renderer: str
    rasterizer: str
    bg_color: np.ndarray
    grass_color: np.ndarray

    def _init_fast_renderer(self) -> None:
        self._fast_surf: Any = None  # pygame surfaces and font, made at the first fast frame
        self._small: Any = None
        self._font: Any = None
        self._road_xy = np.zeros((0, 4, 2))  # the cached polygons of the current track
        self._road_rgb: list = []
        self._text_cache: dict[str, Any] = {}
        self._poly_src: list | None = None  # the road_poly list the cached arrays came from
        self._car_radii: tuple | None = None  # (car, each drawn body's largest vertex radius)

    def _render(self, mode: str):
        if self.renderer != "fast" or mode != "state_pixels" or "t" not in self.__dict__:
            return super()._render(mode)  # type: ignore[misc]  # CarRacing's, next in the MRO
        return self._render_state_fast()

    def _track_polygons(self) -> tuple[np.ndarray, list]:
        """The 400 grass patches and all road polygons of the track as one (N, 4, 2) array, in
        drawing order (cached per track), and the road polygons' colour arrays. The colours are not copied: gymnasium changes a tile's colour in
        place when the car touches it, and the frame must show that."""
        # hold the list itself (not its id, which a later list may reuse) and compare identity
        if self._poly_src is not self.road_poly or self._road_xy.shape[0] != len(_GRASS) + len(self.road_poly):
            road = np.array([poly for poly, _ in self.road_poly], dtype=np.float64).reshape(-1, 4, 2)
            self._road_xy = np.concatenate([_GRASS, road])
            self._road_rgb = [color for _, color in self.road_poly]
            self._poly_src = self.road_poly
        return self._road_xy, self._road_rgb

    def _visible(self, xy: np.ndarray, c: float, s: float, zoom: float, trans) -> tuple[np.ndarray, np.ndarray]:
        """Transform (N, 4, 2) world polygons exactly as the stock renderer does; return the
        indices and screen coordinates (K, 4, 2) of those that draw something."""
        if xy.shape[0] == 0:
            return np.zeros(0, np.int64), np.zeros((0, 4, 2))
        if self.rasterizer == "numba":  # one compiled loop, the same operations
            from . import _raster

            return _raster.transform_visible(xy, c, s, zoom, trans, _KEEP, _SHOW)
        x, y = xy[..., 0], xy[..., 1]
        # Same operations, same order as Vector2.rotate_rad + `c[0] * zoom + translation[0]`.
        px = (c * x - s * y) * zoom + trans[0]
        py = (s * x + c * y) * zoom + trans[1]
        inside = (px >= _LO_X) & (px <= _HI_X) & (py >= _LO_Y) & (py <= _HI_Y)
        drawn = inside.any(axis=1)  # the stock renderer's test
        on_screen = (
            (px.max(axis=1) >= _SHOW[0])
            & (px.min(axis=1) <= _SHOW[1])
            & (py.max(axis=1) >= _SHOW[2])
            & (py.min(axis=1) <= _SHOW[3])
        )
        visible = np.flatnonzero(drawn & on_screen)
        return visible, np.stack([px[visible], py[visible]], axis=-1)

    def _scene_polygons(self, c: float, s: float, zoom: float, trans) -> tuple[np.ndarray, np.ndarray]:
        """The visible grass patches, then road tiles and kerbs, in the stock drawing order: screen
        coordinates (K, 4, 2) and RGB colours (K, 3)."""
        scene_xy, road_rgb = self._track_polygons()  # grass patches first, then the road
        idx, polys = self._visible(scene_xy, c, s, zoom, trans)
        n_grass = int(np.searchsorted(idx, len(_GRASS)))
        colors = np.empty((len(polys), 3), np.int64)
        colors[:n_grass] = self.grass_color
        # tile colours are read now: gymnasium changes them in place when the car touches a tile
        for k, i in enumerate(idx[n_grass:].tolist(), n_grass):
            colors[k] = road_rgb[i - len(_GRASS)]  # float RGB: truncated, as int() did
        return polys, colors

    def _draw_scene_polygons(self, surf, polys, colors) -> None:
        """Draw the polygons as the stock ``gfxdraw.aapolygon`` + ``filled_polygon`` calls do."""
        if self.rasterizer == "numba":
            import pygame

            from . import _raster

            pixels = pygame.surfarray.pixels2d(surf)
            try:
                _raster.draw_polygons(pixels, polys, colors)
            finally:
                del pixels  # unlock the surface
            return
        from pygame import gfxdraw

        for poly, color in zip(polys.tolist(), colors.tolist()):
            gfxdraw.aapolygon(surf, poly, color)
            gfxdraw.filled_polygon(surf, poly, color)

    @staticmethod
    def _fill_and_draw_rows(surf, background: int, polys, colors, rows, band: bool) -> None:
        """Fill rows ``rows`` of the frame with the background pixel value, then draw the polygons'
        pixels on those rows (numba rasterizer). ``band``: ``surf`` is a buffer holding just those
        rows. The fill uses ordinary stores: SDL's ``fill`` streams past the cache, and the
        polygons and the shrink that follow would then read the rows back from memory."""
        import pygame

        from . import _raster

        pixels = pygame.surfarray.pixels2d(surf)
        try:
            if band:
                pixels[:, : rows[1] - rows[0]] = background
            else:
                pixels[:, rows[0] : rows[1]] = background
            _raster.draw_polygons(pixels, polys, colors, rows=rows, band=band, clip=_FRAME_CLIP)
        finally:
            del pixels  # unlock the surface

    def _car_rows(self, c: float, s: float, zoom: float, trans) -> tuple[float, float]:
        """Rows of the (unflipped) surface that the car's polygons can touch, with a margin."""
        car = self.car
        radii = self._car_radii
        if radii is None or radii[0] is not car:  # a new car (reset)
            r = [max(math.hypot(*v) for f in body.fixtures for v in f.shape.vertices)
                 for body in car.drawlist]
            radii = self._car_radii = (car, r)
        lo, hi = math.inf, -math.inf
        for body, r in zip(car.drawlist, radii[1]):
            x, y = body.position
            py = (s * x + c * y) * zoom + trans[1]
            lo, hi = min(lo, py - r * zoom), max(hi, py + r * zoom)
        return lo - 3, hi + 3

    def _view(self) -> tuple[float, float, tuple[float, float], float, float]:
        """The stock renderer's view of this frame: angle, zoom, translation, and the cos/sin of
        the angle exactly as ``Vector2.rotate_rad`` computes them (incl. its special cases)."""
        import pygame

        assert self.car is not None
        W, H = _cr.WINDOW_W, _cr.WINDOW_H
        angle = -self.car.hull.angle
        zoom = 0.1 * _cr.SCALE * max(1 - self.t, 0) + _cr.ZOOM * _cr.SCALE * min(self.t, 1)
        scroll_x = -(self.car.hull.position[0]) * zoom
        scroll_y = -(self.car.hull.position[1]) * zoom
        shift = pygame.math.Vector2((scroll_x, scroll_y)).rotate_rad(angle)
        trans = (W / 2 + shift[0], H / 4 + shift[1])
        c, s = pygame.math.Vector2(1.0, 0.0).rotate_rad(angle)
        return angle, zoom, trans, c, s

    def _render_state_fast(self) -> np.ndarray:
        import pygame
        from pygame import gfxdraw

        W, H = _cr.WINDOW_W, _cr.WINDOW_H
        if self._fast_surf is None:
            pygame.font.init()
            self._fast_surf = pygame.Surface((W, H))
            self._small = pygame.Surface((_cr.STATE_W, _cr.STATE_H), 0, self._fast_surf)
            self._narrow = pygame.Surface((_cr.STATE_W, H), 0, self._fast_surf)
            self._narrow_hud = pygame.Surface((_cr.STATE_W, H - _HUD_TOP), 0, self._fast_surf)
            self._visible_rect = pygame.Rect(0, _HIDDEN, W, H - _HIDDEN)
            self._shown = self._fast_surf.subsurface(self._visible_rect)
            self._narrow_shown = self._narrow.subsurface((0, _HIDDEN, _cr.STATE_W, H - _HIDDEN))
            self._strip = self._fast_surf.subsurface((0, _HUD_TOP, W, H - _HUD_TOP))
            self._font = pygame.font.Font(pygame.font.get_default_font(), 42)
            self._bands = [(r, min(r + _BAND_ROWS, H)) for r in range(_HIDDEN, H, _BAND_ROWS)]
            band_buf = pygame.Surface((W, _BAND_ROWS), 0, self._fast_surf)
            # per band: (its rows of the frame, or of the buffer; its rows of the narrow surface)
            self._band_surfs, self._band_buffers = [], []
            for r0, r1 in self._bands:
                narrow = self._narrow.subsurface((0, r0, _cr.STATE_W, r1 - r0))
                self._band_surfs.append((self._fast_surf.subsurface((0, r0, W, r1 - r0)), narrow))
                self._band_buffers.append((band_buf.subsurface((0, 0, W, r1 - r0)), narrow))
        surf = self._fast_surf
        self.surf = surf

        angle, zoom, trans, c, s = self._view()

        # background (never clipped), grass, road: the stock order
        field = [(c * px - s * py, s * px + c * py) for px, py in _FIELD]
        field = [(fx * zoom + trans[0], fy * zoom + trans[1]) for fx, fy in field]
        polys, colors = self._scene_polygons(c, s, zoom, trans)
        bg = tuple(int(v) for v in self.bg_color)
        covers, in_strip = _covers_screen(field), self._hud_in_strip()
        if covers and in_strip and self.rasterizer == "numba":
            # the usual case: the same pixels, drawn and x-shrunk band by band
            self._draw_and_shrink_bands(surf, bg, polys, colors, angle, zoom, trans, c, s)
            frame = self._finish_split(surf, shrunk=True)
        else:
            if covers:  # the same pixels, one fill (ordinary stores: see _fill_and_draw_rows)
                pixels = pygame.surfarray.pixels2d(surf)
                pixels[:, _HIDDEN:] = surf.map_rgb(bg)
                del pixels  # unlock the surface
            else:  # near the playfield's edge or zooming in: exactly the stock drawing
                surf.fill((0, 0, 0))
                gfxdraw.aapolygon(surf, field, self.bg_color)
                gfxdraw.filled_polygon(surf, field, self.bg_color)
            self._draw_scene_polygons(surf, polys, colors)
            self.car.draw(surf, zoom, trans, angle, False)
            frame = self._finish_split(surf) if in_strip else self._finish_stock(surf)
        return np.array(pygame.surfarray.pixels3d(frame).transpose(1, 0, 2), order="C")

    def _draw_and_shrink_bands(self, surf, bg, polys, colors, angle, zoom, trans, c, s) -> None:
        """Fill, draw and x-shrink the visible rows band by band: the same pixels as doing each
        step over the whole surface (every step is exact per row).

        Bands the car cannot touch are drawn in one small buffer, reused for every band, so that
        fill, polygons and shrink all work in the cache. Bands the car may touch are drawn in
        place on the frame (gymnasium's ``Car.draw`` needs the frame's coordinates) and shrunk
        once the car is drawn.
        """
        import pygame

        car_lo, car_hi = self._car_rows(c, s, zoom, trans)
        background = surf.map_rgb(bg)
        pending = []  # bands drawn in place, waiting for the car
        for k, (r0, r1) in enumerate(self._bands):
            if r1 <= car_lo or r0 > car_hi:  # the car cannot touch these rows
                buf, narrow = self._band_buffers[k]
                self._fill_and_draw_rows(buf, background, polys, colors, (r0, r1), band=True)
                pygame.transform.smoothscale(buf, narrow.get_size(), narrow)
                continue
            self._fill_and_draw_rows(surf, background, polys, colors, (r0, r1), band=False)
            pending.append(self._band_surfs[k])
            if r1 > car_hi or k == len(self._bands) - 1:  # the car's last band
                self.car.draw(surf, zoom, trans, angle, False)
                for src, narrow in pending:
                    pygame.transform.smoothscale(src, narrow.get_size(), narrow)
                pending = []

    def _hud_in_strip(self) -> bool:
        """Whether every HUD element stays inside the black strip at the bottom (rows >= 700)."""
        car = self.car
        speed = np.sqrt(
            np.square(car.hull.linearVelocity[0]) + np.square(car.hull.linearVelocity[1])
        )
        # vertical indicators reach up to H - h * (1 + value): inside the strip while value <= 4
        values = [0.02 * speed] + [0.01 * w.omega for w in car.wheels]
        return max(values) <= _HUD_MAX_VALUE

    def _draw_hud(self) -> None:
        """The stock HUD on ``self.surf``: indicators, then the score text (cached per string)."""
        H = _cr.WINDOW_H
        self._render_indicators(_cr.WINDOW_W, H)
        label = f"{self.reward:04.0f}"
        cached = self._text_cache.get(label)
        if cached is None:
            if len(self._text_cache) > 512:
                self._text_cache.clear()
            text = self._font.render(label, True, (255, 255, 255), (0, 0, 0))
            rect = text.get_rect()
            rect.center = (60, H - H * 2.5 / 40.0)
            cached = self._text_cache[label] = (text, rect)
        self.surf.blit(*cached)

    def _finish_stock(self, surf):
        """Flip, HUD, downscale: the stock sequence (used when the HUD leaves its strip)."""
        import pygame

        self.surf = pygame.transform.flip(surf, False, True)
        self._draw_hud()
        pygame.transform.smoothscale(self.surf, (_cr.STATE_W, _cr.STATE_H), self._small)
        return self._small

    def _finish_split(self, surf, shrunk: bool = False):
        """The same pixels as :meth:`_finish_stock` without flipping the 1000x800 surface.

        ``smoothscale`` shrinks along x first (each row on its own), then along y. Shrinking rows
        commutes with flipping their order, so we shrink the unflipped road along x, flip the
        narrow 96x800 result, and shrink along y. The HUD covers the bottom strip of the flipped
        frame (rows 700-799, which its black rectangle paints over entirely): we draw it at those
        rows of the road surface (after its x-shrink) and x-shrink just that strip.
        """
        import pygame

        H = _cr.WINDOW_H
        # rows under the HUD (see _HIDDEN) are neither drawn nor shrunk
        if not shrunk:  # (``shrunk``: the bands were x-shrunk as they were drawn)
            pygame.transform.smoothscale(self._shown, (_cr.STATE_W, H - _HIDDEN), self._narrow_shown)
        self.surf = surf
        self._draw_hud()
        pygame.transform.smoothscale(self._strip, (_cr.STATE_W, H - _HUD_TOP), self._narrow_hud)
        narrow = pygame.transform.flip(self._narrow, False, True)
        narrow.blit(self._narrow_hud, (0, _HUD_TOP))
        pygame.transform.smoothscale(narrow, (_cr.STATE_W, _cr.STATE_H), self._small)
        return self._small
