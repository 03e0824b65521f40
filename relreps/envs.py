"""Colour CarRacing: the paper's environment, a fast renderer and what the agent sees.

The environment is gymnasium's ``CarRacing`` with

- discrete actions (gymnasium's five: no-op, right, left, gas, brake; see :data:`ACTIONS`),
- a background/grass colour chosen per environment (:data:`COLORS`, or any ``(R, G, B)`` triple),
- a renderer that draws the same 96x96 frames byte for byte, several times faster
  (``renderer="fast"``, the default; ``renderer="gymnasium"`` keeps the stock one),
- 1000-step episodes, the track fixed by ``reset(seed=...)``.

Observations of the registered environment are the raw 96x96 RGB frames. Agents see
:func:`preprocess` of them (84x84 RGB, exact area averaging): :func:`make_env` and
:func:`make_vec_env` build environments that already return what the agent sees.
The fast renderer itself is :class:`relreps.render.FastRenderer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.envs.box2d import car_racing as _cr

from .render import FastRenderer, _numba_available

__all__ = [
    "ACTIONS",
    "COLORS",
    "ENV_ID",
    "FRAME_SIZE",
    "GRASS_BRIGHTEN",
    "MAX_EPISODE_STEPS",
    "OBS_SIZE",
    "RENDERERS",
    "RGB",
    "ROAD_COLOR",
    "AgentView",
    "ColorCarRacing",
    "color_name",
    "make_env",
    "make_vec_env",
    "preprocess",
    "resolve_color",
]


ENV_ID = "relreps/CarRacing-v0"
MAX_EPISODE_STEPS = 1000
FRAME_SIZE = 96  # the stock state frame (STATE_W x STATE_H)
OBS_SIZE = 84  # what the agent sees

RGB = tuple[int, int, int]

#: The paper's colours: name -> (background, grass patches). The road stays (102, 102, 102).
#: Values from the authors' follow-up code (see the book's reproducibility notes); green is
#: gymnasium's default look.
COLORS: dict[str, tuple[RGB, RGB]] = {
    "green": ((102, 204, 102), (102, 230, 102)),
    "red": ((204, 102, 102), (230, 102, 102)),
    "blue": ((102, 102, 204), (102, 102, 230)),
    "yellow": ((230, 230, 102), (255, 255, 102)),
}
ROAD_COLOR: RGB = (102, 102, 102)

#: The discrete actions, in gymnasium's order, named by what the car does: action 1 steers with
#: -0.6 and turns the car clockwise (right, as seen on screen), action 2 with +0.6 turns it left.
#: (Gymnasium's docs list 1 as "left"; its code comment and the physics say right.) Gas is 0.2,
#: brake 0.8.
ACTIONS: tuple[str, ...] = ("noop", "right", "left", "gas", "brake")
NOOP, RIGHT, LEFT, GAS, BRAKE = range(5)

RENDERERS = ("fast", "gymnasium")
GRASS_BRIGHTEN = 26  # grass = background with its strongest channel(s) brightened by this


def _valid_color_message() -> str:
    names = ", ".join(repr(c) for c in COLORS)
    return f'one of {names}, or an (R, G, B) triple of integers in 0..255 (or "R,G,B")'


def resolve_color(color: str | Sequence[int]) -> tuple[RGB, RGB]:
    """Return ``(background, grass)`` for a colour name or an ``(R, G, B)`` background triple.

    For a triple the grass patches are the background with its strongest channel(s) brightened by
    26 (clipped at 255), the rule that also gives the four paper colours from their backgrounds.

    Raises:
        ValueError: unknown name or malformed triple; the message lists the valid choices.
    """
    if isinstance(color, str) and "," in color:  # "R,G,B", as color_name writes it
        parts = color.split(",")
        if len(parts) == 3 and all(p.strip().isascii() and p.strip().isdigit() for p in parts):
            return resolve_color(tuple(int(p) for p in parts))
        raise ValueError(f"invalid colour {color!r}: expected {_valid_color_message()}")
    if isinstance(color, str):
        key = color.strip().lower()
        if key not in COLORS:
            raise ValueError(f"unknown colour {color!r}: expected {_valid_color_message()}")
        return COLORS[key]
    try:
        values = list(color)
    except TypeError:
        raise ValueError(f"invalid colour {color!r}: expected {_valid_color_message()}") from None
    ok = len(values) == 3 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= int(v) <= 255
        for v in values
    )
    if not ok:
        raise ValueError(f"invalid colour {color!r}: expected {_valid_color_message()}")
    bg = tuple(int(v) for v in values)
    top = max(bg)
    grass = tuple(min(v + GRASS_BRIGHTEN, 255) if v == top else v for v in bg)
    return bg, grass  # type: ignore[return-value]


def color_name(color: str | Sequence[int]) -> str:
    """A short stable name for a colour: the paper name, or ``"r,g,b"`` for a triple."""
    if isinstance(color, str) and "," not in color:
        resolve_color(color)
        return color.strip().lower()
    bg, _ = resolve_color(color)
    for name, (b, _g) in COLORS.items():
        if b == bg:
            return name
    return ",".join(str(v) for v in bg)


# --------------------------------------------------------------------------------------------
# The environment
# --------------------------------------------------------------------------------------------

class ColorCarRacing(FastRenderer, _cr.CarRacing):
    """Gymnasium's CarRacing with discrete actions, a chosen colour and a fast renderer.

    Args:
        color: a name in :data:`COLORS` or an ``(R, G, B)`` background triple.
        renderer: ``"fast"`` (default; byte-identical frames) or ``"gymnasium"`` (stock).
        render_mode: as gymnasium's (``None``, ``"rgb_array"``, ``"human"``, ``"state_pixels"``).
        lap_complete_percent, verbose: passed to gymnasium's CarRacing.

    Observations are the raw 96x96x3 uint8 frames; see :func:`preprocess` for the agent's view.
    """

    def __init__(
        self,
        color: str | Sequence[int] = "green",
        renderer: str = "fast",
        render_mode: str | None = None,
        lap_complete_percent: float = 0.95,
        verbose: bool = False,
    ):
        if renderer not in RENDERERS:
            raise ValueError(f"unknown renderer {renderer!r}: expected one of {RENDERERS}")
        resolve_color(color)  # fail before building the Box2D world
        super().__init__(
            render_mode=render_mode,
            verbose=verbose,
            lap_complete_percent=lap_complete_percent,
            domain_randomize=False,
            continuous=False,
        )
        self.renderer = renderer
        #: how the fast renderer draws polygons: "numba" (relreps._raster, same pixels, faster)
        #: when numba is installed, else "gfxdraw" (pygame's own calls)
        self.rasterizer = "numba" if renderer == "fast" and _numba_available() else "gfxdraw"
        self.set_color(color)
        self._init_fast_renderer()

    def set_color(self, color: str | Sequence[int]) -> None:
        """Change the background and grass colour (takes effect at the next frame)."""
        bg, grass = resolve_color(color)
        self.color = color_name(color)
        self.bg_color = np.array(bg)
        self.grass_color = np.array(grass)

# --------------------------------------------------------------------------------------------
# What the agent sees
# --------------------------------------------------------------------------------------------


def _area_weights(n_in: int, n_out: int) -> tuple[np.ndarray, int]:
    """Integer area-overlap weights (n_out, n_in) and their row sum, for exact area resizing."""
    g = math.gcd(n_in, n_out)
    unit_in, unit_out = n_out // g, n_in // g  # widths of an input and an output pixel, in units
    w = np.zeros((n_out, n_in), dtype=np.float32)
    for i in range(n_out):
        lo, hi = i * unit_out, (i + 1) * unit_out
        for a in range(lo // unit_in, min(n_in, -(-hi // unit_in))):
            w[i, a] = max(0, min(hi, (a + 1) * unit_in) - max(lo, a * unit_in))
    return w, unit_out


_W96, _UNIT = _area_weights(FRAME_SIZE, OBS_SIZE)
# 96 -> 84 is a scale of 8/7: each output pixel overlaps at most two input pixels per axis. So the
# area average is two weighted adds per axis, in small integers (weights in sevenths, summing to 8).
_IA = (_W96 > 0).argmax(axis=1)  # first input pixel each output pixel overlaps
_IB = np.minimum(_IA + 1, FRAME_SIZE - 1)
_WA = _W96[np.arange(OBS_SIZE), _IA].astype(np.uint16)
_WB = (_UNIT - _WA).astype(np.uint16)
_check = np.zeros_like(_W96)
_check[np.arange(OBS_SIZE), _IA] += _WA
_check[np.arange(OBS_SIZE), _IB] += _WB
assert np.array_equal(_check, _W96), "the two-tap weights must reproduce the area weights exactly"
del _check


def preprocess(frames: np.ndarray) -> np.ndarray:
    """Turn raw 96x96 RGB frames into what the agent sees: 84x84 RGB, uint8, channels last.

    Each output pixel is the exact area average of the input pixels it covers (as OpenCV's
    ``INTER_AREA``), rounded half up, in integer arithmetic (no BLAS, no threads): the result is the
    same on every machine and for every batch size. Accepts ``(..., 96, 96, 3)`` uint8.
    """
    frames = np.asarray(frames)
    if frames.shape[-3:] != (FRAME_SIZE, FRAME_SIZE, 3) or frames.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 frames of shape (..., {FRAME_SIZE}, {FRAME_SIZE}, 3); "
            f"got {frames.dtype} {frames.shape}"
        )
    f = frames.astype(np.uint16)
    wa, wb = _WA[:, None, None], _WB[:, None, None]
    rows = f[..., _IA, :, :] * wa + f[..., _IB, :, :] * wb  # (..., 84, 96, 3), at most 8 * 255
    both = rows[..., _IA, :] * _WA[:, None] + rows[..., _IB, :] * _WB[:, None]  # at most 64 * 255
    return ((both + _UNIT * _UNIT // 2) // (_UNIT * _UNIT)).astype(np.uint8)


class AgentView(gym.ObservationWrapper):
    """Observation wrapper: raw 96x96 frames -> :func:`preprocess` (84x84x3 uint8)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (OBS_SIZE, OBS_SIZE, 3), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return preprocess(observation)


def make_env(
    color: str | Sequence[int] = "green",
    *,
    renderer: str = "fast",
    agent_view: bool = True,
    render_mode: str | None = None,
    max_episode_steps: int = MAX_EPISODE_STEPS,
) -> gym.Env:
    """Make ``relreps/CarRacing-v0`` in a colour, returning what the agent sees (84x84) by default.

    Set ``agent_view=False`` for the raw 96x96 frames.
    """
    resolve_color(color)  # fail early, with the valid choices
    env = gym.make(
        ENV_ID,
        color=color,
        renderer=renderer,
        render_mode=render_mode,
        max_episode_steps=max_episode_steps,
    )
    return AgentView(env) if agent_view else env


def make_vec_env(
    color: str | Sequence[int] = "green",
    n_envs: int = 8,
    *,
    seed: int | None = None,
    workers: int | None = None,
    renderer: str = "fast",
    start_method: str | None = None,
):
    """A Stable-Baselines3 ``VecEnv`` of ``n_envs`` agent-view environments in one colour.

    ``workers`` processes (default: one per core, at most ``n_envs``) each step their share of the
    environments (:class:`relreps.vec.ChunkedSubprocVecEnv`); ``workers=0`` or a single core keeps
    them all in this process (``DummyVecEnv``). Results are identical either way. Each environment
    is wrapped in SB3's ``Monitor`` (episode returns and lengths in ``info["episode"]``).
    ``seed`` seeds environment ``i`` with ``seed + i`` at the first reset (the tracks), as SB3 does.
    """
    import os

    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

    from .vec import ChunkedSubprocVecEnv

    resolve_color(color)
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    if workers is None:
        workers = min(n_envs, os.cpu_count() or 1)
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    fns: list[Callable[[], gym.Env]] = [
        lambda: Monitor(make_env(color, renderer=renderer)) for _ in range(n_envs)
    ]
    venv: VecEnv
    if workers <= 1:
        venv = DummyVecEnv(fns)
    else:
        venv = ChunkedSubprocVecEnv(fns, min(workers, n_envs), start_method=start_method)
    if seed is not None:
        venv.seed(seed)
    return venv
