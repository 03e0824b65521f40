"""The evaluation protocol: held-out tracks, greedy actions, the paper's score and more.

For each track seed, one episode (at most 1000 steps) on the encoder's colour with greedy
(``deterministic=True``) actions, the paper's protocol. ``actions="sampled"`` draws each action from
the policy's probabilities instead, by a generator seeded with the track seed (the same agent and
track give the same episode): how the authors' follow-up scored its agents, so that its numbers
can be set beside ours on equal terms. Recorded per episode:

- ``max_return``: the maximum of the running return, the paper's "episode maximum return" (a lap
  that ends with penalties or missed tiles keeps the best it reached);
- ``final_return``: the ordinary episode return;
- ``length`` and ``lap_finished``.

Evaluation tracks come from :data:`EVAL_TRACKS` (seeds no training run uses: SB3 seeds training
environment ``i`` with ``seed + i`` and later tracks come from each environment's generator, and
anchor recordings use :data:`relreps.anchors.ANCHOR_TRACK_SEED` onwards). Episodes run in parallel
worker processes; the scores depend only on the agent and the seeds, not on how many processes.

:func:`record_episode` plays the same episode as :func:`run_episode` (one shared loop) and also keeps
what a person would watch: the raw 96x96 frames, the actions, the rewards and the running return
(:class:`Drive`; the stitch explorer plays it back).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from . import envs

__all__ = [
    "ACTION_RULES",
    "EVAL_TRACKS",
    "EVAL_TRACK_SEED",
    "TRACK_SETS",
    "VALIDATION_TRACKS",
    "VALIDATION_TRACK_SEED",
    "Drive",
    "Episode",
    "EpisodeScores",
    "Evaluation",
    "act",
    "action_probabilities",
    "check_actions",
    "evaluate",
    "held_out_tracks",
    "policy_of",
    "record_episode",
    "run_episode",
    "sampling_generator",
    "tracks_of",
]


#: Held-out evaluation tracks: the first 10 are the standard set (the paper used 5).
EVAL_TRACK_SEED = 10_000_000
EVAL_TRACKS: tuple[int, ...] = tuple(range(EVAL_TRACK_SEED, EVAL_TRACK_SEED + 10))


def held_out_tracks(count: int) -> tuple[int, ...]:
    """The first ``count`` held-out tracks (:data:`EVAL_TRACKS`): ``count`` from 1 to their number.

    Raises:
        ValueError: ``count`` is not an integer in that range (a negative count would otherwise
            slice from the end, and a larger one would silently give fewer tracks).
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= len(EVAL_TRACKS):
        raise ValueError(f"the number of held-out tracks must be an integer from 1 to {len(EVAL_TRACKS)}, "
                         f"got {count!r}")
    return EVAL_TRACKS[: int(count)]


#: Validation tracks: for choosing among a run's checkpoints (``relreps select``), never for
#: reporting. A checkpoint chosen on the held-out tracks would carry its lucky draw into the score
#: reported on them; chosen here, its held-out score is as unbiased as a final agent's. No training
#: run, anchor recording, latent drive (:data:`relreps.latent.LATENT_TRACK_SEED`) or evaluation uses them.
VALIDATION_TRACK_SEED = 30_000_000
VALIDATION_TRACKS: tuple[int, ...] = tuple(range(VALIDATION_TRACK_SEED, VALIDATION_TRACK_SEED + 10))

#: The named track sets: ``held-out`` (reported scores) and ``validation`` (choosing checkpoints).
TRACK_SETS: dict[str, tuple[int, ...]] = {"held-out": EVAL_TRACKS, "validation": VALIDATION_TRACKS}


def tracks_of(track_set: str, count: int) -> tuple[int, ...]:
    """The first ``count`` tracks of the named set (:data:`TRACK_SETS`).

    Raises:
        ValueError: an unknown set (naming the choices), or ``count`` not an integer from 1 to the
            set's size.
    """
    if track_set not in TRACK_SETS:
        raise ValueError(f"unknown track set {track_set!r}: expected one of {', '.join(TRACK_SETS)}")
    held_out_tracks(count)  # the same check of the count (both sets have 10 tracks)
    return TRACK_SETS[track_set][: int(count)]


#: How an agent picks each action: ``greedy``, its most probable action (the paper's protocol, and
#: every score of the zoo and its tables), or ``sampled``, drawn from its action probabilities by a
#: generator seeded with the episode's track seed (:func:`sampling_generator`), so a sampled episode
#: is as repeatable as a greedy one and does not depend on the number of processes.
ACTION_RULES: tuple[str, ...] = ("greedy", "sampled")


def sampling_generator(track_seed: int) -> np.random.Generator:
    """The generator of an episode's sampled actions on track ``track_seed``: seeded with the track
    seed and a second word (1), so that its numbers are not the ones the environment drew from the
    same seed to build the track (``numpy.random.default_rng(track_seed)``)."""
    return np.random.default_rng([int(track_seed), 1])


def check_actions(actions: str, policy=None) -> None:
    """Refuse an unknown action rule (naming :data:`ACTION_RULES`), and ``"sampled"`` for a policy
    without action probabilities (a Q-network acts on values; a scripted driver has none)."""
    if actions not in ACTION_RULES:
        raise ValueError(f"unknown actions {actions!r}: expected one of {', '.join(ACTION_RULES)}")
    policy = None if policy is None else policy_of(policy)  # an SB3 model samples with its policy
    if actions == "sampled" and policy is not None and not hasattr(policy, "get_distribution"):
        raise ValueError(f"actions='sampled' needs a policy with action probabilities (an actor-critic, e.g. "
                         f"PPO's); {type(policy).__name__} has none: use actions='greedy'")


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
    actions: str = "greedy"  #: :data:`ACTION_RULES`; a summary names it when it is not greedy

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
            **({} if self.actions == "greedy" else {"actions": self.actions}),
            "episodes": [asdict(e) for e in self.episodes],
        }


class EpisodeScores:
    """``length``, ``max_return`` and ``final_return`` of a record that holds its :class:`Episode`
    (as ``episode``): a recorded drive here, a recorded stitch in :mod:`relreps.showcase`."""

    episode: Episode

    @property
    def length(self) -> int:
        return self.episode.length

    @property
    def max_return(self) -> float:
        return self.episode.max_return

    @property
    def final_return(self) -> float:
        return self.episode.final_return


@dataclass(eq=False)  # arrays inside: compare drives by their fields, not with ==
class Drive(EpisodeScores):
    """One recorded episode (greedy, or sampled with ``record_episode(actions="sampled")``): what a
    person would watch, step by step.

    ``frames[0]`` is the frame after ``reset`` and ``frames[t + 1]`` the frame after action ``t``
    (raw 96x96 RGB, as rendered; the agent saw :func:`relreps.envs.preprocess` of ``frames[t]``
    when it chose ``actions[t]``). ``returns[t]`` is the running return after step ``t``.
    """

    agent: str  #: the agent's name (for a stitched agent, "ENCODER+POLICY")
    color: str  #: the colour driven on (a stitched agent's: its encoder's)
    track_seed: int
    frames: np.ndarray  #: (length + 1, 96, 96, 3) uint8
    actions: np.ndarray  #: (length,) int64, indices into :data:`relreps.envs.ACTIONS`
    rewards: np.ndarray  #: (length,) float64
    returns: np.ndarray  #: (length,) float64, the running return
    episode: Episode  #: the scores, exactly as :func:`run_episode` reports them



def policy_of(agent):
    """The SB3 policy behind ``agent``: a :class:`relreps.zoo.Agent` or an SB3 model (their
    ``.policy``), or a policy itself. Every function that takes "an agent" accepts all three."""
    return getattr(agent, "policy", agent)


def action_probabilities(policy, obs: np.ndarray) -> np.ndarray:
    """An SB3 actor-critic policy's (or model's) action probabilities for one agent-view frame
    (84, 84, 3), as float64 (what :func:`act` samples from with ``rng``)."""
    import torch

    policy = policy_of(policy)
    policy.set_training_mode(False)
    tensor, _ = policy.obs_to_tensor(obs.transpose(2, 0, 1))
    with torch.no_grad():
        probs = policy.get_distribution(tensor).distribution.probs[0]
    return probs.double().cpu().numpy()


def act(policy, obs: np.ndarray, rng: np.random.Generator | None = None) -> int:
    """The action of an SB3 policy (or model) for one agent-view frame (84, 84, 3): greedy, or with
    ``rng`` drawn from :func:`action_probabilities` (one uniform number per action, by the inverse
    of the cumulative probabilities)."""
    if rng is None:
        action, _ = policy.predict(obs.transpose(2, 0, 1), deterministic=True)
        return int(action)
    cumulative = np.cumsum(action_probabilities(policy, obs))
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return min(index, len(cumulative) - 1)


def _play(policy, color, track_seed: int, max_steps: int, record: bool,
          actions: str = "greedy") -> tuple[Episode, dict]:
    """The one episode loop behind :func:`run_episode` and :func:`record_episode`.

    The environment returns raw frames and the agent sees ``envs.preprocess`` of each, exactly what
    ``envs.make_env``'s agent view hands it. With ``record``, keeps frames, actions and rewards.
    ``actions="sampled"``: each action drawn by :func:`sampling_generator` (``track_seed``)."""
    check_actions(actions, policy)
    rng = sampling_generator(track_seed) if actions == "sampled" else None
    env = envs.make_env(color, agent_view=False, max_episode_steps=max_steps)
    frames, actions_taken, rewards, returns = [], [], [], []
    try:
        frame, _ = env.reset(seed=int(track_seed))
        total, best, length, lap = 0.0, -np.inf, 0, False
        while True:
            action = act(policy, envs.preprocess(frame), rng)
            if record:
                frames.append(frame)
                actions_taken.append(action)
            frame, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            best = max(best, total)
            length += 1
            if record:
                rewards.append(float(reward))
                returns.append(total)
            if terminated or truncated:
                lap = bool(info.get("lap_finished", False))
                break
        if record:
            frames.append(frame)
    finally:
        env.close()
    trace = dict(frames=frames, actions=actions_taken, rewards=rewards, returns=returns)
    return Episode(int(track_seed), best, total, length, lap), trace


def run_episode(policy, color, track_seed: int, max_steps: int = envs.MAX_EPISODE_STEPS, *,
                actions: str = "greedy") -> Episode:
    """One episode on track ``track_seed`` in ``color``, greedy or ``actions="sampled"``
    (:data:`ACTION_RULES`)."""
    return _play(policy, color, track_seed, max_steps, record=False, actions=actions)[0]


@contextlib.contextmanager
def _torch_threads(threads: int | None):
    """Run the block on ``threads`` torch intra-op threads (``None``: leave them), restored after."""
    import torch

    before = torch.get_num_threads()
    if threads is None or threads == before:  # nothing to change (nor to restore)
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def record_episode(
    agent,
    color=None,
    track_seed: int = EVAL_TRACKS[0],
    max_steps: int = envs.MAX_EPISODE_STEPS,
    *,
    threads: int | None = 1,
    actions: str = "greedy",
) -> Drive:
    """Play one episode, as :func:`run_episode` does, and record it (:class:`Drive`).

    Args:
        agent: a :class:`relreps.zoo.Agent` (stitched or not), an SB3 model or policy.
        color: the colour to drive on; default: the agent's colour (a stitched agent's is its
            encoder's, as the evaluation protocol drives it).
        track_seed: the track (default: the first held-out evaluation track).
        max_steps: the episode's length limit.
        threads: torch's intra-op threads while driving, restored afterwards (``None``: leave them).
            One frame at a time runs fastest on one thread (as evaluation's worker processes do);
            on a busy 2-core machine, several times faster than two.
        actions: ``"greedy"`` (the protocol) or ``"sampled"`` (:data:`ACTION_RULES`).

    The scores (``drive.episode``) are those :func:`run_episode` gives on the same track.
    """

    if color is None:
        color = getattr(agent, "color", None)
        if color is None:
            raise ValueError("color is required for an agent without a colour (an SB3 model or policy)")
    envs.resolve_color(color)
    policy = policy_of(agent)
    with _torch_threads(threads):
        episode, trace = _play(policy, color, track_seed, max_steps, record=True, actions=actions)
    return Drive(
        agent=str(getattr(agent, "name", type(agent).__name__)),
        color=envs.color_name(color),
        track_seed=int(track_seed),
        frames=np.stack(trace["frames"]).astype(np.uint8, copy=False),
        actions=np.array(trace["actions"], dtype=np.int64),
        rewards=np.array(trace["rewards"], dtype=np.float64),
        returns=np.array(trace["returns"], dtype=np.float64),
        episode=episode,
    )


_WORKER_POLICY = None


def _init_worker(policy) -> None:
    import torch

    global _WORKER_POLICY
    torch.set_num_threads(1)
    _WORKER_POLICY = policy


def _work(args) -> Episode:
    color, seed, max_steps, actions = args
    return run_episode(_WORKER_POLICY, color, seed, max_steps, actions=actions)


def _cpu_copy_if_on_gpu(policy):
    """A forked process cannot use CUDA: a torch policy on a GPU is copied to the CPU for the
    workers (same weights; its optimiser is left out of the copy)."""
    import copy

    import torch

    if not isinstance(policy, torch.nn.Module):
        return policy  # anything with predict(), e.g. a scripted driver
    tensors = [*policy.parameters(), *policy.buffers()]
    if all(t.device.type == "cpu" for t in tensors):
        return policy
    memo = {id(policy.optimizer): None} if getattr(policy, "optimizer", None) is not None else {}
    return copy.deepcopy(policy, memo).to("cpu")


def evaluate(
    agent,
    *,
    color: str | Sequence[int],
    track_seeds: Sequence[int] = EVAL_TRACKS,
    processes: int | None = None,
    max_steps: int = envs.MAX_EPISODE_STEPS,
    actions: str = "greedy",
) -> Evaluation:
    """Play one episode per track seed with ``agent`` (an SB3 model or policy) in ``color``: greedy
    actions (the protocol), or ``actions="sampled"`` (:data:`ACTION_RULES`; refused, before any
    episode, for a policy without action probabilities).
    The same episodes in any number of processes holds for an agent on the CPU (as
    :func:`relreps.zoo.load` gives it): worker processes drive a CPU copy of an agent on a GPU.

    ``processes`` (default: one per core, at most one per track) run the episodes in parallel;
    they receive the agent by ``fork``, so nothing is pickled. ``processes=1`` runs them here. Either way
    an episode runs on one torch thread (batch-1 inference: the same scores, and faster than two).
    """
    envs.resolve_color(color)
    seeds = [int(s) for s in track_seeds]
    if not seeds:
        raise ValueError("track_seeds is empty")
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
    if processes is not None and (isinstance(processes, bool) or not isinstance(processes, (int, np.integer))
                                  or processes < 1):
        raise ValueError(f"processes must be an integer >= 1 (or None: one per core), got {processes!r}")
    policy = policy_of(agent)
    check_actions(actions, policy)
    n = min(len(seeds), processes or os.cpu_count() or 1)
    jobs = [(color, s, max_steps, actions) for s in seeds]
    if n <= 1 or "fork" not in mp.get_all_start_methods():
        with _torch_threads(1):  # one frame at a time: one thread, as in the workers (2x faster when busy)
            episodes = [run_episode(policy, color, s, max_steps, actions=actions) for s in seeds]
    else:
        policy = _cpu_copy_if_on_gpu(policy)
        with mp.get_context("fork").Pool(n, initializer=_init_worker, initargs=(policy,)) as pool:
            episodes = pool.map(_work, jobs, chunksize=1)
    return Evaluation(color=envs.color_name(color), episodes=episodes, actions=actions)
