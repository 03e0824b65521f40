"""A Stable-Baselines3 ``VecEnv`` that runs several environments per worker process.

SB3's ``SubprocVecEnv`` starts one process per environment: 16 environments on a 2-core machine
are 16 processes taking turns. :class:`ChunkedSubprocVecEnv` starts one process per core instead
(or as many as asked), each stepping its share of the environments in a ``DummyVecEnv``. Results
are the same as a ``DummyVecEnv`` of all the environments: environment ``i`` keeps index ``i``,
seeds, auto-reset and ``terminal_observation`` behave as in SB3.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper

__all__ = [
    "ChunkedSubprocVecEnv",
]


def _worker(remote, parent_remote, fns: CloudpickleWrapper) -> None:
    import signal

    # Ctrl-C and SIGTERM are the training process's to handle (it saves a checkpoint, then closes the
    # workers); a worker ends when told to or when the training process is gone (its pipe closes).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent_remote.close()
    venv = DummyVecEnv(fns.var)
    try:
        while True:
            cmd, data = remote.recv()
            if cmd == "step":
                venv.step_async(data)
                remote.send(venv.step_wait())
            elif cmd == "reset":
                venv._seeds, venv._options = data
                obs = venv.reset()
                remote.send((obs, venv.reset_infos))
            elif cmd == "get_attr":
                remote.send(venv.get_attr(*data))
            elif cmd == "set_attr":
                venv.set_attr(*data)
                remote.send(None)
            elif cmd == "env_method":
                name, args, kwargs, idx = data
                remote.send(venv.env_method(name, *args, indices=idx, **kwargs))
            elif cmd == "is_wrapped":
                remote.send(venv.env_is_wrapped(*data))
            elif cmd == "get_images":
                remote.send(venv.get_images())
            elif cmd == "spaces":
                remote.send((venv.observation_space, venv.action_space, venv.metadata, venv.render_mode))
            elif cmd == "close":
                break
            else:
                raise NotImplementedError(f"unknown command {cmd!r}")
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass
    finally:
        venv.close()
        remote.close()


class ChunkedSubprocVecEnv(VecEnv):
    """``len(env_fns)`` environments in ``n_workers`` processes (contiguous chunks, in order)."""

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        n_workers: int,
        start_method: str | None = None,
    ):
        n = len(env_fns)
        if n < 1 or not 1 <= n_workers <= n:
            raise ValueError(f"need 1 <= n_workers <= number of environments ({n}); got {n_workers}")
        bounds = np.linspace(0, n, n_workers + 1).round().astype(int)
        self._chunks = [range(bounds[w], bounds[w + 1]) for w in range(n_workers)]
        self.n_workers = n_workers
        self._where = [(w, i - c.start) for w, c in enumerate(self._chunks) for i in c]
        if start_method is None:
            start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        ctx: Any = mp.get_context(start_method)
        pipes = [ctx.Pipe() for _ in range(n_workers)]
        self.remotes = [p[0] for p in pipes]
        self.processes = []
        for (remote, work_remote), chunk in zip(pipes, self._chunks):
            fns = CloudpickleWrapper([env_fns[i] for i in chunk])
            proc = ctx.Process(target=_worker, args=(work_remote, remote, fns), daemon=True)
            proc.start()
            self.processes.append(proc)
            work_remote.close()
        self.closed = False
        self.waiting = False
        self.remotes[0].send(("spaces", None))
        obs_space, act_space, metadata, render_mode = self.remotes[0].recv()
        super().__init__(n, obs_space, act_space)
        self.metadata, self.render_mode = metadata, render_mode

    # -- stepping ---------------------------------------------------------------------------------
    def step_async(self, actions: np.ndarray) -> None:
        for remote, chunk in zip(self.remotes, self._chunks):
            remote.send(("step", actions[chunk.start : chunk.stop]))
        self.waiting = True

    def step_wait(self):
        results = [remote.recv() for remote in self.remotes]
        self.waiting = False
        obs, rews, dones, infos = zip(*results)
        return (
            np.concatenate(obs),
            np.concatenate(rews),
            np.concatenate(dones),
            [info for chunk in infos for info in chunk],
        )

    def reset(self):
        for remote, chunk in zip(self.remotes, self._chunks):
            remote.send(("reset", ([self._seeds[i] for i in chunk], [self._options[i] for i in chunk])))
        results = [remote.recv() for remote in self.remotes]
        obs, infos = zip(*results)
        self.reset_infos = [info for chunk in infos for info in chunk]
        self._reset_seeds()
        self._reset_options()
        return np.concatenate(obs)

    def close(self) -> None:
        if self.closed:
            return
        if self.waiting:
            for remote in self.remotes:
                remote.recv()
        for remote in self.remotes:
            remote.send(("close", None))
        for proc in self.processes:
            proc.join()
        self.closed = True

    # -- per-environment access -------------------------------------------------------------------
    def _ask(self, cmd: str, indices, make_data: Callable[[list[int]], Any]) -> list:
        """Send ``cmd`` to each worker holding some of ``indices`` (with their local indices);
        return the answers in the order of ``indices``."""
        idx = list(self._get_indices(indices))
        by_worker: dict[int, list[int]] = {}
        for i in idx:
            w, local = self._where[i]
            by_worker.setdefault(w, []).append(local)
        for w, locals_ in by_worker.items():
            self.remotes[w].send((cmd, make_data(locals_)))
        answers = {w: iter(self.remotes[w].recv() or [None] * len(locals_)) for w, locals_ in by_worker.items()}
        return [next(answers[self._where[i][0]]) for i in idx]

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return self._ask("get_attr", indices, lambda local: (attr_name, local))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        self._ask("set_attr", indices, lambda local: (attr_name, value, local))

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        return self._ask("env_method", indices, lambda local: (method_name, method_args, method_kwargs, local))

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return self._ask("is_wrapped", indices, lambda local: (wrapper_class, local))

    def get_images(self) -> Sequence[np.ndarray | None]:
        for remote in self.remotes:
            remote.send(("get_images", None))
        return [img for remote in self.remotes for img in remote.recv()]
