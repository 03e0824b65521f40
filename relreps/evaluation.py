"""The evaluation protocol: held-out tracks, greedy actions, the paper's score and more.

For each track seed, one episode (at most 1000 steps) on the encoder's colour with greedy
(``deterministic=True``) actions. Recorded per episode:

- ``max_return``: the maximum of the running return, the paper's "episode maximum return" (a lap
  that ends with penalties or missed tiles keeps the best it reached);
- ``final_return``: the ordinary episode return;
- ``length`` and ``lap_finished``.

Evaluation tracks come from :data:`EVAL_TRACKS` (seeds no training run uses: SB3 seeds training
environment ``i`` with ``seed + i`` and later tracks come from each environment's generator, and
anchor recordings use :data:`relreps.anchors.ANCHOR_TRACK_SEED` onwards). Episodes run in parallel
worker processes; the scores depend only on the agent and the seeds, not on how many processes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from . import envs

#: Held-out evaluation tracks: the first 10 are the standard set (the paper used 5).
EVAL_TRACK_SEED = 10_000_000
EVAL_TRACKS: tuple[int, ...] = tuple(range(EVAL_TRACK_SEED, EVAL_TRACK_SEED + 10))


@dataclass
class Episode:
    track_seed: int
    max_return: float
    final_return: float
    length: int
    lap_finished: bool


@dataclass
class Evaluation:
    color: str
    episodes: list[Episode]

    def _values(self, key: str) -> np.ndarray:
        return np.array([getattr(e, key) for e in self.episodes], dtype=np.float64)

    @property
    def mean_max_return(self) -> float:
        return float(self._values("max_return").mean())

    @property
    def std_max_return(self) -> float:
        return float(self._values("max_return").std())

    @property
    def mean_final_return(self) -> float:
        return float(self._values("final_return").mean())

    @property
    def laps(self) -> int:
        return int(self._values("lap_finished").sum())

    def summary(self) -> dict:
        return {
            "color": self.color,
            "tracks": [e.track_seed for e in self.episodes],
            "mean_max_return": self.mean_max_return,
            "std_max_return": self.std_max_return,
            "mean_final_return": self.mean_final_return,
            "laps_finished": self.laps,
            "episodes": [asdict(e) for e in self.episodes],
        }


def act(policy, obs: np.ndarray) -> int:
    """The greedy action of an SB3 policy (or model) for one agent-view frame (84, 84, 3)."""
    action, _ = policy.predict(obs.transpose(2, 0, 1), deterministic=True)
    return int(action)


def run_episode(policy, color, track_seed: int, max_steps: int = envs.MAX_EPISODE_STEPS) -> Episode:
    """One greedy episode on track ``track_seed`` in ``color``."""
    env = envs.make_env(color, max_episode_steps=max_steps)
    try:
        obs, _ = env.reset(seed=int(track_seed))
        total, best, length, lap = 0.0, -np.inf, 0, False
        while True:
            obs, reward, terminated, truncated, info = env.step(act(policy, obs))
            total += float(reward)
            best = max(best, total)
            length += 1
            if terminated or truncated:
                lap = bool(info.get("lap_finished", False))
                break
    finally:
        env.close()
    return Episode(int(track_seed), best, total, length, lap)


_WORKER_POLICY = None


def _init_worker(policy) -> None:
    import torch

    global _WORKER_POLICY
    torch.set_num_threads(1)
    _WORKER_POLICY = policy


def _work(args) -> Episode:
    color, seed, max_steps = args
    return run_episode(_WORKER_POLICY, color, seed, max_steps)


def evaluate(
    agent,
    *,
    color: str | Sequence[int],
    track_seeds: Sequence[int] = EVAL_TRACKS,
    processes: int | None = None,
    max_steps: int = envs.MAX_EPISODE_STEPS,
) -> Evaluation:
    """Play one greedy episode per track seed with ``agent`` (an SB3 model or policy) in ``color``.

    ``processes`` (default: one per core, at most one per track) run the episodes in parallel;
    they receive the agent by ``fork``, so nothing is pickled. ``processes=1`` runs them here.
    """
    envs.resolve_color(color)
    seeds = [int(s) for s in track_seeds]
    if not seeds:
        raise ValueError("track_seeds is empty")
    policy = getattr(agent, "policy", agent)
    n = min(len(seeds), processes or os.cpu_count() or 1)
    jobs = [(color, s, max_steps) for s in seeds]
    if n <= 1 or "fork" not in mp.get_all_start_methods():
        episodes = [run_episode(policy, color, s, max_steps) for s in seeds]
    else:
        with mp.get_context("fork").Pool(n, initializer=_init_worker, initargs=(policy,)) as pool:
            episodes = pool.map(_work, jobs, chunksize=1)
    return Evaluation(color=envs.color_name(color), episodes=episodes)
