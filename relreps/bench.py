"""Side-by-side speed benchmarks (ratios measured in one run, on one core).

``relreps bench env`` steps the stock renderer and the fast one through the same tracks and
actions, interleaved step by step so that both see the same machine load, checks every frame is
identical, and reports steps per second per core, their ratio, and where a fast step's time goes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import envs


class _PhysicsOnly(envs.ColorCarRacing):
    """The environment without drawing: what a step costs when rendering is free."""

    def _render(self, mode: str):
        return self._blank

    _blank = np.zeros((envs.FRAME_SIZE, envs.FRAME_SIZE, 3), np.uint8)


@dataclass
class EnvBench:
    steps: int
    stock_sps: float
    fast_sps: float
    physics_sps: float
    preprocess_ms: float
    mismatches: int
    rasterizer: str

    @property
    def ratio(self) -> float:
        return self.fast_sps / self.stock_sps

    def report(self) -> str:
        fast_ms, phys_ms = 1e3 / self.fast_sps, 1e3 / self.physics_sps
        lines = [
            f"steps compared: {self.steps} (identical frames: {self.steps - self.mismatches}, "
            f"mismatches: {self.mismatches}); fast renderer's polygons drawn by {self.rasterizer}",
            f"stock renderer : {self.stock_sps:8.0f} steps/s per core ({1e3 / self.stock_sps:.2f} ms/step)",
            f"fast renderer  : {self.fast_sps:8.0f} steps/s per core ({fast_ms:.2f} ms/step)",
            f"speed-up       : {self.ratio:8.2f}x",
            "where a fast step's time goes:",
            f"  physics + env bookkeeping : {phys_ms:.3f} ms (ceiling {self.physics_sps:.0f} steps/s)",
            f"  drawing the frame         : {fast_ms - phys_ms:.3f} ms",
            f"  agent view (84x84 resize) : {self.preprocess_ms:.3f} ms (not in the numbers above)",
        ]
        return "\n".join(lines)


def _plan(seed: int, tracks: int) -> tuple[np.random.Generator, list, list[int]]:
    """The generator (for the actions), colours and track seeds that ``seed`` gives: the four
    paper colours and one random (R, G, B) background, cycled over the tracks."""
    rng = np.random.default_rng(seed)
    colors = [*envs.COLORS, tuple(int(v) for v in rng.integers(0, 256, size=3))]
    return rng, colors, [int(s) for s in rng.integers(0, 2**31 - 1, size=tracks)]


def _actions(rng: np.random.Generator, n: int) -> list[int]:
    # mostly gas, some steering and braking: the car moves, leaves the track now and then
    return [int(a) for a in rng.choice(5, size=n, p=[0.1, 0.15, 0.15, 0.5, 0.1])]


def bench_env(
    *, tracks: int = 4, steps_per_track: int = 500, seed: int = 0, rasterizer: str | None = None
) -> EnvBench:
    """Interleave the stock and fast renderers step by step over the same tracks and actions.

    Tracks, actions and colours come from ``seed``: track seeds are drawn at random, and the
    colours cycle through the four paper colours and one random (R, G, B) background.
    """
    rng, colors, track_seeds = _plan(seed, tracks)
    t_stock = t_fast = t_phys = 0.0
    n = mismatches = 0
    for k in range(tracks):
        color = colors[k % len(colors)]
        stock = envs.ColorCarRacing(color, renderer="gymnasium")
        fast = envs.ColorCarRacing(color, renderer="fast")
        if rasterizer is not None:
            fast.rasterizer = rasterizer
        rasterizer = fast.rasterizer
        phys = _PhysicsOnly(color)
        for e in (stock, fast, phys):
            e.reset(seed=track_seeds[k])
        for a in _actions(rng, steps_per_track):
            t0 = time.perf_counter()
            o_stock, *_ = stock.step(a)
            t1 = time.perf_counter()
            o_fast, *_ = fast.step(a)
            t2 = time.perf_counter()
            phys.step(a)
            t3 = time.perf_counter()
            t_stock += t1 - t0
            t_fast += t2 - t1
            t_phys += t3 - t2
            n += 1
            mismatches += not np.array_equal(o_stock, o_fast)
        for e in (stock, fast, phys):
            e.close()
    frames = rng.integers(0, 256, size=(256, envs.FRAME_SIZE, envs.FRAME_SIZE, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    for f in frames:
        envs.preprocess(f)
    pre_ms = (time.perf_counter() - t0) / len(frames) * 1e3
    return EnvBench(n, n / t_stock, n / t_fast, n / t_phys, pre_ms, mismatches, rasterizer)


@dataclass
class FastProfile:
    steps: int
    step_ms: float
    #: milliseconds per step of each part, in drawing order
    parts: dict[str, float]

    def report(self) -> str:
        lines = [f"where a fast step's {self.step_ms:.3f} ms go ({self.steps} steps, the fast "
                 "renderer alone, each part timed around its call):"]
        lines += [f"  {name:48s}: {ms:.3f} ms" for name, ms in self.parts.items()]
        return "\n".join(lines)


def profile_fast(*, tracks: int = 4, steps_per_track: int = 500, seed: int = 0) -> FastProfile:
    """Time the parts of a fast step (numba rasterizer), each around its call, on the tracks,
    actions and colours of :func:`bench_env` (same ``seed``), after a 30-step warm-up.

    Timers wrap the environment's own methods and, while it runs, ``pygame.transform.smoothscale``
    (restored afterwards); the timers' overhead lands in "the rest".
    """
    import pygame

    if not envs._numba_available():
        raise RuntimeError("profile_fast profiles the numba path: pip install numba")
    rng, colors, track_seeds = _plan(seed, tracks)
    names = {
        "_scene_polygons": "visibility test + colours",
        "_fill_and_draw_rows": "background fill + polygons (bands)",
        "shrink": "x-shrink of the bands (smoothscale)",
        "draw": "car (gymnasium's Car.draw)",
        "_finish_split": "HUD, its strip's shrink, flip, y-shrink",
    }
    spent = dict.fromkeys([*names, "render"], 0.0)  # seconds; "render": the whole drawing
    in_finish = [False]

    def timed(fn, key):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if not (key == "shrink" and in_finish[0]):  # its shrinks are part of the HUD's
                    spent[key] += time.perf_counter() - t0
        return wrapper

    def instrument(env):
        for key in ("_scene_polygons", "_fill_and_draw_rows"):
            setattr(env, key, timed(getattr(env, key), key))
        finish = timed(env._finish_split, "_finish_split")

        def finish_flagged(*args, **kwargs):
            in_finish[0] = True
            try:
                return finish(*args, **kwargs)
            finally:
                in_finish[0] = False
        env._finish_split = finish_flagged

    smoothscale = pygame.transform.smoothscale
    pygame.transform.smoothscale = timed(smoothscale, "shrink")
    t_step = 0.0
    n = 0
    try:
        warm = envs.ColorCarRacing("green")
        warm.reset(seed=1)
        for _ in range(30):
            warm.step(envs.GAS)
        warm.close()
        spent.update(dict.fromkeys(spent, 0.0))
        for k in range(tracks):
            env = envs.ColorCarRacing(colors[k % len(colors)], renderer="fast")
            env.rasterizer = "numba"
            instrument(env)
            env.reset(seed=track_seeds[k])
            env.car.draw = timed(env.car.draw, "draw")
            env._render_state_fast = timed(env._render_state_fast, "render")
            for a in _actions(rng, steps_per_track):
                t0 = time.perf_counter()
                env.step(a)
                t_step += time.perf_counter() - t0
                n += 1
            env.close()
    finally:
        pygame.transform.smoothscale = smoothscale
    t_render = spent.pop("render")
    ms = {names[key]: v / n * 1e3 for key, v in spent.items()}
    ms["the rest of drawing (fallback frames, copies, glue)"] = (t_render - sum(spent.values())) / n * 1e3
    ms["physics + env bookkeeping"] = (t_step - t_render) / n * 1e3
    return FastProfile(n, t_step / n * 1e3, ms)


@dataclass
class UpdateBench:
    latent_dim: int | None
    n_anchors: int
    samples: int
    absolute_s: float
    relative_s: float

    @property
    def ratio(self) -> float:
        return self.relative_s / self.absolute_s

    def report(self) -> str:
        dim = self.latent_dim or 3136
        return (f"PPO update on {self.samples} samples (4 epochs x 4 minibatches), latent {dim}, "
                f"{self.n_anchors} anchors:\n"
                f"  absolute encoder : {self.absolute_s:.3f} s\n"
                f"  relative encoder : {self.relative_s:.3f} s (anchor update included)\n"
                f"  ratio            : {self.ratio:.2f}x")


def bench_update(*, latent_dim: int | None = None, n_anchors: int | None = None, n_envs: int = 2,
                 n_steps: int = 256, repeats: int = 3, seed: int = 0) -> UpdateBench:
    """Time PPO updates of an absolute and a relative agent alternately, on the same machine load.

    Each model first collects one rollout and runs one untimed update; then ``train()`` (and, for the
    relative agent, the anchor update that precedes each rollout) is timed ``repeats`` times,
    alternating the two models; the medians are compared.
    """
    from . import algos
    from .extractors import AbsoluteEncoder, RelativeEncoder

    models = {}
    for rep, cls, kw in (("absolute", AbsoluteEncoder, dict(latent_dim=latent_dim)),
                         ("relative", RelativeEncoder, dict(latent_dim=latent_dim, n_anchors=n_anchors))):
        venv = envs.make_vec_env("green", n_envs=n_envs, seed=seed, workers=0)
        model = algos.make_model("ppo", venv, encoder_class=cls, encoder_kwargs=kw, n_steps=n_steps, seed=seed)
        model.learn(n_envs * n_steps)  # fills the rollout buffer (and runs one update)
        venv.close()
        models[rep] = model
    times = {"absolute": [], "relative": []}
    for model in models.values():  # warm-up (allocator, kernels), not timed
        model.train()
    for _ in range(repeats):
        for rep, model in models.items():
            t0 = time.perf_counter()
            for enc in algos.relative_encoders(model):
                enc.update_anchors()
            model.train()
            times[rep].append(time.perf_counter() - t0)
    n = models["relative"].policy.features_extractor.features_dim
    return UpdateBench(latent_dim, n, n_envs * n_steps, float(np.median(times["absolute"])),
                       float(np.median(times["relative"])))
