"""One typed config -> a trained agent, a learning curve and checkpoints; resumable.

A run writes into its folder:

- ``config.json``: the :class:`TrainConfig`;
- ``progress.csv``: SB3's training log (and TensorBoard event files under ``tb/`` when the
  ``tensorboard`` package is installed);
- ``eval.csv``: the learning curve: every ``eval_every`` steps, the evaluation protocol
  (:mod:`relreps.evaluation`) on the held-out ``eval_tracks``;
- ``hardware.json``: each training segment's hardware (device, GPU, cores, environment
  processes, torch threads) from the step it started at (a resume may move to another machine);
- ``checkpoint.pt``: every ``checkpoint_every`` steps, every ``checkpoint_minutes`` of wall time
  (:func:`train`; default :data:`CHECKPOINT_MINUTES`), when the run is stopped by Ctrl-C or
  ``SIGTERM``, and at the end: weights, optimiser state and counters, as plain tensors (loaded with
  ``weights_only=True``: no pickled code runs);
- ``replay.npz`` (value-based algorithms): the replay buffer beside each checkpoint, compressed
  numpy arrays (read with ``allow_pickle=False``); removed when the run finishes;
- ``agent.safetensors`` + ``agent.json`` (:mod:`relreps.zoo`, float16 tensors) and ``done.json``
  when the run has finished: the agent, and the steps, wall time, hardware, versions and the final
  evaluation (of the agent file as loaded; it is also the last row of ``eval.csv``).

A run stopped by Ctrl-C (``SIGINT``) or ``SIGTERM`` (a scheduler, a pre-empted or closing
machine) saves a checkpoint at the next step and raises :class:`TrainingStopped`; a second signal
stops it at once. A run killed without warning loses at most ``checkpoint_minutes`` of work. A run
stopped or killed mid-way continues from its last checkpoint with ``resume=True``
(``relreps train ... --resume``): same weights, optimiser, step count, learning-rate schedule and
wall-time count; a DQN-family run also keeps its replay buffer, its exploration schedule and its
target-network update count (its checkpoints are taken between a rollout and the next, after the
gradient steps, so nothing is half done); the environments start new episodes. The
logs keep every step up to the checkpoint: rows past it are dropped, the interrupted
``progress.csv`` is kept as ``progress.part<K>.csv`` and, when the run finishes, all parts are
merged back into ``progress.csv`` (``time/time_elapsed`` counted from the run's start). This covers
the CSV logs; TensorBoard event files keep every row written. A finished run (``done.json``) is
not resumed: train further in a new run folder that starts from its checkpoint (``start_from``,
``relreps train --out NEW --from RUN``), with a longer schedule or another anchor update.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import cast

import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from . import algos, envs, evaluation, files, zoo
from .anchors import DEFAULT_SET
from .extractors import LATENT_NORM_DEFAULTS, REPRESENTATIONS, AbsoluteEncoder, RelativeEncoder, check_latent_norm
from .precision import check_precision
from .projection import DEFAULT_STANDARDIZE, check_options

__all__ = [
    "AGENTS_DIR",
    "ANCHOR_UPDATES",
    "CHECKPOINT_MINUTES",
    "CONTINUE_MAY_CHANGE",
    "DEVICES",
    "LEGACY_DEFAULTS",
    "REPLAY_FILE",
    "REPRESENTATIONS",
    "RUN_ANCHORS",
    "RunInUseError",
    "TrainConfig",
    "TrainingStopped",
    "build_model",
    "card_for",
    "check_device",
    "check_hyperparameters",
    "check_origin",
    "check_start",
    "export_checkpoint",
    "freeze_encoders",
    "kept_agent_path",
    "kept_agents",
    "load_checkpoint",
    "load_replay",
    "parse_overrides",
    "resolved_precision",
    "run_anchors",
    "save_checkpoint",
    "save_replay",
    "saved_config",
    "train",
    "trained_config",
]


#: How the anchors' moving average steps (TrainConfig.anchor_update; relreps.algos.anchor_update_callback).
ANCHOR_UPDATES = algos.ANCHOR_UPDATES


#: What a saved config that lacks a field trained with (``TrainConfig.from_json``).
LEGACY_DEFAULTS = {"anchor_update": "rollout", "latent_norm": None, "std_floor": None, "standardize": True,
                   "precision": "fp32"}


@dataclass
class TrainConfig:
    """Everything that defines a training run."""

    algo: str = "ppo"
    """``ppo`` (CleanRL Atari defaults), ``ddqn`` (Double DQN), ``dqn`` or ``qrdqn``."""
    representation: str = "relative"
    """``relative`` (cosine similarities to the anchors) or ``absolute`` (the latent itself)."""
    color: str = "green"
    """Training colour: a paper colour or ``"R,G,B"``."""
    seed: int = 1
    """Seeds the weights, the algorithm and the training tracks (environment i: seed + i)."""
    total_steps: int = 2_000_000
    """Environment steps, summed over all environments."""
    n_envs: int = 16
    """Parallel environments (CleanRL: 16 x 128 steps per PPO rollout)."""
    workers: int | None = None
    """Environment worker processes (default: one per core; 0: all in the training process)."""
    device: str = "auto"
    """``auto`` (a GPU when present), ``cpu`` or ``cuda``."""
    anchors: str = DEFAULT_SET
    """Anchor set (shipped name or folder), relative encoders only. Default: ``scripted-3136``
    (:data:`relreps.anchors.DEFAULT_SET`), which the zoo's relative agents use."""
    n_anchors: int | None = None
    """Anchors to use from the set (seeded choice); default one per encoder dimension (the paper)."""
    latent_dim: int | None = 256
    """Encoder output: a Linear layer of this size after the convolutions, or ``None`` for the 3136
    flattened convolution features (the authors' later code). With 256, a PPO update with the
    relative encoder costs 0.94x the absolute one and the agent file is about 2 MB (float16); 3136
    anchors on 3136 features cost 2.17x and 39 MB of anchor state (``relreps bench update``; the book's lab
    notes)."""
    latent_norm: str | None = "auto"
    """``"layer"``: normalise each latent over its units (no learned parameters), so the encoder's
    scale cannot drift (:class:`relreps.extractors.AbsoluteEncoder`); ``"rms"``: divide each latent by
    its root mean square (the scale is fixed and a unit at 0 stays at 0); ``None``: no normalisation (the
    shipped absolute agents and the first relative ones); ``"auto"`` (default): ``"layer"`` for a
    relative encoder, ``None`` for an absolute one (without it, relative encoders grow away from their
    lagging anchors and training collapses: the book's lab notes). Resolved when the config is made, so a saved
    config names the choice."""
    alpha: float = 0.999
    """Anchor update factor (0: re-embed at each update)."""
    anchor_update: str = "gradient-step"
    """``gradient-step`` (the authors' code: the moving average steps once per gradient step, 16 per
    PPO update; the DQN family applies them once 16 have gathered) or ``rollout`` (once per PPO
    update: the first zoo runs, whose anchors kept 38% of the untrained encoder's embeddings and did
    not stitch; a saved config without this field means ``rollout``; the DQN family: once per target
    update). See :func:`relreps.algos.anchor_update_callback`."""
    anchor_embeddings: str = "saved"
    """Relative encoders: what the agent file keeps of the anchor embeddings: ``saved`` (default: the
    moving average the policy learnt with) or ``reembedded`` (none: the anchor frames are embedded with
    the final weights when the agent is loaded; 3136 anchors' 39 MB would not fit an agent file). See
    :func:`relreps.zoo.save`."""
    freeze_encoder: bool = False
    """Train the head only: the encoder's weights do not change, so a relative encoder's anchor
    embeddings are those of its final encoder from the first update on (with ``alpha=0``, or as
    fast as ``alpha`` moves them). For a run continued from another's checkpoint (``relreps train
    --from RUN --freeze-encoder yes --alpha 0``): fit the policy to the anchors its own encoder
    makes, so that the saved and re-embedded agent files are one agent."""
    std_floor: float | None = None
    """Relative encoders: the projection's floor on the standardisation's std, as a fraction of the
    largest (``None``, the default: no floor). See
    :func:`relreps.projection.relative_projection`."""
    standardize: bool | str = DEFAULT_STANDARDIZE
    """Relative encoders: how the projection normalises the embeddings before the cosine:
    ``"center"`` (default: subtract the anchor embeddings' mean), ``True`` (per-dimension mean and
    std of the anchor embeddings, the authors' code and the first relative agents; its dead units
    dominate the representation: the book's lab notes) or ``False``. See
    :func:`relreps.projection.relative_projection`."""
    head_dim: int = 512
    """Width of the head (LayerNorm, ReLU, Linear, ReLU)."""
    eval_every: int = 100_000
    """Evaluate every this many steps (0: never, except at the end)."""
    eval_tracks: tuple[int, ...] = evaluation.EVAL_TRACKS[:5]
    """Held-out tracks of the learning curve."""
    eval_max_steps: int = envs.MAX_EPISODE_STEPS
    """Episode length during evaluation (shorter only for smoke tests)."""
    checkpoint_every: int = 100_000
    """Save a resumable checkpoint every this many steps."""
    hyperparameters: dict = field(default_factory=dict)
    """Overrides of the algorithm preset (see relreps.algos.PPO_DEFAULTS, DQN_DEFAULTS)."""
    precision: str = "fp32"
    """``fp32`` (default, every shipped agent), ``bf16`` (bfloat16 autocast of the PPO update and
    rollout, on a CPU or GPU with native bfloat16) or ``auto`` (bf16 where native, fp16 with a
    gradient scaler on a GPU without it, else fp32). Anchor embeddings, the relative projection and
    the LayerNorms stay float32 (:mod:`relreps.precision`). PPO only. The precision a run used on
    each machine is in ``hardware.json`` and the agent card (``training.precision``)."""

    def __post_init__(self) -> None:
        if self.algo not in algos.ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algo!r}: expected one of {algos.ALGORITHMS}")
        if self.representation not in REPRESENTATIONS:
            raise ValueError(f"unknown representation {self.representation!r}: expected one of {REPRESENTATIONS}")
        self.color = envs.color_name(self.color)
        self.eval_tracks = tuple(int(s) for s in self.eval_tracks)
        if self.total_steps < 1 or self.n_envs < 1:
            raise ValueError("total_steps and n_envs must be >= 1")
        check_options(self.standardize, self.std_floor)
        if self.latent_norm == "auto":
            self.latent_norm = LATENT_NORM_DEFAULTS[self.representation]
        check_latent_norm(self.latent_norm)
        if self.anchor_update not in ANCHOR_UPDATES:
            raise ValueError(f"unknown anchor_update {self.anchor_update!r}: expected one of {ANCHOR_UPDATES}")
        if self.anchor_embeddings not in zoo.ANCHOR_EMBEDDINGS:
            raise ValueError(f"unknown anchor_embeddings {self.anchor_embeddings!r}: expected one of "
                             f"{zoo.ANCHOR_EMBEDDINGS}")
        if self.anchor_embeddings != "saved" and self.representation != "relative":
            raise ValueError(f"anchor_embeddings={self.anchor_embeddings!r} is for relative encoders; "
                             f"an {self.representation} encoder has no anchors (use 'saved')")
        _check_settings(self)
        check_precision(self.precision)
        if not algos.REGISTRY[self.algo].mixed_precision and self.precision != "fp32":
            mixed = [name for name, spec in algos.REGISTRY.items() if spec.mixed_precision]
            raise ValueError(f"precision {self.precision!r} is implemented for {', '.join(mixed)} only; "
                             f"{self.algo} trains in 'fp32'")

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """Each field's documentation (the string literal under it in the class body), one line per
        field, with reStructuredText markup removed: the help text of ``relreps train``'s options."""
        import ast
        import inspect
        import re

        body = ast.parse(inspect.getsource(cls)).body[0]
        assert isinstance(body, ast.ClassDef)
        docs = {}
        for node, after in zip(body.body, body.body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                text = " ".join(after.value.value.split())
                text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")
                docs[node.target.id] = text
        return docs

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}; known: {sorted(known)}")
        # A field missing from a saved config means what runs did before it existed (one anchor
        # update per PPO update; no latent norm, floor or other projection), whatever the default.
        return cls(**{**LEGACY_DEFAULTS, **d})

    def encoder(self) -> tuple[type, dict]:
        # every setting explicit (a card does not depend on the encoders' defaults), except an
        # absolute encoder's latent_norm=None and a std_floor of None: cards stay as they were
        norm = {} if self.latent_norm is None and self.representation == "absolute" else {"latent_norm": self.latent_norm}
        if self.representation == "absolute":
            return AbsoluteEncoder, dict(latent_dim=self.latent_dim, **norm)
        kwargs = dict(anchors=self.anchors, color=self.color, n_anchors=self.n_anchors,
                      latent_dim=self.latent_dim, alpha=self.alpha, **norm, standardize=self.standardize)
        if self.std_floor is not None:
            kwargs["std_floor"] = self.std_floor
        return RelativeEncoder, kwargs


def card_for(config, **extra) -> zoo.Card:
    """A card for a trained model, from its :class:`TrainConfig`."""
    from . import __version__, anchors

    _, encoder_kwargs = config.encoder()
    card: zoo.Card = {
        "format": zoo.FORMAT_VERSION,
        "algo": config.algo,
        "representation": config.representation,
        "color": config.color,
        "seed": config.seed,
        "head_dim": config.head_dim,
        "encoder_kwargs": encoder_kwargs,
        "config": asdict(config),
        "relreps": __version__,
    }
    if config.representation == "relative":
        aset = anchors.load(config.anchors)
        card["anchors"] = {"set": aset.name, "color": config.color,
                           "frames_checksum": anchors.frames_checksum(aset.frames(config.color)),
                           "set_id": aset.identity}
        if not zoo._is_shipped_set(card["anchors"]) and aset.path is not None:
            card["anchors"]["path"] = str(aset.path.resolve())
    return cast(zoo.Card, {**card, **extra})


def trained_config(info: dict):
    """The :class:`TrainConfig` an agent's card records (``None`` for an agent saved
    without one); read like a run's ``config.json``, so fields added since take the values that old
    runs trained with (e.g. ``anchor_update="rollout"``)."""
    return TrainConfig.from_json(info["config"]) if "config" in info else None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_settings(config: TrainConfig) -> None:
    """Refuse settings that would fail, or silently do something else, later in a run: counts
    below their minimum, an empty or repeated evaluation track list, an unknown device, anchor
    settings out of range, hyper-parameters the algorithm does not have or of the wrong type."""
    minimum = {"seed": 0, "total_steps": 1, "n_envs": 1, "head_dim": 1, "eval_every": 0, "eval_max_steps": 1,
               "checkpoint_every": 0}
    for key, low in minimum.items():
        value = getattr(config, key)
        if not _is_int(value) or value < low:
            raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
    for key in ("workers", "latent_dim", "n_anchors"):
        value, low = getattr(config, key), 0 if key == "workers" else 1
        if value is not None and (not _is_int(value) or value < low):
            raise ValueError(f"{key} must be an integer >= {low} or None, got {value!r}")
    if not config.eval_tracks:
        raise ValueError("eval_tracks is empty: give at least one held-out track (--eval-tracks N, N >= 1)")
    if len(set(config.eval_tracks)) != len(config.eval_tracks):
        raise ValueError(f"eval_tracks has a track twice: {list(config.eval_tracks)}")
    check_device(config.device, available=False)
    if config.representation == "relative":
        if not isinstance(config.anchors, str) or not config.anchors.strip():
            raise ValueError(f"anchors must name an anchor set (a shipped name or a folder), got {config.anchors!r}")
        if isinstance(config.alpha, bool) or not isinstance(config.alpha, (int, float)) or not 0 <= config.alpha < 1:
            raise ValueError(f"alpha must be in [0, 1), got {config.alpha!r}")
    if not isinstance(config.freeze_encoder, bool):
        raise ValueError(f"freeze_encoder must be True or False, got {config.freeze_encoder!r}")
    check_hyperparameters(config.algo, config.hyperparameters, n_envs=config.n_envs)


#: ``device`` values: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def check_device(device: str, *, available: bool = True) -> None:
    """Refuse a ``device`` that is not one of :data:`DEVICES` or, with ``available``, that this
    machine does not have (a run must not fail after its folder is made)."""
    import re

    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        raise ValueError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
    if not available:
        return
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: no CUDA GPU is available here (use --device cpu or auto)")
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps': Apple's Metal backend is not available here (use --device cpu or auto)")


#: Hyper-parameters that count something (integers >= 1; ``learning_starts`` may be 0).
_COUNTS = ("n_steps", "n_minibatches", "n_epochs", "buffer_size", "batch_size", "train_freq", "gradient_steps",
           "target_update_interval", "learning_starts")


#: Hyper-parameters that may also be ``None`` (SB3: no value-function clipping).
_OPTIONAL = ("clip_range_vf",)


def check_hyperparameters(algo: str, overrides: dict, *, n_envs: int = 1) -> None:
    """Refuse overrides of the algorithm's preset (:data:`relreps.algos.PPO_DEFAULTS`,
    :data:`relreps.algos.DQN_DEFAULTS`) that it does not have, or whose value is of another type than
    the preset's (a flag must be true or false, a count an integer >= 1, a rate a number); PPO's
    rollout (``n_envs * n_steps``) must split into ``n_minibatches`` equal minibatches."""
    preset = algos.PPO_DEFAULTS if algo == "ppo" else algos.DQN_DEFAULTS
    if not isinstance(overrides, dict):
        raise ValueError(f"hyperparameters must be a dict of preset overrides, got {overrides!r}")
    unknown = sorted(set(overrides) - set(preset))
    if unknown:
        raise ValueError(f"unknown {algo} hyper-parameter(s) {unknown}; known: {', '.join(sorted(preset))}")
    for key, value in overrides.items():
        default = preset[key]
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif key in _COUNTS:
            low = 0 if key == "learning_starts" else 1
            ok, kind = _is_int(value) and value >= low, f"an integer >= {low}"
        elif default is None or isinstance(default, (int, float)):
            ok = (value is None and (default is None or key in _OPTIONAL)) or (
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))
            kind = "a finite number" + (" or null" if key in _OPTIONAL else "")
        else:
            ok, kind = isinstance(value, type(default)), type(default).__name__
        if not ok:
            raise ValueError(f"hyper-parameter {key}={value!r}: expected {kind} (the preset has {default!r})")
    if algo == "ppo":
        hp = {**preset, **overrides}
        if (n_envs * hp["n_steps"]) % hp["n_minibatches"]:
            raise ValueError(f"n_envs * n_steps ({n_envs} x {hp['n_steps']}) must divide into "
                             f"{hp['n_minibatches']} minibatches (hyper-parameter n_minibatches)")


def parse_overrides(items) -> dict:
    """``--set KEY=VALUE`` items -> ``{key: value}``: the value is read as JSON (numbers, ``true``,
    ``false``, ``null``, quoted strings), else kept as the text itself. Refuses an item without ``=``,
    an empty or malformed key and a key given twice; what the keys may be is checked by
    :func:`check_hyperparameters`."""
    import re

    out: dict = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"--set {item!r}: {key!r} is not a setting name (letters, digits and _)")
        if key in out:
            raise ValueError(f"--set gives {key} twice")
        try:
            out[key] = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            out[key] = value
    return out


def build_model(config: TrainConfig, env, tensorboard_log: str | None = None):
    """The untrained model a config describes, on ``env``."""
    encoder_class, encoder_kwargs = config.encoder()
    model = algos.make_model(
        config.algo, env, encoder_class=encoder_class, encoder_kwargs=encoder_kwargs,
        head_dim=config.head_dim, seed=config.seed, device=config.device,
        tensorboard_log=tensorboard_log, precision=resolved_precision(config), **config.hyperparameters,
    )
    if config.freeze_encoder:
        freeze_encoders(model.policy)
    return model


def freeze_encoders(policy) -> int:
    """Stop gradients to every encoder in ``policy`` (its parameters no longer require them, so the
    optimiser leaves them as they are); returns how many parameters were frozen."""
    n = 0
    for module in policy.modules():
        if isinstance(module, (AbsoluteEncoder, RelativeEncoder)):
            for param in module.parameters():
                param.requires_grad_(False)
                n += 1
    return n


def resolved_precision(config: TrainConfig) -> str:
    """What ``config.precision`` means on the device ``config.device`` picks: ``fp32``, ``bf16`` or ``fp16``."""
    from stable_baselines3.common.utils import get_device

    from .precision import resolve

    return resolve(config.precision, get_device(config.device))


def _optimizers(model) -> dict:
    return {"policy": model.policy.optimizer}


#: The replay buffer of a value-based run, beside its ``checkpoint.pt``.
REPLAY_FILE = "replay.npz"
_REPLAY_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _replay_buffer(model):
    """The model's replay buffer (DQN family), or None (PPO)."""
    return getattr(model, "replay_buffer", None)


def save_checkpoint(model, path: Path, elapsed_s: float = 0.0, *, replay: bool = True) -> None:
    """Weights, optimiser state, counters and training wall time as plain tensors; atomic.

    A model with a replay buffer (DQN family) also writes the buffer to ``replay.npz`` beside
    ``path`` (first, so that a checkpoint never names a buffer that is not there yet; not with
    ``replay=False``) and its target-update call count.
    """
    state = {
        "elapsed_s": float(elapsed_s),
        "policy": model.policy.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in _optimizers(model).items()},
        "num_timesteps": model.num_timesteps,
        "n_updates": model._n_updates,
    }
    if _replay_buffer(model) is not None:
        if replay:
            save_replay(model.replay_buffer, path.parent / REPLAY_FILE, model.num_timesteps)
        state["n_calls"] = int(model._n_calls)
    with files.atomic_path(path) as tmp:
        torch.save(state, tmp)


def save_replay(buffer, path: Path, num_timesteps: int) -> None:
    """An SB3 replay buffer's filled part as compressed numpy arrays (no pickle); atomic."""
    import numpy as np

    n = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {name: getattr(buffer, name)[:n] for name in _REPLAY_ARRAYS
              if getattr(buffer, name, None) is not None}
    with files.atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez_compressed(f, num_timesteps=np.array(num_timesteps), pos=np.array(buffer.pos),
                            full=np.array(buffer.full), **arrays)


def load_replay(buffer, path: Path, num_timesteps: int) -> None:
    """Fill an SB3 replay buffer from :func:`save_replay`'s file, saved at ``num_timesteps``.

    Raises:
        ValueError: the file is unreadable, of another step than the checkpoint, or of a buffer of
            another shape (a different ``buffer_size``, number of environments or observation).
    """
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            saved = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} cannot be read as a replay buffer ({type(e).__name__}): the file is truncated "
                         f"or corrupted; move it away to resume with an empty buffer") from None
    if int(saved.get("num_timesteps", -1)) != num_timesteps:
        raise ValueError(f"{path} holds the replay buffer of step {int(saved.get('num_timesteps', -1))}, not of the "
                         f"checkpoint's step {num_timesteps}; move it away to resume with an empty buffer")
    pos, full = int(saved["pos"]), bool(saved["full"])
    n = buffer.buffer_size if full else pos
    for name in _REPLAY_ARRAYS:
        target = getattr(buffer, name, None)
        if target is None:
            continue
        if name not in saved or saved[name].shape != (n, *target.shape[1:]) or n > len(target):
            got = saved[name].shape if name in saved else "nothing"
            raise ValueError(f"{path}: {name} has shape {got}, this run's buffer needs {(n, *target.shape[1:])} "
                             "(another buffer_size, number of environments or observation shape)")
        target[:n] = saved[name]
    buffer.pos, buffer.full = pos, full


def _read_checkpoint(path: Path, map_location, *, hint: str = "") -> dict:
    """A :func:`save_checkpoint` file's contents (plain tensors: ``weights_only``, no pickled code).

    Raises:
        ValueError: the file cannot be read (truncated or corrupted); ``hint`` ends the message.
    """
    import pickle

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, ValueError) as e:
        raise ValueError(f"{path} cannot be read as a checkpoint ({str(e).splitlines()[0] if str(e) else type(e).__name__}): "
                         f"the file is truncated or corrupted{hint}") from None


def load_checkpoint(model, path: Path, *, replay: bool = True) -> float:
    """Restore a :func:`save_checkpoint`; returns the wall time trained before it.

    ``replay``: also fill the model's replay buffer from ``replay.npz`` (value-based models; a
    missing file leaves it empty, with a warning). ``False`` to only act with the weights.

    Raises:
        ValueError: the file cannot be read (truncated or corrupted), holds other things than a
            checkpoint, or the weights of another model (a different config).
    """
    state = _read_checkpoint(path, model.device, hint="; restore it, or move it away to restart the run from step 0")
    try:
        model.policy.load_state_dict(state["policy"])
        for k, o in _optimizers(model).items():
            o.load_state_dict(state["optimizers"][k])
        model.num_timesteps = int(state["num_timesteps"])
        model._n_updates = int(state["n_updates"])
        if "n_calls" in state:
            model._n_calls = int(state["n_calls"])
        elapsed = float(state.get("elapsed_s", 0.0))
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise ValueError(f"{path} is not a checkpoint of this run's model ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if replay and _replay_buffer(model) is not None:
        replay_path = path.parent / REPLAY_FILE
        if replay_path.exists():
            load_replay(model.replay_buffer, replay_path, model.num_timesteps)
        else:
            import warnings

            warnings.warn(f"{replay_path} not found (a finished run does not keep its buffer): the run goes on with "
                          "an empty replay buffer, and fills it for learning_starts steps (acting at random, as a "
                          "new run does) before it learns again", stacklevel=2)
        _refill_before_learning(model)
    return elapsed


def _refill_before_learning(model) -> None:
    """A DQN-family model restored with fewer transitions in its buffer than ``learning_starts``
    (a buffer that was not kept) waits until it has gathered them again, as a new run does (SB3
    acts at random until then), rather than learn from a handful of transitions. A buffer
    restored in full changes nothing."""
    buffer = model.replay_buffer
    stored = (buffer.buffer_size if buffer.full else buffer.pos) * buffer.n_envs
    missing = model.learning_starts - stored
    if missing > 0 and model.num_timesteps + missing > model.learning_starts:
        model.learning_starts = model.num_timesteps + missing


def export_checkpoint(run: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False,
                      anchor_embeddings: str | None = None) -> Path:
    """Save a run's latest ``checkpoint.pt`` as an agent file (``out.safetensors`` + ``out.json``).

    For looking at a run that is still training (or was stopped): evaluate, stitch or compare the
    agent at its last checkpoint with the usual tools. The card records the checkpoint's steps and
    wall time under ``training`` with ``"checkpoint": true`` and no final evaluation; the tensors
    are float16, as in a finished run's agent. Refuses to replace an existing agent unless
    ``overwrite=True``; returns the ``.json`` path.

    ``anchor_embeddings`` (relative runs; :data:`relreps.zoo.ANCHOR_EMBEDDINGS`) overrides the run's
    own choice: ``"saved"`` keeps the moving average the policy trained with (to look at the agent as
    training saw it, e.g. a run trained with ``"reembedded"``), ``"reembedded"`` leaves it out.
    """
    run = Path(run)
    cfg_path, ckpt = run / "config.json", run / "checkpoint.pt"
    for path in (cfg_path, ckpt):
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: {run} is not a run folder with a checkpoint")
    config = run_anchors(TrainConfig.from_json(json.loads(cfg_path.read_text())), run)
    if anchor_embeddings is not None:
        config = replace(config, anchor_embeddings=anchor_embeddings)  # TrainConfig refuses a bad value
    env = envs.make_vec_env(config.color, n_envs=1, seed=config.seed, workers=0)
    try:
        hp = dict(config.hyperparameters)
        if config.algo != "ppo":
            hp["buffer_size"] = 1  # no replay buffer is needed to act
        model = build_model(replace(config, device="cpu", hyperparameters=hp, precision="fp32"), env)
        elapsed = load_checkpoint(model, ckpt, replay=False)
        facts = {"steps": model.num_timesteps, "wall_s": round(elapsed, 1), "checkpoint": True,
                 "run": str(run)}
        return zoo.save(model, out, card_for(config, training=facts), overwrite=overwrite, half=True,
                        anchor_embeddings=config.anchor_embeddings)
    finally:
        env.close()


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    with files.atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


#: A run's kept agents (``relreps train --keep-agents``): defined with the agent files
#: (:data:`relreps.zoo.AGENTS_DIR`), which ``zoo.ship(selected=True)`` reads too.
AGENTS_DIR = zoo.AGENTS_DIR
kept_agent_path = zoo.kept_agent_path
kept_agents = zoo.kept_agents


def _keep_logs_for_resume(run: Path, steps: int, elapsed_s: float) -> None:
    """Before a resume from a checkpoint at ``steps``: drop log rows past it (and kept agents: the
    resumed run trains those steps again), and move SB3's ``progress.csv`` (which SB3 truncates on
    open) aside as the next ``progress.part<K>.csv``."""
    for card in kept_agents(run):
        if int(card.stem) > steps:
            for path in card.parent.glob(card.stem + ".*"):
                path.unlink(missing_ok=True)
    segments_path = run / "segments.json"
    segments = json.loads(segments_path.read_text()) if segments_path.exists() else [0.0]
    progress = run / "progress.csv"
    if progress.exists():
        header, rows = _read_csv(progress)
        rows = [r for r in rows if r.get("time/total_timesteps") and int(r["time/total_timesteps"]) <= steps]
        _write_csv(run / f"progress.part{len(segments) - 1}.csv", header, rows)
        progress.unlink()
    ev = run / "eval.csv"
    if ev.exists():
        header, rows = _read_csv(ev)
        _write_csv(ev, header, [r for r in rows if int(r["timesteps"]) <= steps])
    segments.append(round(elapsed_s, 1))  # wall time at which the new segment starts
    from . import files

    files.write_text(segments_path, json.dumps(segments) + "\n")


def _merge_progress(run: Path) -> None:
    """Join ``progress.part*.csv`` and the last segment's ``progress.csv`` into one log."""
    segments_path = run / "segments.json"
    if not segments_path.exists():
        return
    segments = json.loads(segments_path.read_text())
    files = [run / f"progress.part{k}.csv" for k in range(len(segments) - 1)] + [run / "progress.csv"]
    header: list[str] = []
    rows: list[dict] = []
    for offset, file in zip(segments, files):
        if not file.exists():
            continue
        h, part = _read_csv(file)
        header += [k for k in h if k not in header]
        for r in part:
            if r.get("time/time_elapsed"):
                r["time/time_elapsed"] = str(round(float(r["time/time_elapsed"]) + offset))
        rows += part
    _write_csv(run / "progress.csv", header, rows)
    for file in files[:-1]:
        file.unlink(missing_ok=True)
    segments_path.unlink()


#: Default wall-clock interval between checkpoints (:func:`train`'s ``checkpoint_minutes``,
#: ``relreps train --checkpoint-minutes``): what a run killed without warning loses at most.
CHECKPOINT_MINUTES = 10.0
#: A timed checkpoint waits at least this many times as long as the last one took to write (so that
#: writing a DQN-family run's replay buffer takes at most 1/20 of the wall time).
TIMED_CHECKPOINT_SHARE = 20.0


class TrainingStopped(Exception):
    """A run stopped by a signal (Ctrl-C, ``SIGTERM``) after saving its checkpoint: continue it with
    ``resume=True`` (``relreps train ... --resume``). ``signal``: the signal's number."""

    def __init__(self, message: str, signal: int):
        super().__init__(message)
        self.signal = signal


class _StopRequest:
    """While active, the first ``SIGINT`` or ``SIGTERM`` asks the run to stop at its next step (after
    a checkpoint); a second one acts as it would without this (``KeyboardInterrupt``, or the previous
    handler). Installs nothing outside the main thread (signal handlers live there)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def __enter__(self) -> _StopRequest:
        import signal
        import threading

        global _ACTIVE_STOP
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
            _ACTIVE_STOP = self
        return self

    def restore(self) -> None:
        """Put back the handlers this replaced."""
        import signal

        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        import signal

        if self.signal is None:
            self.signal = signum
            name = signal.Signals(signum).name
            print(f"\n{name}: saving a checkpoint at the next step, then stopping (again to stop at once)",
                  flush=True)
            return
        previous = self._previous.get(signum)
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)  # Python's SIGINT handler: KeyboardInterrupt
        elif previous != signal.SIG_IGN:
            signal.raise_signal(signum)  # the default action, now restored

    def __exit__(self, *exc) -> None:
        global _ACTIVE_STOP
        self.restore()
        if _ACTIVE_STOP is self:
            _ACTIVE_STOP = None


#: The stop request whose handlers are installed in this process, if any.
_ACTIVE_STOP: _StopRequest | None = None


def _restore_signals_in_child() -> None:
    """A process forked while a run's stop handlers are installed (the evaluation's worker pool)
    gets the handlers back that it would have had: a Python handler runs only between bytecodes,
    so a worker blocked in native code (a lock its pool holds while closing) would never act on the
    SIGTERM that ``Pool.terminate`` sends it, and the run would wait for it forever."""
    global _ACTIVE_STOP
    if _ACTIVE_STOP is not None:
        _ACTIVE_STOP.restore()
        _ACTIVE_STOP = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restore_signals_in_child)


class _Periodic(BaseCallback):
    """Evaluation (learning curve) and checkpoints every so many steps, every so many seconds of wall
    time and when a stop is requested (which then ends training)."""

    def __init__(self, config: TrainConfig, run: Path, start_time: float, *, checkpoint_s: float | None = None,
                 stop: _StopRequest | None = None, keep_agents: zoo.Card | None = None):
        """``start_time``: the run's start on the ``time.time()`` clock (earlier segments included).
        ``keep_agents``: the run's card (:func:`card_for`) to also save an agent file at each
        scheduled checkpoint (:data:`AGENTS_DIR`), or ``None``."""
        super().__init__()
        self.config, self.run, self.t0 = config, run, start_time
        self.checkpoint_s, self.stop = checkpoint_s, stop
        self.keep_agents = keep_agents
        self.next_eval = self.next_ckpt = float("inf")  # set when the model is known
        self.last_ckpt = time.monotonic()
        self.saved_at: int | None = None  # the steps of this segment's last checkpoint
        self.last_write_s = 0.0  # how long the last checkpoint took to write
        self.halting = False

    def _init_callback(self) -> None:
        self.next_eval = self._next(self.config.eval_every)
        self.next_ckpt = self._next(self.config.checkpoint_every)
        self.last_ckpt = time.monotonic()

    def _next(self, every: int) -> float:
        if not every:
            return float("inf")
        return (self.model.num_timesteps // every + 1) * every

    def _checkpoint_due(self) -> bool:
        if self.num_timesteps >= self.next_ckpt or self.stop_requested:
            return True
        if self.checkpoint_s is None:
            return False
        # a checkpoint that takes long to write (a replay buffer of gigabytes) is written less often:
        # at most 1/TIMED_CHECKPOINT_SHARE of the wall time goes to the timed ones
        gap = max(self.checkpoint_s, self.last_write_s * TIMED_CHECKPOINT_SHARE)
        return time.monotonic() - self.last_ckpt >= gap

    @property
    def stop_requested(self) -> bool:
        return self.stop is not None and self.stop.requested

    def _on_step(self) -> bool:
        if self.halting:
            return False
        n = self.num_timesteps
        if n >= self.next_eval and not self.stop_requested:
            if n < self.config.total_steps:  # the last point is the saved agent's evaluation
                self.evaluate()
            self.next_eval = self._next(self.config.eval_every)
        # A value-based model stores this step's transition, counts the call and updates its target
        # network after the callbacks: its checkpoint waits for the next rollout's start.
        if _replay_buffer(self.model) is None and self._checkpoint_due():
            self._checkpoint()
            return not self.stop_requested
        return True

    def _on_rollout_start(self) -> None:
        if _replay_buffer(self.model) is not None and self._checkpoint_due():
            self._checkpoint()
            self.halting = self.stop_requested  # the next step ends training, past the checkpoint

    def _checkpoint(self) -> None:
        start = time.monotonic()
        scheduled = self.num_timesteps >= self.next_ckpt  # not a timed one, nor a stop's
        save_checkpoint(self.model, self.run / "checkpoint.pt", time.time() - self.t0)
        if scheduled and self.keep_agents is not None:
            facts = {"steps": int(self.model.num_timesteps), "wall_s": round(time.time() - self.t0, 1),
                     "checkpoint": True}
            zoo.save(self.model, kept_agent_path(self.run, self.model.num_timesteps),
                     cast(zoo.Card, {**self.keep_agents, "training": facts}), overwrite=True, half=True,
                     anchor_embeddings=self.config.anchor_embeddings)
        self.next_ckpt = self._next(self.config.checkpoint_every)
        self.last_ckpt = time.monotonic()
        self.last_write_s = self.last_ckpt - start
        self.saved_at = int(self.model.num_timesteps)

    def evaluate(self, agent=None) -> evaluation.Evaluation:
        """Evaluate the model (or ``agent``, e.g. the saved file) and append to ``eval.csv``."""
        result = evaluation.evaluate(agent if agent is not None else self.model, color=self.config.color,
                                     track_seeds=self.config.eval_tracks, max_steps=self.config.eval_max_steps)
        import io

        from . import files

        path = self.run / "eval.csv"
        buf = io.StringIO(newline="")
        w = csv.writer(buf)
        if not path.exists():
            w.writerow(["timesteps", "wall_s", "mean_max_return", "std_max_return", "mean_final_return",
                        "laps_finished", "tracks"])
        w.writerow([self.num_timesteps, round(time.time() - self.t0, 1), f"{result.mean_max_return:.2f}",
                    f"{result.std_max_return:.2f}", f"{result.mean_final_return:.2f}", result.laps,
                    len(result.episodes)])
        old = path.read_bytes() if path.exists() else b""
        files.write_bytes(path, old + buf.getvalue().encode())  # the whole log, atomically
        return result


def _hardware(device) -> dict:
    info = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "device": str(device)}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _record_hardware(run: Path, model, venv, rollout: int | None = None) -> list[dict]:
    """Append this segment's hardware (and the step it starts at) to ``hardware.json``; returns the
    list. A resumed run that moved machines records each one (a run from before this file existed
    starts its list at its first resume)."""
    path = run / "hardware.json"
    segments = json.loads(path.read_text()) if path.exists() else []
    segments = [s for s in segments if s["from_step"] < model.num_timesteps]  # steps past the checkpoint were redone
    segments.append({"from_step": int(model.num_timesteps), **_hardware(model.device),
                     "env_processes": getattr(venv, "n_workers", 0),  # 0: stepped in the main process
                     "torch_threads": torch.get_num_threads(),
                     "rollout_threads": rollout or torch.get_num_threads(),
                     "precision": getattr(model, "precision", "fp32")})
    files.write_text(path, json.dumps(segments, indent=1) + "\n")
    return segments


def train(config: TrainConfig, out: str | os.PathLike, *, resume: bool = False, progress_bar: bool = False,
          checkpoint_minutes: float | None = CHECKPOINT_MINUTES, stop_on_signals: bool = True,
          keep_agents: bool = False, start_from: str | os.PathLike | None = None):
    """Train as ``config`` says, writing the run folder ``out``; returns the trained model.

    An existing run folder is never overwritten: pass ``resume=True`` to continue it from its last
    checkpoint (the config must be the same, except where it runs: ``device`` and ``workers``).
    Everything is checked before the folder is made (:func:`check_start`); a folder this call made
    is removed again if the run fails before its first step, so the same command can be retried.

    ``checkpoint_minutes``: also save a checkpoint when this much wall time has passed since the last
    one, or 20 times as long as the last one took to write if that is longer (a DQN-family run's
    replay buffer); ``None`` or 0: only every ``config.checkpoint_every`` steps. Saving does not
    change what an uninterrupted run learns. With ``stop_on_signals`` (default), Ctrl-C or
    ``SIGTERM`` during training saves a checkpoint at the next step and raises
    :class:`TrainingStopped` (main thread only; a second signal stops at once).

    ``keep_agents``: also save an agent file (as the final one is saved) at each of the
    ``checkpoint_every`` checkpoints, in ``out/agents/`` (:func:`kept_agents`), to choose one on
    validation tracks afterwards (``relreps select``; :mod:`relreps.selection`). A resumed run keeps
    them only if asked again; the ones past the checkpoint it resumes from are removed.

    ``start_from``: another run folder whose latest ``checkpoint.pt`` this new run continues
    (``relreps train --out NEW --from RUN``): its weights, optimiser state, step count and logs up
    to that step, with the settings :data:`CONTINUE_MAY_CHANGE` lists changed (a longer
    ``total_steps``, which the learning-rate schedule anneals to; another anchor update, e.g.
    ``alpha=0`` to end training with re-embedded anchors; hyper-parameters). The origin is
    read, never written; the new run records it in ``origin.json`` and its agent card
    (``training.origin``: the origin's folder name, step, checkpoint checksum and the settings
    changed). See :func:`check_origin`. Once started, the new run resumes as any other
    (``resume=True``).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if checkpoint_minutes is not None and (isinstance(checkpoint_minutes, bool)
                                           or not isinstance(checkpoint_minutes, (int, float))
                                           or not checkpoint_minutes >= 0 or math.isinf(checkpoint_minutes)):
        raise ValueError(f"checkpoint_minutes must be a number of minutes >= 0 (0 or None: only every "
                         f"checkpoint_every steps), got {checkpoint_minutes!r}")
    checkpoint_s = checkpoint_minutes * 60.0 if checkpoint_minutes else None
    run = Path(out)
    origin = None
    checked = config
    if start_from is not None:
        if (run / "config.json").exists():  # started already: a resume of that run, from the same origin
            _check_same_origin(run, Path(start_from), resume)
        else:
            origin = check_origin(config, start_from, out=run)
            checked = run_anchors(config, start_from)  # a custom anchor set: the origin's own copy
            _clear_interrupted_copy(run, Path(start_from), origin["checkpoint_sha256"])
    check_start(checked, out, resume=resume)
    fresh = not run.exists()
    emptied = not fresh and not any(run.iterdir())  # an empty folder the user made: kept, left empty
    run.mkdir(parents=True, exist_ok=True)
    lock = _lock(run)  # one process per run folder: two resumes would overwrite each other's work
    stepped: list[bool] = []  # filled by the first training step
    try:
        if origin is not None:
            _copy_origin(Path(start_from), run, origin)  # type: ignore[arg-type]
            resume = True  # from here on, the new run continues its copy of the origin's checkpoint
        return _train(config, run, resume, progress_bar, stepped, checkpoint_s=checkpoint_s,
                      stop_on_signals=stop_on_signals, keep_agents=keep_agents)
    except BaseException:
        if (fresh or emptied) and not stepped:
            _remove_failed_start(run, keep_folder=emptied)
        raise
    finally:
        lock.close()


def _remove_failed_start(run: Path, *, keep_folder: bool) -> None:
    """Remove what a start that failed before its first step wrote (the folder, or its contents)."""
    import shutil

    if not keep_folder:
        shutil.rmtree(run, ignore_errors=True)
        return
    _remove(list(run.iterdir()))


def _remove(paths: list[Path]) -> None:
    """Remove these files and folders (a link is removed, not followed)."""
    import shutil

    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


#: Hyper-parameters a continued run keeps (the checkpoint fixes them): the optimiser's epsilon,
#: which its saved state restores, and the replay buffer's size, which its saved buffer has.
CONTINUE_KEEPS_HYPERPARAMETERS = ("adam_eps", "buffer_size")


def check_origin(config: TrainConfig, start_from: str | os.PathLike, *, out: str | os.PathLike | None = None) -> dict:
    """What :func:`train` checks before it continues ``start_from``'s checkpoint with ``config``,
    and the record it keeps of it (``origin.json``; the card's ``training.origin``, without the
    local ``path``): the origin's folder name and path, the checkpoint's step and SHA-256, the
    settings changed (``field: [origin, new]``) and, for an origin that was itself continued from
    another run, that run's record (``origin``).

    Raises:
        FileNotFoundError: ``start_from`` is not a run folder with a ``config.json`` and a
            ``checkpoint.pt``.
        ValueError: ``config`` changes a setting outside :data:`CONTINUE_MAY_CHANGE` or a
            hyper-parameter of :data:`CONTINUE_KEEPS_HYPERPARAMETERS`; its ``total_steps`` is not
            past the checkpoint's step, or (DQN family) would raise the exploration rate again; the
            checkpoint is unreadable; or ``out`` is the origin or inside it.
    """
    src = Path(start_from)
    for name in ("config.json", "checkpoint.pt"):
        if not (src / name).is_file():
            raise FileNotFoundError(f"{src / name} not found: --from needs a run folder with a checkpoint "
                                    "(relreps train writes one every checkpoint_every steps)")
    if out is not None and src.resolve() in (Path(out).resolve(), *Path(out).resolve().parents):
        raise ValueError(f"--out {out} is the run it continues, or inside it: give a new folder elsewhere (to go "
                         "on in the same folder, use --resume)")
    saved = saved_config(src)
    assert saved is not None
    a, b = asdict(saved), asdict(config)
    changed = _changed_fields(saved, config)
    fixed = [k for k in changed if k not in CONTINUE_MAY_CHANGE]
    if fixed:
        raise ValueError(f"a run continued from {src} keeps its network and training tracks, but these settings "
                         f"differ: {'; '.join(f'{k}: {a[k]!r} -> {b[k]!r}' for k in fixed)}. What may change: "
                         f"{', '.join(CONTINUE_MAY_CHANGE)} (relreps train --help names their options)")
    hp_a, hp_b = _hyperparameters(saved), _hyperparameters(config)
    kept = [k for k in CONTINUE_KEEPS_HYPERPARAMETERS if k in hp_a and hp_a[k] != hp_b.get(k)]
    if kept:
        raise ValueError(f"a run continued from {src} keeps {', '.join(kept)} (its checkpoint holds the optimiser "
                         f"state or replay buffer made with them): "
                         f"{'; '.join(f'{k}: {hp_a[k]!r} -> {hp_b.get(k)!r}' for k in kept)}")
    state = _read_checkpoint(src / "checkpoint.pt", "cpu")
    try:
        steps = int(state["num_timesteps"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{src / 'checkpoint.pt'} is not a checkpoint (no step count): the file is truncated or "
                         "corrupted") from None
    if config.total_steps <= steps:
        raise ValueError(f"total_steps {config.total_steps} is not past the checkpoint of {src} ({steps} steps): "
                         f"give more (--steps counts the origin's steps too, e.g. {steps + 200_000})")
    if "exploration_fraction" in hp_b:  # the DQN family: epsilon decays over a fraction of total_steps
        def eps(hp: dict, total: int) -> float:
            start, end, frac = hp.get("exploration_initial_eps", 1.0), hp["exploration_final_eps"], hp[
                "exploration_fraction"]
            done = steps / total
            return end if frac <= 0 or done >= frac else start + (end - start) * done / frac

        before, after = eps(hp_a, saved.total_steps), eps(hp_b, config.total_steps)
        if after > before + 1e-12:
            most = int(steps / hp_b["exploration_fraction"]) if hp_b["exploration_fraction"] > 0 else steps
            raise ValueError(f"total_steps {config.total_steps} would raise the exploration rate from {before:.3g} "
                             f"back to {after:.3g} at the checkpoint's step {steps} (it decays over "
                             f"exploration_fraction={hp_b['exploration_fraction']} of total_steps): give at most "
                             f"{most} steps, or a smaller exploration_fraction with --set")
    record: dict = {"run": src.resolve().name, "path": str(src.resolve()), "steps": steps,
                    "checkpoint_sha256": files.sha256_file(src / "checkpoint.pt"),
                    "changed": {k: [a[k], b[k]] for k in changed}}
    if (src / ORIGIN_FILE).is_file():  # a continued run continued again: the chain back to the first
        record["origin"] = json.loads((src / ORIGIN_FILE).read_text())
    return record


def _hyperparameters(config: TrainConfig) -> dict:
    """The algorithm preset with the config's overrides."""
    return {**algos.REGISTRY[config.algo].defaults, **config.hyperparameters}


def card_origin(record: dict) -> dict:
    """An ``origin.json`` record as an agent card keeps it: without the local paths."""
    out = {k: v for k, v in record.items() if k != "path"}
    if "origin" in out:
        out["origin"] = card_origin(out["origin"])
    return out


def _check_same_origin(run: Path, start_from: Path, resume: bool) -> None:
    """A folder already started from an origin is resumed (``resume``) from its own checkpoint, and
    only under the origin it was started from."""
    if not resume:
        raise FileExistsError(f"run folder {run} exists; continue it with --resume (relreps train --out {run} "
                              "--resume), or choose another folder")
    path = run / ORIGIN_FILE
    recorded = json.loads(path.read_text()).get("path") if path.is_file() else None
    if recorded != str(start_from.resolve()):
        raise ValueError(f"run folder {run} was not started from {start_from} (its origin: {recorded}); resume it "
                         "without --from, or choose another folder")


#: What a continued run copies from its origin: the checkpoint (a DQN-family run's replay buffer
#: with it), the logs up to it (rows past the checkpoint are dropped as on a resume) and the run's
#: copy of a custom anchor set (:data:`RUN_ANCHORS`).
_ORIGIN_FILES = ("checkpoint.pt", REPLAY_FILE, "eval.csv", "progress.csv", "hardware.json", "segments.json")


def _origin_copies(src: Path) -> list[str]:
    return [*_ORIGIN_FILES, *sorted(p.name for p in src.glob("progress.part*.csv"))]


def _clear_interrupted_copy(run: Path, src: Path, checkpoint_sha256: str) -> None:
    """A start from ``src`` (whose checkpoint has ``checkpoint_sha256``) killed while it copied the
    origin left copies (or their temporary files) and no ``config.json``: remove them (they are the
    origin's files, which stay in the origin), so that the same command can start again. A folder
    holding anything else is left alone (:func:`check_start` refuses it); one another process is
    starting in is not touched.

    Raises:
        RunInUseError: another process holds the folder's lock (it is copying or training).
    """
    if not run.is_dir() or (run / "config.json").exists():
        return
    ours = {*_origin_copies(src), ORIGIN_FILE, RUN_ANCHORS}

    def temporary(name: str) -> bool:  # files.atomic_path's temporary file of one of them
        return ".tmp" in name and any(name.startswith(f".{o}.") for o in ours)

    entries = [p for p in run.iterdir() if p.name != ".lock"]
    if not entries or any(p.name not in ours and not temporary(p.name) for p in entries):
        return
    # what the copy writes first: the anchor set's copy (where the origin has one), then the checkpoint
    started = ((src / RUN_ANCHORS).is_dir() and (run / RUN_ANCHORS).is_dir()) or any(
        p.name.startswith(".checkpoint.pt.") for p in entries) or (
        (run / "checkpoint.pt").is_file() and files.sha256_file(run / "checkpoint.pt") == checkpoint_sha256)
    if not started:
        return
    lock = files.try_lock(run / ".lock")
    if lock is None:
        raise RunInUseError(f"run folder {run} is in use by another training process")
    try:
        _remove(entries)
    finally:
        lock.close()


def _copy_origin(src: Path, run: Path, origin: dict) -> None:
    import numpy as np

    if (src / RUN_ANCHORS / "anchors.json").is_file():
        import shutil

        shutil.copytree(src / RUN_ANCHORS, run / RUN_ANCHORS)
    for name in _origin_copies(src):
        if (src / name).is_file():
            files.copy_file(src / name, run / name)
    if files.sha256_file(run / "checkpoint.pt") != origin["checkpoint_sha256"]:
        raise ValueError(f"{src / 'checkpoint.pt'} changed while it was copied (is the origin still training?); "
                         "try again")
    if (run / REPLAY_FILE).is_file():
        with np.load(run / REPLAY_FILE, allow_pickle=False) as z:
            buffer_step = int(z["num_timesteps"]) if "num_timesteps" in z.files else -1
        if buffer_step != origin["steps"]:
            raise ValueError(f"{src / REPLAY_FILE} is of step {buffer_step}, not the checkpoint's {origin['steps']} "
                             "(is the origin still training?); try again")
    files.write_text(run / ORIGIN_FILE, json.dumps(origin, indent=1) + "\n")


def _check_resumable(config: TrainConfig, run: Path, resume: bool) -> None:
    """A run folder with a config is continued only with ``resume``, the same config and no
    ``done.json``; a folder without one is a new run."""
    cfg_path = run / "config.json"
    if not cfg_path.exists():
        return
    if not resume:
        raise FileExistsError(f"run folder {run} exists; pass resume=True (--resume) to continue it, "
                              "or choose another folder")
    saved = saved_config(run)
    assert saved is not None
    diff = _config_diff(saved, config)
    if diff:
        raise ValueError(f"{cfg_path} holds a different config ({'; '.join(diff)}); resume with the "
                         "same settings")
    if (run / "done.json").exists():
        raise FileExistsError(f"run {run} has already finished (done.json): nothing to resume; its agent is "
                              f"{run / 'agent.json'}. To train further, start a new run folder from its checkpoint "
                              f"(relreps train --out NEW --from {run} --steps MORE)")


def saved_config(run: str | os.PathLike) -> TrainConfig | None:
    """The config a run folder was started with (its ``config.json``), or None for a folder without
    one (a new run). ``relreps train --out RUN --resume`` continues with it.

    Raises:
        ValueError: ``config.json`` is not a readable run config.
    """
    cfg_path = Path(run) / "config.json"
    if not cfg_path.is_file():
        return None
    try:
        return TrainConfig.from_json(json.loads(cfg_path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{cfg_path} is not a readable run config ({e})") from None


def check_start(config: TrainConfig, out: str | os.PathLike, *, resume: bool = False) -> None:
    """What :func:`train` checks before it writes anything: the run folder (a new or empty folder,
    or, with ``resume``, a run folder of the same config that has not finished; never a folder of
    other files), the device (present on this machine) and, for a relative encoder, the anchor set
    (it loads, and has enough frames for the anchors asked for)."""
    if not str(out).strip():
        raise ValueError("the run folder is empty: give one with --out, e.g. runs/ppo-rel-green")
    run = Path(out)
    if run.exists() and not run.is_dir():
        raise FileExistsError(f"{run} exists and is not a folder; choose a new run folder")
    cfg_path = run / "config.json"
    if run.is_dir() and not cfg_path.exists() and any(p.name != ".lock" for p in run.iterdir()):
        raise FileExistsError(f"{run} exists and is not a run folder (it holds other files and no config.json); "
                              "choose a new run folder")
    _check_resumable(config, run, resume)
    check_device(config.device)
    if config.representation == "relative":
        from . import anchors
        from .extractors import CONV_DIM

        aset = anchors.load(run_anchors(config, run).anchors)
        wanted = config.n_anchors or (CONV_DIM if config.latent_dim is None else config.latent_dim)
        if wanted > aset.n_anchors:
            raise ValueError(f"{wanted} anchors asked for (n_anchors, or one per encoder dimension), but the set "
                             f"{aset.name!r} has {aset.n_anchors}: pass a smaller --n-anchors or another --anchors")


#: Fields that do not affect an absolute encoder (ignored when comparing absolute configs).
_RELATIVE_ONLY = ("anchors", "n_anchors", "alpha", "anchor_update", "std_floor", "standardize")
#: Where a run executes, not what it learns: a run may resume with other values (e.g. started on a
#: 16-core GPU machine, finished on a laptop); each segment's hardware is kept in ``hardware.json``.
_EXECUTION_ONLY = ("workers", "device")
#: What a run continued from another run's checkpoint (:func:`train`'s ``start_from``, ``relreps
#: train --from``) may set differently from its origin: how long and how it goes on training, and
#: where it runs. Every other setting (the algorithm, representation, colour, seed, anchors,
#: architecture, projection and number of environments) is the origin's network or its training
#: tracks: changing it would make another agent, trained from scratch.
CONTINUE_MAY_CHANGE = ("total_steps", "alpha", "anchor_update", "anchor_embeddings", "freeze_encoder",
                       "hyperparameters", "precision", "eval_every", "eval_tracks", "eval_max_steps",
                       "checkpoint_every", *_EXECUTION_ONLY)
#: The file in a continued run that names its origin (:func:`check_origin`).
ORIGIN_FILE = "origin.json"


def _changed_fields(saved: TrainConfig, given: TrainConfig) -> list[str]:
    """The settings that differ (relative-only ones skipped for absolute runs; ``device`` and
    ``workers``, where a run executes, always skipped)."""
    a, b = asdict(saved), asdict(given)
    absolute = saved.representation == given.representation == "absolute"
    skip = _EXECUTION_ONLY + (_RELATIVE_ONLY if absolute else ())
    return [k for k in a if k not in skip and a[k] != b[k]]


def _config_diff(saved: TrainConfig, given: TrainConfig) -> list[str]:
    """``field: saved -> given`` for each setting :func:`_changed_fields` finds."""
    a, b = asdict(saved), asdict(given)
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in _changed_fields(saved, given)]


#: The folder in a run that holds its copy of a custom (not shipped) anchor set: the recipe, the
#: anchor indices and the frames in the run's colour, so that resuming and exporting the run do
#: not depend on where the set was when training started.
RUN_ANCHORS = "anchor-set"


def run_anchors(config: TrainConfig, run: str | os.PathLike, *, create: bool = False) -> TrainConfig:
    """``config`` reading its anchors from the run's own copy (:data:`RUN_ANCHORS`) when the run has
    one. With ``create``, a relative run whose set is not a shipped one gets that copy first (the
    set's identity and the frames in the run's colour are unchanged). Absolute runs and runs on a
    shipped set are returned as they are."""
    from . import anchors

    if config.representation != "relative":
        return config
    copy = Path(run) / RUN_ANCHORS
    if (copy / "anchors.json").is_file():
        return replace(config, anchors=str(copy))
    if not create:
        return config
    aset = anchors.load(config.anchors)
    if zoo._is_shipped_set({"set": aset.name, "set_id": aset.identity}):
        return config
    frames = aset.frames(config.color)
    own = anchors.AnchorSet(name=aset.name, recipe=aset.recipe, indices=aset.indices,
                            checksums={config.color: anchors.frames_checksum(frames)},
                            meta={k: v for k, v in aset.meta.items() if k != "files"})
    own._frames[config.color] = frames
    own.save(copy)
    return replace(config, anchors=str(copy))


class RunInUseError(BlockingIOError):
    """Another process is training in the run folder (its lock is held)."""


def _lock(run: Path):
    f = files.try_lock(run / ".lock")
    if f is None:
        raise RunInUseError(f"run folder {run} is in use by another training process")
    return f


class _FirstStep(BaseCallback):
    """Notes (in the list it is given) that a training step has run."""

    def __init__(self, stepped: list):
        super().__init__()
        self.stepped = stepped

    def _on_step(self) -> bool:
        if not self.stepped:
            self.stepped.append(True)
        return True


def rollout_threads(config: TrainConfig, device) -> int | None:
    """The torch threads :func:`train` uses while collecting a PPO rollout: 1 on a CPU whose process
    has more than one thread (:class:`relreps.algos.PhaseThreads`; the update keeps them all), else
    ``None`` (unchanged: a GPU run, an off-policy algorithm, whose rollouts and updates interleave
    step by step, or one thread already).

    A rollout's forward pass is one small batch (the 16 environments' frames): a second thread costs
    more to wake than it saves, and the environment workers need the cores; the update's minibatches
    of 512 use every thread. Measured side by side (``relreps bench train --variants fp32
    fp32:threads=1/2``): 1.17x end to end alone on the 2-core CPU, 1.9x beside other runs
    (``results/bench-train-avx2.txt``, ``results/bench-train.txt``)."""
    if config.algo != "ppo" or torch.device(device).type != "cpu" or torch.get_num_threads() <= 1:
        return None
    return 1


def _train(config: TrainConfig, run: Path, resume: bool, progress_bar: bool, stepped: list | None = None, *,
           checkpoint_s: float | None = None, stop_on_signals: bool = False, keep_agents: bool = False):
    from importlib.metadata import version

    from stable_baselines3.common.logger import configure

    from . import files

    cfg_path = run / "config.json"
    _check_resumable(config, run, resume)  # again, now that this process holds the run's lock
    built = run_anchors(config, run, create=True)  # a custom anchor set: the run's own copy
    card_base = card_for(built)  # reads the anchor set now, not after hours of training
    files.write_text(cfg_path, json.dumps(asdict(config), indent=1) + "\n")

    t0 = time.time()
    venv = envs.make_vec_env(config.color, config.n_envs, seed=config.seed, workers=config.workers)
    try:
        model = build_model(built, venv)
        formats = ["csv"]
        try:  # what SB3's TensorBoard writer needs
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401

            formats.append("tensorboard")
        except ImportError:
            pass
        ckpt = run / "checkpoint.pt"
        before = 0.0  # wall time of earlier segments
        if resume and ckpt.exists():
            before = load_checkpoint(model, ckpt)
            _keep_logs_for_resume(run, model.num_timesteps, before)
        elif resume and any((run / f).exists() for f in ("progress.csv", "eval.csv")):
            _keep_logs_for_resume(run, 0, 0.0)  # died before its first checkpoint: start over, logs too
        model.set_logger(configure(str(run), formats))
        t0 -= before
        rollout = rollout_threads(config, model.device)
        segments_hw = _record_hardware(run, model, venv, rollout)
        remaining = config.total_steps - model.num_timesteps
        stop = _StopRequest()
        if keep_agents:
            (run / AGENTS_DIR).mkdir(exist_ok=True)
        periodic = _Periodic(config, run, t0, checkpoint_s=checkpoint_s, stop=stop,
                             keep_agents=card_base if keep_agents else None)
        callbacks = [periodic, _FirstStep(stepped if stepped is not None else [])]
        if config.representation == "relative":  # first: the anchors move before a checkpoint is written
            callbacks.insert(0, algos.anchor_update_callback(config.algo, model, config.anchor_update))
        if rollout is not None:  # last: the anchor update keeps every thread
            callbacks.append(algos.PhaseThreads(rollout, torch.get_num_threads()))
        if remaining > 0:
            with stop if stop_on_signals else contextlib.nullcontext():
                model.learn(remaining, callback=CallbackList(callbacks), reset_num_timesteps=False,
                            progress_bar=progress_bar)
        if stop.signal is not None and model.num_timesteps < config.total_steps:
            import signal

            raise TrainingStopped(f"{signal.Signals(stop.signal).name}: stopped; checkpoint of {periodic.saved_at} "
                                  f"of {config.total_steps} steps saved in {ckpt}; continue with relreps train "
                                  f"--out {run} --resume (or train(config, out, resume=True))", stop.signal)
        # A finished run is not resumed: its replay buffer (gigabytes) is neither written again nor kept.
        (run / REPLAY_FILE).unlink(missing_ok=True)
        save_checkpoint(model, ckpt, time.time() - t0, replay=False)  # full precision: resuming stays exact
        _merge_progress(run)
        facts = {
            "steps": model.num_timesteps,
            "wall_s": round(time.time() - t0, 1),  # all segments, evaluations included
            "steps_per_s": round(model.num_timesteps / max(time.time() - t0, 1e-9), 1),
            "precision": getattr(model, "precision", "fp32"),  # as resolved on the last machine
            "hardware": segments_hw[-1],  # where it finished; every segment's below when it moved
            **({"hardware_segments": segments_hw} if len(segments_hw) > 1 else {}),
            "versions": {p: version(p) for p in ("torch", "stable-baselines3", "gymnasium", "numpy")},
        }
        if (run / ORIGIN_FILE).is_file():  # continued from another run's checkpoint
            facts["origin"] = card_origin(json.loads((run / ORIGIN_FILE).read_text()))
        # The agent file holds float16 tensors (about half of the 4 MB an agent may take); its
        # final evaluation is of the file as loaded, so the card's scores describe what ships.
        card_path = zoo.save(model, run / "agent", cast(zoo.Card, {**card_base, "training": facts}),
                             overwrite=True, half=True, anchor_embeddings=config.anchor_embeddings)
        periodic.init_callback(model)
        final = periodic.evaluate(zoo.load(card_path))
        facts["final_eval"] = final.summary()
        card = json.loads(card_path.read_text())
        card["training"] = facts
        files.write_text(card_path, json.dumps(card, indent=1, default=str) + "\n")
        files.write_text(run / "done.json", json.dumps(facts, indent=1) + "\n")
        return model
    finally:
        venv.close()
