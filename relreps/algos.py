"""Algorithm presets: PPO with CleanRL's Atari defaults, Double DQN, QR-DQN; and the anchor update.

- :data:`PPO_DEFAULTS`: CleanRL's ``ppo_atari.py`` hyper-parameters (Huang et al., 2022), which the
  paper uses "with default hyper-parameters": 128 steps per environment per rollout, 4 minibatches,
  4 epochs, learning rate 2.5e-4 annealed linearly to 0, Adam eps 1e-5, clip 0.1 (value clip too),
  entropy 0.01, value 0.5, gamma 0.99, GAE 0.95, gradient norm 0.5, normalised advantages.
- :class:`DoubleDQN`: SB3's DQN with the Double DQN target (van Hasselt et al., 2016): the next
  action is chosen by the online network and valued by the target network. (SB3's DQN takes the
  target network's maximum, which over-estimates.)
- QR-DQN from sb3-contrib, with the same head (:class:`HeadQRDQNPolicy`).
- :class:`TargetAnchorsMixin`: the DQN family's target network is a copy of the online network,
  anchor embeddings included (:class:`AnchoredDQN`, :class:`DoubleDQN`, :class:`AnchoredQRDQN`).
- :class:`AnchorUpdateCallback`: moves the relative encoders' anchor embeddings as training goes
  (the online network's; a DQN target takes them at each target update).
- :class:`PrecisionPPO`: SB3's PPO whose update (and rollout) may run under autocast
  (:mod:`relreps.precision`); in float32 it is SB3's PPO unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from sb3_contrib import QRDQN
from sb3_contrib.qrdqn.policies import QRDQNPolicy, QuantileNetwork
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import explained_variance
from torch import nn

from . import precision as _precision
from .extractors import Head, HeadActorCriticPolicy, HeadDimMixin, HeadDQNPolicy, RelativeEncoder

__all__ = [
    "ALGORITHMS",
    "ANCHOR_UPDATES",
    "DQN_ANCHOR_APPLY_EVERY",
    "DQN_DEFAULTS",
    "PPO_DEFAULTS",
    "REGISTRY",
    "Algorithm",
    "AnchorUpdateCallback",
    "AnchoredDQN",
    "AnchoredQRDQN",
    "DoubleDQN",
    "HeadQRDQNPolicy",
    "PhaseThreads",
    "PrecisionPPO",
    "TargetAnchorsMixin",
    "anchor_update_callback",
    "linear_schedule",
    "make_model",
    "relative_encoders",
    "relative_encoders_in",
    "target_network",
    "trained_relative_encoders",
]



def linear_schedule(start: float):
    """``start`` annealed linearly to 0 over training (SB3 passes the remaining progress)."""

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * start

    schedule.start = start  # type: ignore[attr-defined]
    return schedule


#: CleanRL ppo_atari.py defaults, per environment step counts (batch = n_envs * n_steps / 4).
PPO_DEFAULTS: dict = dict(
    n_steps=128,
    n_minibatches=4,
    n_epochs=4,
    learning_rate=2.5e-4,
    anneal_lr=True,
    clip_range=0.1,
    clip_range_vf=0.1,
    ent_coef=0.01,
    vf_coef=0.5,
    gamma=0.99,
    gae_lambda=0.95,
    max_grad_norm=0.5,
    normalize_advantage=True,
    adam_eps=1e-5,
)

#: The DQN-family preset (Double DQN, DQN, QR-DQN). The RL Baselines3 Zoo's Atari settings for
#: DQN (themselves Nature DQN's, with Adam): learning rate 1e-4, batch 32, a 100,000-transition
#: buffer (84x84x3 frames, observations and next observations: about 4.2 GB), gamma 0.99, epsilon
#: decayed linearly to 0.01 over the first 10% of the run, gradients clipped at norm 10, no n-step
#: returns; the target network copied every 1,000 transitions (SB3 counts over all environments).
#: Adapted to 16 environments: Atari's one gradient step per 4 transitions is kept as 4 gradient
#: steps per vectorised step of 16 transitions (``train_freq=1``, ``gradient_steps=4``; with the
#: Zoo's ``train_freq=4, gradient_steps=1`` 16 environments would make one step per 64), and
#: learning starts after 50,000 transitions (the Zoo's 100,000 is for 10M-step Atari runs).
DQN_DEFAULTS: dict = dict(
    learning_rate=1e-4,
    buffer_size=100_000,
    learning_starts=50_000,
    batch_size=32,
    gamma=0.99,
    train_freq=1,
    gradient_steps=4,
    target_update_interval=1000,
    exploration_fraction=0.1,
    exploration_final_eps=0.01,
    max_grad_norm=10.0,
)


def target_network(model) -> nn.Module | None:
    """The DQN family's target network (DQN's ``q_net_target``, QR-DQN's ``quantile_net_target``),
    or ``None`` for a model without one (PPO)."""
    for name in ("q_net_target", "quantile_net_target"):
        net = getattr(model, name, None)
        if net is not None:
            return net
    return None


def _online_network(model) -> nn.Module:
    return model.q_net if hasattr(model, "q_net") else model.quantile_net


class TargetAnchorsMixin:
    """The target network as a copy of the online network, its anchors included.

    SB3's DQN family copies the online network's parameters into the target network every
    ``target_update_interval`` transitions (with ``tau=1``; a Polyak average otherwise), and its
    batch-norm statistics, but not other buffers: a relative encoder's anchor embeddings would stay
    the target encoder's own, embedded or averaged with weights that are not the ones it was just
    given. Here they are copied (averaged with the same ``tau``) at each target update, with the
    "embedded" flag; between updates the target's anchors do not move (the anchor update callback
    moves the online network's only, :func:`trained_relative_encoders`), so the target is the whole
    online network as it was at the last update.
    """

    def _setup_model(self) -> None:
        super()._setup_model()  # type: ignore[misc]
        pairs = zip(relative_encoders_in(_online_network(self)), relative_encoders_in(target_network(self)),
                    strict=True)
        self._anchor_pairs = list(pairs)

    def _excluded_save_params(self) -> list[str]:
        # the encoder pairs (anchor frames included) are rebuilt by _setup_model; an SB3 zip must not pickle them
        return [*super()._excluded_save_params(), "_anchor_pairs"]  # type: ignore[misc]

    def _on_step(self) -> None:
        due = (self._n_calls + 1) % max(self.target_update_interval // self.n_envs, 1) == 0  # type: ignore[attr-defined]
        super()._on_step()  # type: ignore[misc]  # counts the call; copies the parameters when due
        if due:
            self.sync_target_anchors()

    @th.no_grad()
    def sync_target_anchors(self) -> None:
        """Copy (``tau=1``) or average the online encoders' anchor embeddings into the target's."""
        tau = float(self.tau)  # type: ignore[attr-defined]
        for online, target in self._anchor_pairs:
            if tau == 1.0:
                target.anchor_embeddings.copy_(online.anchor_embeddings)
            else:
                target.anchor_embeddings.mul_(1.0 - tau).add_(online.anchor_embeddings, alpha=tau)
            target.anchors_ready.copy_(online.anchors_ready)


class AnchoredDQN(TargetAnchorsMixin, DQN):
    """SB3's DQN whose target network takes the online network's anchors (:class:`TargetAnchorsMixin`)."""


class AnchoredQRDQN(TargetAnchorsMixin, QRDQN):
    """sb3-contrib's QR-DQN whose target network takes the online network's anchors
    (:class:`TargetAnchorsMixin`)."""


class DoubleDQN(AnchoredDQN):
    """SB3's DQN with the Double DQN target: ``r + gamma * Q_target(s', argmax_a Q_online(s', a))``."""

    def td_target(self, replay_data, discounts) -> th.Tensor:
        """The Double DQN target for a replay batch (no gradient)."""
        with th.no_grad():
            next_actions = self.q_net(replay_data.next_observations).argmax(dim=1, keepdim=True)
            next_q = th.gather(self.q_net_target(replay_data.next_observations), 1, next_actions)
            return replay_data.rewards + (1 - replay_data.dones) * discounts * next_q

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        # SB3's DQN.train (stable_baselines3/dqn/dqn.py), with the target from td_target().
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            target_q_values = self.td_target(replay_data, discounts)
            current_q_values = th.gather(self.q_net(replay_data.observations), 1, replay_data.actions.long())
            loss = F.smooth_l1_loss(current_q_values, target_q_values)
            losses.append(loss.item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))


class PrecisionPPO(PPO):
    """SB3's PPO with its update under autocast when ``precision`` is ``"bf16"`` or ``"fp16"``.

    ``precision``: the resolved autocast of the update's forward pass (:func:`relreps.precision.resolve`);
    ``"fp16"`` scales the loss with a gradient scaler (unscaled before the gradient-norm clip; a
    step whose gradients overflow is skipped). With ``"fp32"``, :meth:`train` is SB3's own, so the
    float32 path is SB3's PPO exactly. The rollout's autocast is the policy's
    ``rollout_precision`` (:class:`relreps.extractors.HeadActorCriticPolicy`).
    """

    precision: str = "fp32"
    _scaler = None

    def train(self) -> None:
        if self.precision == "fp32":
            return super().train()
        return self._train_autocast()

    def _train_autocast(self) -> None:
        # SB3's PPO.train (stable_baselines3/ppo/ppo.py, 2.x), with the forward pass under autocast
        # and, for float16, a gradient scaler around backward, clip and step.
        device_type = self.device.type
        if self.precision == "fp16" and self._scaler is None:
            self._scaler = th.amp.GradScaler(device_type)
        scaler = self._scaler if self.precision == "fp16" else None
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)  # type: ignore[operator]
        entropy_losses, pg_losses, value_losses, clip_fractions = [], [], [], []
        continue_training = True
        for _epoch in range(self.n_epochs):
            approx_kl_divs = []
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    actions = rollout_data.actions.long().flatten()
                with _precision.autocast(device_type, self.precision):
                    values, log_prob, entropy = self.policy.evaluate_actions(rollout_data.observations, actions)
                values, log_prob = values.float().flatten(), log_prob.float()
                entropy = None if entropy is None else entropy.float()
                advantages = rollout_data.advantages
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                ratio = th.exp(log_prob - rollout_data.old_log_prob)
                policy_loss_1 = advantages * ratio
                policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -th.min(policy_loss_1, policy_loss_2).mean()
                pg_losses.append(policy_loss.item())
                clip_fractions.append(th.mean((th.abs(ratio - 1) > clip_range).float()).item())
                if self.clip_range_vf is None:
                    values_pred = values
                else:
                    values_pred = rollout_data.old_values + th.clamp(
                        values - rollout_data.old_values, -clip_range_vf, clip_range_vf
                    )
                value_loss = F.mse_loss(rollout_data.returns, values_pred)
                value_losses.append(value_loss.item())
                entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
                entropy_losses.append(entropy_loss.item())
                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
                with th.no_grad():
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()
                    approx_kl_divs.append(approx_kl_div)
                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    break
                self.policy.optimizer.zero_grad()
                if scaler is None:
                    loss.backward()
                    th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                    self.policy.optimizer.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.unscale_(self.policy.optimizer)
                    th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                    scaler.step(self.policy.optimizer)
                    scaler.update()
            self._n_updates += 1
            if not continue_training:
                break
        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if self.clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)
        if scaler is not None:
            self.logger.record("train/grad_scale", scaler.get_scale())


class _HeadQuantileNetwork(QuantileNetwork):
    def __init__(self, *args, head_dim: int = 512, **kwargs):
        super().__init__(*args, **kwargs)
        out = int(self.action_space.n) * self.n_quantiles
        self.quantile_net = nn.Sequential(*Head(self.features_dim, head_dim).net, nn.Linear(head_dim, out))


class HeadQRDQNPolicy(HeadDimMixin, QRDQNPolicy):
    """sb3-contrib's QR-DQN policy with :class:`~relreps.extractors.Head` before its last layer."""

    def make_quantile_net(self) -> QuantileNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return _HeadQuantileNetwork(**net_args, head_dim=self.head_dim).to(self.device)


def relative_encoders_in(module: nn.Module | None) -> list[RelativeEncoder]:
    """Every relative encoder in a module, once each, in module order."""
    seen: dict[int, RelativeEncoder] = {}
    for m in module.modules() if module is not None else ():
        if isinstance(m, RelativeEncoder):
            seen[id(m)] = m
    return list(seen.values())


def relative_encoders(model) -> list[RelativeEncoder]:
    """Every relative encoder in a model's policy (PPO: one; DQN family: online and target)."""
    return relative_encoders_in(model.policy)


def trained_relative_encoders(model) -> list[RelativeEncoder]:
    """The relative encoders whose anchors training moves: all but the target network's, which
    takes the online network's at each target update (:class:`TargetAnchorsMixin`)."""
    frozen = {id(m) for m in relative_encoders_in(target_network(model))}
    return [e for e in relative_encoders(model) if id(e) not in frozen]


class PhaseThreads(BaseCallback):
    """Torch threads per phase of an on-policy algorithm: ``rollout`` while it collects a rollout,
    ``update`` from the rollout's end (its update) to the next rollout's start. Callbacks before this
    one in a list run their rollout-start work (e.g. the anchor update) with ``update`` threads.
    Used by ``relreps train`` (:func:`relreps.training.rollout_threads`) and ``relreps bench train``
    (``threads=R/U``)."""

    def __init__(self, rollout: int, update: int):
        super().__init__()
        self.rollout, self.update = rollout, update

    def _on_rollout_start(self) -> None:
        th.set_num_threads(self.rollout)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        th.set_num_threads(self.update)


class AnchorUpdateCallback(BaseCallback):
    """Moves the anchor embeddings of the relative encoders that training updates
    (:func:`trained_relative_encoders`: all but a DQN target network's) during training.

    PPO, ``per_gradient_step=True`` (the default, the authors' code): the moving average steps once
    per gradient step, as their trainer does before every minibatch. The steps of one PPO update
    (4 epochs x 4 minibatches = 16, counted on the optimiser) are applied together at the start
    of the next rollout, ``update_anchors(steps=16)``: the same average if the encoder stood still
    within the update, for one embedding of the anchors instead of 16 (each costs more than a
    minibatch's forward pass). A rollout and the update that learns from it see the same anchors.

    PPO, ``per_gradient_step=False``: one step of the average per PPO update (``relreps train
    --anchor-update rollout``). With ``alpha=0.999`` and 977 updates in 2M steps, 0.999**977 = 38% of the
    anchor embeddings is still the untrained encoder's at the end: the relative representation
    then depends on each agent's random initialisation, and stitching fails (the book's lab notes).

    DQN family, ``per_gradient_step=True`` with ``apply_every=16`` (:func:`anchor_update_callback`):
    the same average, one step per gradient step, applied in whole blocks of 16 at a rollout's start
    (:data:`DQN_ANCHOR_APPLY_EVERY`: every 4 vectorised steps of the preset), so the anchors are
    embedded once per 16 gradient steps as in PPO. The steps are counted by the model's own
    ``_n_updates`` (the DQN family's gradient steps, saved in a checkpoint; PPO's counts epochs):
    after this callback has run at a rollout's start, ``16 * (_n_updates // 16)`` steps have been
    applied, whatever the gradient steps per vectorised step, so a resumed run takes up exactly the
    steps left over (the callback runs before the checkpoint is written).

    ``every_steps``: every so many environment steps, one step of the average (the DQN family with
    ``anchor_update="rollout"``).
    """

    def __init__(self, every_steps: int | None = None, per_gradient_step: bool = True, verbose: int = 0, *,
                 apply_every: int = 1):
        super().__init__(verbose)
        if apply_every < 1:
            raise ValueError(f"apply_every must be >= 1, got {apply_every}")
        self.every_steps = every_steps
        self.per_gradient_step = per_gradient_step
        self.apply_every = apply_every
        self._last = 0
        self._gradient_steps = 0  # since the last anchor update (PPO)
        self._blocks = 0  # blocks of apply_every gradient steps applied (the DQN family)
        self._hook: Any = None  # the optimizer hook's handle while training

    def _update(self, steps: int = 1) -> None:
        for enc in trained_relative_encoders(self.model):
            enc.update_anchors(steps)

    def _count(self, *_args) -> None:
        self._gradient_steps += 1

    def _on_training_start(self) -> None:
        if self.every_steps is None and self.per_gradient_step:
            if self.apply_every > 1:  # blocks already applied (a resumed run's too), from the model's count
                self._blocks = int(self.model._n_updates) // self.apply_every
            else:
                self._hook = self.model.policy.optimizer.register_step_post_hook(self._count)

    def _on_training_end(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _on_rollout_start(self) -> None:
        if self.every_steps is not None:
            return
        if self.per_gradient_step and self.apply_every > 1:
            blocks = int(self.model._n_updates) // self.apply_every
            if blocks > self._blocks:
                self._update(self.apply_every * (blocks - self._blocks))
                self._blocks = blocks
        elif self.per_gradient_step:
            steps, self._gradient_steps = self._gradient_steps, 0
            if steps:
                self._update(steps)
        elif self.model._n_updates > 0:
            self._update()

    def _on_step(self) -> bool:
        if self.every_steps is not None and self.num_timesteps - self._last >= self.every_steps:
            self._last = self.num_timesteps
            self._update()
        return True


#: How the anchor embeddings' moving average steps (:func:`anchor_update_callback`).
ANCHOR_UPDATES = ("gradient-step", "rollout")

#: The DQN family's anchor update (:func:`anchor_update_callback`): the anchors are embedded again
#: once per this many gradient steps (PPO: once per update of 4 epochs x 4 minibatches = 16).
DQN_ANCHOR_APPLY_EVERY = 16


def anchor_update_callback(algo: str, model, anchor_update: str = "gradient-step") -> AnchorUpdateCallback:
    """The callback that moves a relative model's anchor embeddings in training, and in
    ``relreps bench train``. ``anchor_update="gradient-step"`` (the authors'): one step of the
    average per gradient step, applied at a rollout's start (PPO: after each update; the DQN family:
    once :data:`DQN_ANCHOR_APPLY_EVERY` gradient steps have gathered). ``"rollout"``: one step per
    PPO update, or for the DQN family one per ``target_update_interval`` environment steps."""
    if algo not in REGISTRY:
        raise ValueError(f"unknown algorithm {algo!r}: expected one of {ALGORITHMS}")
    if anchor_update not in ANCHOR_UPDATES:
        raise ValueError(f"unknown anchor_update {anchor_update!r}: expected one of {ANCHOR_UPDATES}")
    if anchor_update == "gradient-step":
        return AnchorUpdateCallback(apply_every=1 if algo == "ppo" else DQN_ANCHOR_APPLY_EVERY)
    return AnchorUpdateCallback(every_steps=None if algo == "ppo" else model.target_update_interval,
                                per_gradient_step=False)


def make_model(
    algo: str,
    env,
    *,
    encoder_class: type,
    encoder_kwargs: dict,
    head_dim: int = 512,
    seed: int | None = None,
    device: str = "auto",
    tensorboard_log: str | None = None,
    precision: str = "fp32",
    rollout_precision: str | None = None,
    **overrides,
):
    """An untrained SB3 model of ``algo`` with our encoder and head, and the preset defaults.

    ``overrides`` replace preset hyper-parameters (e.g. ``n_steps=8`` for a smoke test).
    ``precision``: the PPO update's autocast, resolved (``"fp32"``, ``"bf16"`` or ``"fp16"``,
    :func:`relreps.precision.resolve`); ``rollout_precision`` that of the rollout's forward pass
    (default: the same). The DQN family trains in float32 only.
    """
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}: expected one of {ALGORITHMS}")
    rollout_precision = precision if rollout_precision is None else rollout_precision
    for p in (precision, rollout_precision):
        if p not in _precision.RESOLVED:
            raise ValueError(f"unknown resolved precision {p!r}: expected one of {_precision.RESOLVED}")
    if not REGISTRY[algo].mixed_precision and (precision, rollout_precision) != ("fp32", "fp32"):
        mixed = [name for name, spec in REGISTRY.items() if spec.mixed_precision]
        raise ValueError(f"mixed precision is implemented for {', '.join(mixed)} only; {algo} trains in 'fp32'")
    policy_kwargs = dict(
        features_extractor_class=encoder_class,
        features_extractor_kwargs=dict(encoder_kwargs),
        head_dim=head_dim,
    )
    common: dict[str, Any] = dict(seed=seed, device=device, tensorboard_log=tensorboard_log, verbose=0)
    if algo == "ppo":
        hp = {**PPO_DEFAULTS, **overrides}
        unknown = set(hp) - set(PPO_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown PPO settings {sorted(unknown)}; known: {sorted(PPO_DEFAULTS)}")
        batch = env.num_envs * hp["n_steps"]
        if batch % hp["n_minibatches"]:
            raise ValueError(f"n_envs * n_steps ({batch}) must divide into {hp['n_minibatches']} minibatches")
        lr = linear_schedule(hp["learning_rate"]) if hp["anneal_lr"] else hp["learning_rate"]
        policy_kwargs["optimizer_kwargs"] = dict(eps=hp["adam_eps"])
        model = PrecisionPPO(
            HeadActorCriticPolicy,
            env,
            learning_rate=lr,
            n_steps=hp["n_steps"],
            batch_size=batch // hp["n_minibatches"],
            n_epochs=hp["n_epochs"],
            gamma=hp["gamma"],
            gae_lambda=hp["gae_lambda"],
            clip_range=hp["clip_range"],
            clip_range_vf=hp["clip_range_vf"],
            normalize_advantage=hp["normalize_advantage"],
            ent_coef=hp["ent_coef"],
            vf_coef=hp["vf_coef"],
            max_grad_norm=hp["max_grad_norm"],
            policy_kwargs=policy_kwargs,
            **common,
        )
        model.precision = precision
        model.policy.rollout_precision = rollout_precision  # type: ignore[assignment]  # HeadActorCriticPolicy's
        return model
    hp = {**DQN_DEFAULTS, **overrides}
    unknown = set(hp) - set(DQN_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown DQN settings {sorted(unknown)}; known: {sorted(DQN_DEFAULTS)}")
    spec = REGISTRY[algo]
    return spec.model(spec.policy, env, policy_kwargs=policy_kwargs, optimize_memory_usage=False, **hp, **common)


@dataclass(frozen=True)
class Algorithm:
    """One trainable algorithm: what :func:`make_model` builds, what an agent file's policy is, and
    what an SB3 zip (:func:`relreps.zoo.export_sb3`) loads with."""

    model: type  #: the SB3 model class training uses
    policy: type  #: its policy class (our encoder and head)
    defaults: dict  #: the preset hyper-parameters
    export: type | None  #: the SB3 class an exported zip loads with (``None``: no export)
    mixed_precision: bool = False  #: whether ``precision`` other than fp32 is implemented


#: Every algorithm, by name: the one list the configuration, the command line and the zoo read.
REGISTRY: dict[str, Algorithm] = {
    "ppo": Algorithm(PrecisionPPO, HeadActorCriticPolicy, PPO_DEFAULTS, export=PPO, mixed_precision=True),
    "ddqn": Algorithm(DoubleDQN, HeadDQNPolicy, DQN_DEFAULTS, export=DoubleDQN),
    "dqn": Algorithm(AnchoredDQN, HeadDQNPolicy, DQN_DEFAULTS, export=DQN),
    "qrdqn": Algorithm(AnchoredQRDQN, HeadQRDQNPolicy, DQN_DEFAULTS, export=None),
}
ALGORITHMS = tuple(REGISTRY)
