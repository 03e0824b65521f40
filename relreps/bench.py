"""Side-by-side speed benchmarks (ratios measured in one run, on one core).

``relreps bench env`` steps the stock renderer and the fast one through the same tracks and
actions, interleaved step by step so that both see the same machine load, checks every frame is
identical, and reports steps per second per core, their ratio, and where a fast step's time goes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from . import envs

__all__ = [
    "SB3_VEC",
    "TRAIN_BASES",
    "TRAIN_DEFAULT",
    "TRAIN_OPTIONS",
    "EnvBench",
    "FastProfile",
    "TrainBench",
    "TrainTiming",
    "TrainVariant",
    "UpdateBench",
    "bench_env",
    "bench_train",
    "bench_update",
    "check_train_counts",
    "profile_fast",
]


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
    assert rasterizer is not None  # set by the first track (tracks >= 1)
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
            env._render_state_fast = timed(env._render_state_fast, "render")  # type: ignore[method-assign]
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
    times: dict[str, list[float]] = {"absolute": [], "relative": []}
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


# ----------------------------------------------------------------------------------------------
# End-to-end training throughput
# ----------------------------------------------------------------------------------------------

#: Base variants of :func:`bench_train`: stock SB3 PPO ``CnnPolicy`` on stock gymnasium
#: ``CarRacing-v3`` (discrete actions), and relreps' PPO in float32, in bfloat16, and in what
#: ``precision="auto"`` picks on the device (:func:`relreps.precision.resolve`); and relreps'
#: Double DQN (float32, :data:`relreps.algos.DQN_DEFAULTS`) in its steady state: learning from the
#: first step, exploring at its final epsilon.
TRAIN_BASES = ("sb3", "fp32", "bf16", "auto", "ddqn")
#: The variants ``relreps bench train`` runs by default.
TRAIN_DEFAULT = ("sb3", "fp32", "auto")
#: Options a variant may add after its base, ``:``-separated (e.g. ``fp32:threads=1/2``).
TRAIN_OPTIONS = ("threads=R/U (torch threads in rollouts / updates)", "channels-last",
                 "compile (torch.compile of the networks; compiled in the warm-up)",
                 "replay=B/G (ddqn: batch size B, G gradient steps per vectorised step)",
                 "rollout=fp32|bf16 (the rollout's autocast; relreps variants)")
#: How the stock baseline steps its environments: SB3's ``SubprocVecEnv`` (one process per
#: environment) or ``DummyVecEnv`` (all in the training process).
SB3_VEC = ("subproc", "dummy")


@dataclass
class TrainVariant:
    """One contender of :func:`bench_train`, parsed from a spec such as ``bf16:threads=1/2``."""

    spec: str
    base: str
    threads: tuple[int, int] | None = None
    channels_last: bool = False
    compile: bool = False
    replay: tuple[int, int] | None = None
    rollout: str | None = None

    @classmethod
    def parse(cls, spec: str) -> TrainVariant:
        base, *opts = spec.split(":")
        if base not in TRAIN_BASES:
            raise ValueError(f"unknown variant {spec!r}: the base must be one of {TRAIN_BASES}, then options "
                             f"{TRAIN_OPTIONS} separated by ':'")
        v = cls(spec, base)
        for opt in opts:
            key, _, value = opt.partition("=")
            if key == "channels-last" and not value:
                v.channels_last = True
            elif key == "compile" and not value:
                v.compile = True
            elif key == "replay" and base == "ddqn":
                parts = value.split("/")
                if len(parts) != 2 or not all(p.isdigit() and int(p) >= 1 for p in parts):
                    raise ValueError(f"variant {spec!r}: replay takes B/G, two counts >= 1 (e.g. replay=128/1)")
                v.replay = (int(parts[0]), int(parts[1]))
            elif key == "threads":
                parts = value.split("/")
                if len(parts) != 2 or not all(p.isdigit() and int(p) >= 1 for p in parts):
                    raise ValueError(f"variant {spec!r}: threads takes R/U, two counts >= 1 (e.g. threads=1/2)")
                v.threads = (int(parts[0]), int(parts[1]))
            elif key == "rollout" and value in ("fp32", "bf16") and base not in ("sb3", "ddqn"):
                v.rollout = value
            else:
                raise ValueError(f"variant {spec!r}: unknown option {opt!r}; options: {TRAIN_OPTIONS} "
                                 "(rollout= for relreps' PPO variants only, replay= for ddqn)")
        return v


@dataclass
class TrainTiming:
    variant: str
    steps: int  # timed environment steps
    rollout_s: float
    update_s: float
    eval_s: float  # one evaluation as timed (eval_tracks episodes)
    eval_steps: int  # agent steps that evaluation played
    eval_share_steps: float  # evaluated steps per training step at the training cadence

    @property
    def eval_per_step_s(self) -> float:
        """Evaluation time per training step at the training cadence."""
        return self.eval_s / max(self.eval_steps, 1) * self.eval_share_steps

    @property
    def total_s(self) -> float:
        return self.rollout_s + self.update_s + self.eval_per_step_s * self.steps

    @property
    def sps(self) -> float:
        """End to end: environment steps per second, evaluations included at the training cadence."""
        return self.steps / self.total_s


@dataclass
class TrainBench:
    timings: list[TrainTiming]
    setup: str

    def report(self) -> str:
        by = {t.variant: t for t in self.timings}
        refs = [r for r in ("sb3", "fp32") if r in by]
        head = (f"{'variant':24s} {'steps/s':>8s} {'rollout':>8s} {'update':>8s} {'eval':>6s}  "
                + "  ".join(f"{'vs ' + r:>8s}" for r in refs))
        lines = [self.setup, head]
        for t in self.timings:
            total = t.total_s
            eval_s = t.eval_per_step_s * t.steps
            row = (f"{t.variant:24s} {t.sps:8.1f} {t.rollout_s / total:8.0%} {t.update_s / total:8.0%} "
                   f"{eval_s / total:6.0%}  " + "  ".join(f"{t.sps / by[r].sps:7.2f}x" for r in refs))
            lines.append(row)
        lines.append("per timed update (ms per 1000 env steps): "
                     + "; ".join(f"{t.variant}: rollout {t.rollout_s / t.steps * 1e6:.0f}, update "
                                 f"{t.update_s / t.steps * 1e6:.0f}, eval {t.eval_per_step_s * 1e6:.0f}"
                                 for t in self.timings))
        return "\n".join(lines)


def check_train_counts(**counts: int) -> None:
    """Refuse counts below 1 (one error naming each bad one)."""
    bad = [f"{k}={v!r}" for k, v in counts.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
    if bad:
        raise ValueError(f"bench train needs counts >= 1; got {', '.join(bad)}")


class _PhaseTimer(BaseCallback):
    """Rollout wall time."""

    def __init__(self):
        super().__init__()
        self.rollout_s = 0.0
        self._t0 = 0.0

    def _on_rollout_start(self) -> None:
        self._t0 = time.perf_counter()

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.rollout_s += time.perf_counter() - self._t0


def _compile_networks(policy) -> None:
    """``torch.compile`` every network module of an SB3 policy in place (``nn.Module.compile``):
    the features extractors, PPO's MLP and heads, the DQN family's Q-networks' heads."""
    seen: set[int] = set()  # PPO shares one extractor under three names
    for name in ("features_extractor", "pi_features_extractor", "vf_features_extractor", "mlp_extractor",
                 "action_net", "value_net", "q_net", "q_net_target"):
        module = getattr(policy, name, None)
        if isinstance(module, torch.nn.Module) and id(module) not in seen:
            seen.add(id(module))
            module.compile()


def _sb3_model(n_envs: int, seed: int, vec: str, n_steps: int, device: str = "cpu"):
    """Stock SB3 PPO ``CnnPolicy`` on stock gymnasium ``CarRacing-v3`` (discrete actions), with
    relreps' PPO preset (:data:`relreps.algos.PPO_DEFAULTS`)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from . import algos

    hp = {**algos.PPO_DEFAULTS, "n_steps": n_steps}
    venv = make_vec_env("CarRacing-v3", n_envs=n_envs, seed=seed, env_kwargs={"continuous": False},
                        vec_env_cls=SubprocVecEnv if vec == "subproc" else DummyVecEnv)
    lr = algos.linear_schedule(hp["learning_rate"]) if hp["anneal_lr"] else hp["learning_rate"]
    model = PPO("CnnPolicy", venv, learning_rate=lr, n_steps=hp["n_steps"],
                batch_size=n_envs * hp["n_steps"] // hp["n_minibatches"], n_epochs=hp["n_epochs"],
                gamma=hp["gamma"], gae_lambda=hp["gae_lambda"], clip_range=hp["clip_range"],
                clip_range_vf=hp["clip_range_vf"], normalize_advantage=hp["normalize_advantage"],
                ent_coef=hp["ent_coef"], vf_coef=hp["vf_coef"], max_grad_norm=hp["max_grad_norm"],
                policy_kwargs=dict(optimizer_kwargs=dict(eps=hp["adam_eps"])), seed=seed, device=device, verbose=0)
    return model, venv


def _sb3_evaluate(model, track_seeds, max_steps: int) -> int:
    """Greedy episodes on stock ``CarRacing-v3`` in this process (as SB3's ``evaluate_policy``);
    returns the steps played."""
    import gymnasium as gym

    env = gym.make("CarRacing-v3", continuous=False)
    steps = 0
    try:
        for s in track_seeds:
            obs, _ = env.reset(seed=int(s))
            for _ in range(max_steps):
                action, _ = model.predict(obs, deterministic=True)
                obs, _, term, trunc, _ = env.step(int(action))
                steps += 1
                if term or trunc:
                    break
    finally:
        env.close()
    return steps


def bench_train(
    variants=TRAIN_DEFAULT, *, updates: int = 2, n_envs: int = 16, n_steps: int = 128,
    workers: int | None = None, representation: str = "relative", eval_tracks: int = 1,
    eval_max_steps: int = 200, sb3_vec: str = "subproc", seed: int = 0, device: str = "cpu",
) -> TrainBench:
    """End-to-end training throughput of several variants (PPO; Double DQN with ``"ddqn"``),
    interleaved update by update.

    Every variant builds its model and environments, then runs one untimed rollout and update
    (warm-up). Then, ``updates`` times, each variant in turn collects one rollout of
    ``n_envs x n_steps`` steps and runs one PPO update (SB3's own learning loop, step by step), so
    all variants see the same machine load. Rollout time is measured from the rollout's start
    (after the anchor update, which counts as update) to its end (returns computed); update time
    is the rest. Then each variant plays one evaluation (``eval_tracks`` greedy episodes of at most
    ``eval_max_steps`` steps: relreps' protocol, or stock episodes in one process for ``sb3``); its
    cost per played step is charged at the training cadence (``TrainConfig``'s defaults: episodes
    on ``len(eval_tracks)`` tracks of ``eval_max_steps`` steps every ``eval_every`` steps).

    For ``"ddqn"`` an "update" plays the same ``n_envs x n_steps`` steps the way SB3's off-policy
    loop does: ``n_steps`` times one vectorised step (its rollout), then the preset's gradient steps
    (4 of batch 32, the target copied every 1,000 transitions), learning from the first transition
    and exploring at the final epsilon (the state of a run after its first 10%).

    Variants: :data:`TRAIN_BASES` with options (:class:`TrainVariant`). All counts must be >= 1,
    and every variant must be runnable on ``device`` (bf16 needs native bfloat16), before any work
    starts.
    """
    from . import algos, evaluation
    from .precision import resolve
    from .training import REPRESENTATIONS, TrainConfig, rollout_threads

    check_train_counts(updates=updates, n_envs=n_envs, n_steps=n_steps, eval_tracks=eval_tracks,
                       eval_max_steps=eval_max_steps)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ValueError(f"workers must be >= 0 (0: environments in the training process), got {workers!r}")
    if representation not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {representation!r}: expected one of {REPRESENTATIONS}")
    if sb3_vec not in SB3_VEC:
        raise ValueError(f"unknown sb3_vec {sb3_vec!r}: expected one of {SB3_VEC}")
    if isinstance(variants, str):
        variants = [variants]
    if not variants:
        raise ValueError(f"no variants given: expected some of {TRAIN_BASES} (with options {TRAIN_OPTIONS})")
    parsed = [TrainVariant.parse(v) for v in variants]
    if len({v.spec for v in parsed}) != len(parsed):
        raise ValueError(f"variants repeat: {[v.spec for v in parsed]}")
    if (n_envs * n_steps) % algos.PPO_DEFAULTS["n_minibatches"]:
        raise ValueError(f"n_envs * n_steps ({n_envs * n_steps}) must divide into "
                         f"{algos.PPO_DEFAULTS['n_minibatches']} minibatches")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no GPU here")
    resolved = {}
    for v in parsed:
        if v.base not in ("sb3", "ddqn"):  # refuses bf16 on a device without native bfloat16
            resolved[v.spec] = (resolve(v.base, device), None if v.rollout is None else resolve(v.rollout, device))

    defaults = TrainConfig(representation=representation)
    tracks = evaluation.EVAL_TRACKS[:eval_tracks]
    share = len(defaults.eval_tracks) * defaults.eval_max_steps / defaults.eval_every
    base_threads = torch.get_num_threads()
    steps = n_envs * n_steps
    runs = []  # (variant, model, venv, callback, timer, total)
    timings = []
    try:
        for v in parsed:
            torch.set_num_threads(base_threads)
            if v.base == "sb3":
                model, venv = _sb3_model(n_envs, seed, sb3_vec, n_steps, device)
                extra: list = []
            else:
                from .envs import make_vec_env

                venv = make_vec_env(defaults.color, n_envs, seed=seed, workers=workers)
                encoder_class, encoder_kwargs = defaults.encoder()
                common: dict[str, Any] = dict(encoder_class=encoder_class, encoder_kwargs=encoder_kwargs,
                                              head_dim=defaults.head_dim, seed=seed, device=device)
                algo = "ddqn" if v.base == "ddqn" else "ppo"
                if algo == "ddqn":
                    # the steady state of a run: learning from the first transition, exploring at the
                    # final epsilon; a buffer that holds every timed transition (none is overwritten)
                    batch, gradient_steps = v.replay or (algos.DQN_DEFAULTS["batch_size"],
                                                         algos.DQN_DEFAULTS["gradient_steps"])
                    model = algos.make_model("ddqn", venv, **common, learning_starts=0,
                                             buffer_size=steps * (updates + 1) + n_envs, batch_size=batch,
                                             gradient_steps=gradient_steps)
                    final_eps = algos.DQN_DEFAULTS["exploration_final_eps"]
                    model.exploration_schedule = lambda _progress, eps=final_eps: eps
                else:
                    model = algos.make_model("ppo", venv, **common, precision=resolved[v.spec][0],
                                             rollout_precision=resolved[v.spec][1], n_steps=n_steps)
                extra = ([algos.anchor_update_callback(algo, model, defaults.anchor_update)]
                         if representation == "relative" else [])
            if v.channels_last:
                model.policy.to(memory_format=torch.channels_last)
            if v.compile:
                _compile_networks(model.policy)
            if v.threads is None and v.base not in ("sb3", "ddqn"):  # as `relreps train` runs PPO
                one = rollout_threads(defaults, device)
                v = replace(v, threads=None if one is None else (one, base_threads))
            timer = _PhaseTimer()
            phases = [algos.PhaseThreads(*v.threads)] if v.threads else []
            total, callback = model._setup_learn(steps * (updates + 1), CallbackList([*extra, timer, *phases]),
                                                 True, "bench", False)
            callback.on_training_start(locals(), globals())
            runs.append((v, model, venv, callback, timer, total))

        def one_update(v, model, callback, total):
            torch.set_num_threads(v.threads[1] if v.threads else base_threads)
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            if v.base == "ddqn":  # SB3's off-policy loop: one vectorised step, then its gradient steps
                for _ in range(n_steps):
                    model.collect_rollouts(model.env, callback=callback, train_freq=model.train_freq,
                                           replay_buffer=model.replay_buffer, learning_starts=0)
                    model._update_current_progress_remaining(model.num_timesteps, total)
                    model.train(batch_size=model.batch_size, gradient_steps=model.gradient_steps)
            else:
                model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
                model._update_current_progress_remaining(model.num_timesteps, total)
                model.train()
            if device == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - t0

        for v, model, venv, callback, timer, total in runs:  # warm-up, not timed
            one_update(v, model, callback, total)
            if v.compile:  # the evaluation's batch of one compiles here too, not in the timed evaluation
                model.predict(venv.observation_space.sample()[None], deterministic=True)
            timer.rollout_s = 0.0
        spent = {v.spec: 0.0 for v in parsed}
        for _ in range(updates):
            for v, model, _, callback, _timer, total in runs:
                spent[v.spec] += one_update(v, model, callback, total)
        for v, model, _, _callback, timer, _total in runs:
            torch.set_num_threads(base_threads)
            t0 = time.perf_counter()
            if v.base == "sb3":
                played = _sb3_evaluate(model, tracks, eval_max_steps)
            else:
                result = evaluation.evaluate(model, color=defaults.color, track_seeds=tracks, max_steps=eval_max_steps)
                played = sum(e.length for e in result.episodes)
            eval_s = time.perf_counter() - t0
            timings.append(TrainTiming(v.spec, steps * updates, timer.rollout_s, spent[v.spec] - timer.rollout_s,
                                       eval_s, played, share))
    finally:
        torch.set_num_threads(base_threads)
        for _, _, venv, *_ in runs:
            venv.close()
    procs = "one per core" if workers is None else workers
    precisions = ", ".join(f"{k}: update {u}, rollout {r or u}" for k, (u, r) in resolved.items())
    algos_run = "PPO" + (" and Double DQN (ddqn: float32, steady state)" if "ddqn" in [v.base for v in parsed] else "")
    setup = (f"{algos_run} on {device} ({representation} encoder for relreps variants; {precisions}), {n_envs} envs x {n_steps} steps per update "
             f"({steps} env steps), {updates} timed updates per variant after one warm-up, interleaved; relreps "
             f"env processes: {procs}; sb3 envs: {sb3_vec}; "
             f"torch threads: {base_threads} (relreps PPO variants without threads=: 1 in rollouts, as "
             f"`relreps train` runs them on a CPU); evaluation charged at {share:.3f} evaluated steps per training "
             f"step, measured on {eval_tracks} track(s) x <= {eval_max_steps} steps")
    return TrainBench(timings, setup)
