"""The tiny training run the tests share: a relative PPO agent on red, a few dozen steps, small
networks, no evaluation during training; override any field."""

from __future__ import annotations

from relreps.training import TrainConfig


def tiny(**kw) -> TrainConfig:
    """A :class:`relreps.training.TrainConfig` of a tiny run (seconds on a CPU), with ``kw`` overriding it."""
    base = dict(algo="ppo", representation="relative", color="red", seed=3, total_steps=32, n_envs=2,
                workers=0, n_anchors=16, latent_dim=16, head_dim=16, eval_every=0, eval_tracks=(10_000_000,),
                eval_max_steps=10, checkpoint_every=32, hyperparameters={"n_steps": 16})
    return TrainConfig(**{**base, **kw})
