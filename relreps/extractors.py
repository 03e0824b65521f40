"""Encoders (Stable-Baselines3 features extractors) and the policy head every agent shares.

An agent = an **encoder** (observation -> latent) + a **head** (latent -> actions / values).

- :class:`AbsoluteEncoder`: the Nature-CNN convolutions (Mnih et al., 2015) on one 84x84 RGB frame,
  flattened (64 x 7 x 7 = 3136), optionally followed by ``Linear(3136, latent_dim)`` + ReLU.
- :class:`RelativeEncoder`: the same network, whose output is replaced by the cosine similarities of
  the embedding to the embeddings of fixed anchor frames (:func:`relreps.projection.relative_projection`).
  The anchor embeddings never enter the autograd graph. They follow the encoder during training by
  :meth:`RelativeEncoder.update_anchors`: re-embedded (``alpha=0``) or an exponential moving
  average ``A <- alpha A + (1 - alpha) E(anchor frames)`` per gradient step, as in the authors'
  code (default ``alpha=0.999``, which their later code found to train best; training applies the
  16 steps of a PPO update at once, :class:`relreps.algos.AnchorUpdateCallback`). They are a
  buffer, saved with the agent. Rollouts never re-embed the anchors.
- :class:`Head` (LayerNorm -> ReLU -> Linear -> ReLU) with :class:`HeadActorCriticPolicy` (PPO:
  shared head, then actor and critic layers, as CleanRL) and :class:`HeadDQNPolicy` (DQN family:
  head, then a Q layer): any head takes any encoder of the right output size.

Observations reach an extractor as SB3 passes images: channels first, scaled to [0, 1]. Anchor
frames (``(N, 84, 84, 3)`` uint8, as :mod:`relreps.anchors` stores them) take the same path.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from .anchors import DEFAULT_SET
from .envs import OBS_SIZE
from .evaluation import policy_of
from .precision import float32
from .projection import DEFAULT_STANDARDIZE, check_options, prepare_anchors, project

__all__ = [
    "CONV_DIM",
    "LATENT_NORMS",
    "LATENT_NORM_DEFAULTS",
    "REPRESENTATIONS",
    "AbsoluteEncoder",
    "Float32LayerNorm",
    "Float32Linear",
    "Head",
    "HeadActorCriticPolicy",
    "HeadDQNPolicy",
    "HeadDimMixin",
    "RelativeEncoder",
    "check_latent_norm",
    "embed",
    "encoder_of",
    "frames_to_tensor",
]


#: The two kinds of encoder (and of agent): the method first.
REPRESENTATIONS = ("relative", "absolute")
CONV_DIM = 64 * 7 * 7  # the Nature-CNN convolutions' flattened output on 84x84 frames


#: ``latent_norm`` choices: none (no normalisation), a LayerNorm without parameters, or an RMS norm
#: without parameters (each latent divided by its root mean square: a unit at 0 stays at 0).
LATENT_NORMS = (None, "layer", "rms")
#: Each encoder's default ``latent_norm`` (``TrainConfig.latent_norm="auto"`` resolves to it): a relative
#: encoder normalises its latent (without it the encoder grows away from its lagging anchors: the
#: book's lab notes), an absolute one does not (the shipped absolute agents).
LATENT_NORM_DEFAULTS: dict[str, str | None] = {"relative": "layer", "absolute": None}


def check_latent_norm(latent_norm) -> None:
    """Refuse a ``latent_norm`` that is not one of :data:`LATENT_NORMS`."""
    if latent_norm not in LATENT_NORMS:
        raise ValueError(f"unknown latent_norm {latent_norm!r}: expected one of {LATENT_NORMS}")


def _check_space(observation_space: spaces.Space) -> None:
    ok = (
        isinstance(observation_space, spaces.Box)
        and observation_space.shape in ((3, OBS_SIZE, OBS_SIZE), (OBS_SIZE, OBS_SIZE, 3))
        and observation_space.dtype == np.uint8
    )
    if not ok:
        raise ValueError(
            f"the encoders take one {OBS_SIZE}x{OBS_SIZE} RGB uint8 frame (as relreps.envs.make_env "
            f"returns it); got {observation_space}"
        )


def _trunk(latent_dim: int | None) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = [
        nn.Conv2d(3, 32, kernel_size=8, stride=4),
        nn.ReLU(),
        nn.Conv2d(32, 64, kernel_size=4, stride=2),
        nn.ReLU(),
        nn.Conv2d(64, 64, kernel_size=3, stride=1),
        nn.ReLU(),
        nn.Flatten(),
    ]
    dim = CONV_DIM
    if latent_dim is not None:
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1 or None, got {latent_dim}")
        layers += [nn.Linear(CONV_DIM, latent_dim), nn.ReLU()]
        dim = latent_dim
    net = nn.Sequential(*layers)
    with torch.no_grad():  # the output size, found by one dummy forward pass
        found = net(torch.zeros(1, 3, OBS_SIZE, OBS_SIZE)).shape[1]
    assert found == dim
    return net, dim


def frames_to_tensor(frames: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(N, 84, 84, 3)`` uint8 frames -> ``(N, 3, 84, 84)`` float in [0, 1]: the path SB3 takes."""
    t = frames.to(device) if isinstance(frames, torch.Tensor) else torch.as_tensor(np.asarray(frames), device=device)
    if t.dtype != torch.uint8 or t.ndim != 4 or tuple(t.shape[1:]) != (OBS_SIZE, OBS_SIZE, 3):
        raise ValueError(f"expected uint8 frames of shape (N, {OBS_SIZE}, {OBS_SIZE}, 3); got {t.dtype} {tuple(t.shape)}")
    return t.permute(0, 3, 1, 2).float() / 255.0


def encoder_of(model) -> BaseFeaturesExtractor:
    """The features extractor that ``model``'s ``predict`` uses.

    ``model`` is a :class:`relreps.zoo.Agent`, an SB3 model, an SB3 policy or an extractor. PPO
    keeps ``features_extractor``, ``pi_features_extractor`` and ``vf_features_extractor``, and
    ``predict`` uses ``pi_features_extractor``; the DQN family acts with ``q_net``'s (QR-DQN:
    ``quantile_net``'s).
    """
    if isinstance(model, BaseFeaturesExtractor):
        return model
    policy = policy_of(model)
    for found in (getattr(policy, "pi_features_extractor", None),
                  getattr(getattr(policy, "q_net", None), "features_extractor", None),
                  getattr(getattr(policy, "quantile_net", None), "features_extractor", None)):
        if isinstance(found, BaseFeaturesExtractor):
            return found
    raise ValueError(f"{type(model).__name__} has no features extractor that predict() uses")


def embed(model, frames: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """The encoder output for ``(N, 84, 84, 3)`` uint8 frames: ``(N, features)`` float32.

    The absolute latent for an absolute encoder, the vector of similarities to its anchors for a
    relative one: exactly what the policy head receives in ``predict`` (same extractor, same
    preprocessing: channels first, divided by 255). Batched, without gradients; ``model`` as in
    :func:`encoder_of`.
    """
    encoder = encoder_of(model)
    frames = np.asarray(frames)
    device = next(encoder.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(frames), batch_size):
            out.append(encoder(frames_to_tensor(frames[i : i + batch_size], device)).float().cpu())
    if not out:
        return np.zeros((0, encoder.features_dim), dtype=np.float32)
    return torch.cat(out).numpy()


class AbsoluteEncoder(BaseFeaturesExtractor):
    """Nature-CNN encoder (Mnih et al., 2015), as in SB3's ``NatureCNN`` and CleanRL.

    Output: ``latent_dim`` features if given (convolutions, ``Linear(3136, latent_dim)``, ReLU),
    else the 3136 flattened convolution features (the authors' later code). With
    ``latent_norm="layer"``, each latent is then normalised over its units (zero mean, unit
    variance; a LayerNorm without learned scale or shift), so the encoder's scale cannot drift. With
    ``latent_norm="rms"`` each latent is divided by its root mean square over the units (unit mean
    square, no centring): the scale is fixed too, and a unit at 0 (a ReLU unit that is off) stays
    at 0, where a LayerNorm moves it to ``-mean/std`` of that latent.
    """

    def __init__(self, observation_space: spaces.Box, latent_dim: int | None = None,
                 latent_norm: str | None = LATENT_NORM_DEFAULTS["absolute"]):
        _check_space(observation_space)
        check_latent_norm(latent_norm)
        net, dim = _trunk(latent_dim)
        super().__init__(observation_space, features_dim=dim)
        self.net = net
        self.latent_dim = latent_dim
        self.latent_norm = latent_norm

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """The latent of ``(B, 3, 84, 84)`` frames in [0, 1]."""
        z = self.net(obs)
        if self.latent_norm == "layer":
            with float32(z.device.type):  # in float32 under autocast too
                z = F.layer_norm(z.float(), z.shape[-1:])
        elif self.latent_norm == "rms":
            with float32(z.device.type):
                z = F.rms_norm(z.float(), z.shape[-1:], eps=1e-12)
        return z

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.embed(obs)


class RelativeEncoder(AbsoluteEncoder):
    """An :class:`AbsoluteEncoder` whose output is its relative representation.

    Args:
        observation_space: one 84x84 RGB frame.
        anchors: ``(N, 84, 84, 3)`` uint8 anchor frames in this encoder's colour, or the name/path
            of an anchor set (then ``color`` picks the colour).
        color: the colour of the anchor frames, when ``anchors`` names a set.
        n_anchors: use this many anchors, chosen with a seeded generator. Default: one per
            dimension of the encoder's output, the paper's rule ("we randomly sample n_dim
            anchors, that is the flattened output dimension of the encoder").
        latent_dim, latent_norm: as :class:`AbsoluteEncoder`; ``latent_norm`` defaults to ``"layer"``
            here (:data:`LATENT_NORM_DEFAULTS`).
        alpha: anchor update factor (0: re-embed at each update; default 0.999).
        standardize: how the embeddings are normalised with the anchor embeddings' statistics
            before the cosine: ``"center"`` (the mean only; the default,
            :data:`relreps.projection.DEFAULT_STANDARDIZE`), ``True`` (per-dimension mean and std,
            the authors' code) or ``False`` (:func:`relreps.projection.relative_projection`).
        anchor_seed: the seed of the ``n_anchors`` choice.
        std_floor: the standardisation's floor (:func:`relreps.projection.relative_projection`);
            ``None`` (default): no floor.

    Output size: the number of anchors.
    """

    # buffers (register_buffer), typed for the checker
    anchor_frames: torch.Tensor
    anchor_embeddings: torch.Tensor
    anchors_ready: torch.Tensor

    def __init__(
        self,
        observation_space: spaces.Box,
        anchors: np.ndarray | str = DEFAULT_SET,
        color: str = "green",
        n_anchors: int | None = None,
        latent_dim: int | None = None,
        latent_norm: str | None = LATENT_NORM_DEFAULTS["relative"],
        alpha: float = 0.999,
        standardize: bool | str = DEFAULT_STANDARDIZE,
        anchor_seed: int = 0,
        std_floor: float | None = None,
    ):
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        check_options(standardize, std_floor)
        if isinstance(anchors, str):
            from . import anchors as anchor_sets

            anchors = anchor_sets.load(anchors).frames(color)
        frames = np.asarray(anchors)
        if n_anchors is None:
            n_anchors = CONV_DIM if latent_dim is None else latent_dim
            if n_anchors > len(frames):
                raise ValueError(f"the paper's rule takes one anchor per encoder dimension ({n_anchors}), but "
                                 f"only {len(frames)} anchor frames were given: pass n_anchors")
        if n_anchors != len(frames):
            if not 1 <= n_anchors <= len(frames):
                raise ValueError(f"n_anchors must be between 1 and {len(frames)}, got {n_anchors}")
            pick = np.sort(np.random.default_rng(anchor_seed).choice(len(frames), n_anchors, replace=False))
            frames = frames[pick]
        super().__init__(observation_space, latent_dim=latent_dim, latent_norm=latent_norm)
        self._features_dim = len(frames)  # the relative representation's size
        self.alpha = float(alpha)
        self.standardize = standardize
        self.std_floor = None if std_floor is None else float(std_floor)
        # The frames are inputs, not state: not saved with the agent (the card names the set).
        self.register_buffer("anchor_frames", torch.as_tensor(frames), persistent=False)
        # The state: anchor embeddings, and whether they have been computed. They are filled at
        # the first forward pass, after SB3's orthogonal initialisation has set the weights.
        self.register_buffer("anchor_embeddings", torch.zeros(len(frames), self.embedding_dim))
        self.register_buffer("anchors_ready", torch.zeros((), dtype=torch.bool))
        _ = frames_to_tensor(frames[:1])  # validates shape and dtype now

    @property
    def embedding_dim(self) -> int:
        return CONV_DIM if self.latent_dim is None else self.latent_dim

    @torch.no_grad()
    def embed_anchors(self, batch_size: int = 512) -> torch.Tensor:
        """Embed the anchor frames with the current weights (no gradient), in batches."""
        out = []
        with float32(self.anchor_frames.device.type):  # the anchor embeddings stay float32 under autocast
            for i in range(0, len(self.anchor_frames), batch_size):
                chunk = self.anchor_frames[i : i + batch_size]
                out.append(self.embed(frames_to_tensor(chunk, chunk.device)))
        return torch.cat(out)

    @torch.no_grad()
    def update_anchors(self, steps: int = 1) -> None:
        """Follow the encoder: re-embed (``alpha=0``) or move the average by ``1 - alpha**steps``.

        ``steps`` > 1 is ``steps`` successive updates folded into one, as if the encoder had not
        changed in between: ``A <- alpha**steps * A + (1 - alpha**steps) * E(anchor frames)``. It is
        how training applies the authors' update, made before every gradient step, once per PPO
        update (16 gradient steps) at the cost of one embedding of the anchors instead of 16.
        """
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if not bool(self.anchors_ready) or self.alpha == 0.0:
            self.reembed_anchors()
        else:
            keep = self.alpha ** steps
            self.anchor_embeddings.mul_(keep).add_(self.embed_anchors(), alpha=1.0 - keep)

    @torch.no_grad()
    def reembed_anchors(self) -> None:
        """Replace the anchor embeddings by what the current weights make of the anchor frames (the
        first update, ``alpha=0``, an agent file saved without them, :func:`relreps.latent.reembedded`)."""
        self.anchor_embeddings.copy_(self.embed_anchors())
        self.anchors_ready.fill_(True)

    def _apply(self, fn, *args, **kwargs):
        # .to() / .cpu() / .cuda(): the cached prepared anchors stay behind on the old device
        self._prep = self._prep_key = None
        return super()._apply(fn, *args, **kwargs)

    def _prepared(self) -> tuple:
        """The anchors' standardised unit embeddings, recomputed only when the buffer changes
        (an anchor update or ``load_state_dict`` writes it in place, which bumps its version)."""
        a = self.anchor_embeddings
        key = (a._version, a.data_ptr(), a.device, a.dtype, self.standardize, self.std_floor)
        if getattr(self, "_prep_key", None) != key:
            with torch.no_grad():
                self._prep = prepare_anchors(a.detach(), standardize=self.standardize, std_floor=self.std_floor)
            self._prep_key = key
        return self._prep

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not bool(self.anchors_ready):
            self.update_anchors()
        z = self.embed(obs)
        with float32(z.device.type):  # the projection (centring, norms, cosines) in float32 under autocast
            return project(z.float(), self._prepared())


# ----------------------------------------------------------------------------------------------
# The head
# ----------------------------------------------------------------------------------------------


class Float32LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` computed in float32 under autocast too (same parameters and state)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with float32(x.device.type):
            return super().forward(x.float())


class Float32Linear(nn.Linear):
    """``nn.Linear`` computed in float32 under autocast too (same parameters and state): the actor's
    logits and the critic's values, so log-probabilities and PPO's ratio are float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with float32(x.device.type):
            return super().forward(x.float())


class Head(nn.Module):
    """LayerNorm -> ReLU -> Linear(in_dim, hidden) -> ReLU (the authors' controller trunk).

    As an SB3 ``mlp_extractor`` it is shared by actor and critic (CleanRL's design).
    """

    def __init__(self, in_dim: int, hidden: int = 512):
        super().__init__()
        self.net = nn.Sequential(Float32LayerNorm(in_dim), nn.ReLU(), nn.Linear(in_dim, hidden), nn.ReLU())
        self.in_dim = in_dim
        self.latent_dim_pi = self.latent_dim_vf = hidden

    def forward(self, features: torch.Tensor):  # SB3's MlpExtractor interface
        latent = self.net(features)
        return latent, latent

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class HeadDimMixin:
    """Adds the ``head_dim`` argument (the head's width) to an SB3 policy, saved with its parameters."""

    def __init__(self, *args, head_dim: int = 512, **kwargs):
        self.head_dim = head_dim
        super().__init__(*args, **kwargs)

    def _get_constructor_parameters(self) -> dict:
        data = super()._get_constructor_parameters()  # type: ignore[misc]  # a mixin of SB3 policies
        data["head_dim"] = self.head_dim
        return data


class HeadActorCriticPolicy(HeadDimMixin, ActorCriticPolicy):
    """SB3's actor-critic policy with :class:`Head` instead of the MLP extractor.

    ``head_dim`` sets the head's width; ``net_arch`` is not used. The actor's and the critic's last
    layers compute in float32 under autocast too (:class:`Float32Linear`). ``rollout_precision``
    (``"fp32"``, ``"bf16"`` or ``"fp16"``; set by :func:`relreps.algos.make_model`, not saved) is
    the autocast of :meth:`forward`, the pass a PPO rollout makes over all environments at once.
    """

    rollout_precision: str = "fp32"

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = Head(self.features_dim, self.head_dim).to(self.device)  # type: ignore[assignment]  # MlpExtractor's interface

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        for net in (self.action_net, self.value_net):
            if type(net) is nn.Linear:
                net.__class__ = Float32Linear  # same parameters; float32 under autocast

    def forward(self, obs: torch.Tensor, deterministic: bool = False):
        if self.rollout_precision == "fp32":
            return super().forward(obs, deterministic)
        from .precision import autocast

        with autocast(self.device.type, self.rollout_precision):
            return super().forward(obs, deterministic)


class _HeadQNetwork(QNetwork):
    def __init__(self, *args, head_dim: int = 512, **kwargs):
        super().__init__(*args, **kwargs)
        head = Head(self.features_dim, head_dim).net
        self.q_net = nn.Sequential(*head, nn.Linear(head_dim, int(self.action_space.n)))


class HeadDQNPolicy(HeadDimMixin, DQNPolicy):
    """SB3's DQN policy whose Q-network is :class:`Head` followed by one Linear layer."""

    def make_q_net(self) -> QNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return _HeadQNetwork(**net_args, head_dim=self.head_dim).to(self.device)
