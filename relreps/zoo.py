"""Agent files: safetensors weights + a JSON card, checksums, and the registry of shipped agents.

An agent ``NAME`` is two files side by side:

- ``NAME.safetensors``: the policy's tensors (weights and the relative encoder's anchor
  embeddings), read with ``safetensors`` (never unpickled);
- ``NAME.json``: the card: algorithm, representation, colour, the architecture needed to rebuild
  the policy, the anchor set and the checksum of its frames in the agent's colour, training facts
  (steps, wall time, hardware, versions), evaluation scores, and the weights file's sha256.

:func:`load` checks the sha256, rebuilds the policy from the card, loads the tensors strictly (a card
that does not match the weights is an error), and checks the anchors. :func:`available` lists the
shipped agents (``relreps/data/zoo``). :func:`export_sb3` writes an SB3 zip for ``PPO.load`` users.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, cast

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy

from . import envs, files
from .evaluation import policy_of

__all__ = [
    "ACTION_SPACE",
    "AGENTS_DIR",
    "ANCHOR_COPY_SUFFIX",
    "CARD_FIELDS",
    "EVALUATION_FILE",
    "FORMAT_VERSION",
    "FULL_PRECISION",
    "LEGACY_ENCODER_KWARGS",
    "LOG_FILES",
    "MAX_BYTES",
    "OBS_SPACE",
    "SELECTION_FILE",
    "SHIPPED_DIR",
    "ZOO_ENV",
    "Agent",
    "AnchorInfo",
    "Card",
    "ZooError",
    "agent_name",
    "anchor_key",
    "available",
    "build_policy",
    "card",
    "catalog",
    "check_card",
    "check_card_evaluation",
    "color_rank",
    "encoder_kwargs",
    "export_sb3",
    "kept_agent_path",
    "kept_agents",
    "kept_evaluation_path",
    "learning_curve",
    "load",
    "logs",
    "save",
    "score",
    "seed_agent_name",
    "ship",
    "training_facts",
    "variants",
    "zoo_dir",
]


FORMAT_VERSION = 1
SHIPPED_DIR = Path(__file__).parent / "data" / "zoo"
#: Set this environment variable to a folder to use it as the zoo instead of the shipped one
#: (agent names then resolve there, and :func:`available` lists it).
ZOO_ENV = "RELREPS_ZOO"


def zoo_dir() -> Path:
    """The zoo folder: ``$RELREPS_ZOO`` when set, else the agents shipped with the package."""
    return Path(os.environ[ZOO_ENV]) if os.environ.get(ZOO_ENV) else SHIPPED_DIR
MAX_BYTES = 4 * 1024 * 1024  # the size a shipped agent must stay under


class ZooError(ValueError):
    """A missing, corrupted or inconsistent agent file."""


def _policy_classes() -> dict:
    from .algos import REGISTRY

    return {name: spec.policy for name, spec in REGISTRY.items()}


def _encoder_classes() -> dict:
    from .extractors import AbsoluteEncoder, RelativeEncoder

    return {"absolute": AbsoluteEncoder, "relative": RelativeEncoder}


OBS_SPACE = spaces.Box(0, 255, (3, envs.OBS_SIZE, envs.OBS_SIZE), np.uint8)
ACTION_SPACE = spaces.Discrete(len(envs.ACTIONS))


class AnchorInfo(TypedDict, total=False):
    """A relative agent's anchors, as its card records them."""

    set: str  #: the anchor set's name
    color: str  #: the colour of the frames the encoder uses
    frames_checksum: str  #: sha256 of the set's frames in that colour
    set_id: str  #: the set's identity (content hash), when recorded
    used_checksum: str  #: sha256 of the frames the encoder uses (after the n_anchors choice)
    path: str  #: the set's folder, for a set that is not shipped
    copy: str  #: the file beside the card holding those frames, for a set that is not shipped
    embeddings: str  #: ``"reembedded"``: the file holds no anchor embeddings (:data:`ANCHOR_EMBEDDINGS`)


class Card(TypedDict, total=False):
    """An agent card (``NAME.json`` beside ``NAME.safetensors``): what :func:`load` reads and
    :func:`check_card` checks. :data:`CARD_FIELDS` are required; the rest depends on the agent."""

    format: int
    name: str
    algo: str
    representation: str
    color: str
    seed: int
    head_dim: int
    encoder_kwargs: dict[str, Any]
    weights: str
    sha256: str
    bytes: int
    dtype: str
    config: dict[str, Any]  #: the TrainConfig it trained with (relreps.training.trained_config)
    relreps: str  #: the package version that saved it
    anchors: AnchorInfo
    training: dict[str, Any]  #: steps, wall time, hardware, versions, final evaluation
    evaluation: dict[str, Any]  #: the shipped 10-track evaluation
    stitched: dict[str, Any]  #: a stitched agent: its encoder and policy agents
    align: str  #: a stitched agent's alignment


@dataclass
class Agent:
    """A loaded agent: an SB3 policy (``predict`` as SB3) plus its card."""

    name: str
    policy: BasePolicy
    card: Card = field(repr=False)

    @property
    def algo(self) -> str:
        return self.card["algo"]

    @property
    def representation(self) -> str:
        return self.card["representation"]

    @property
    def color(self) -> str:
        return self.card["color"]

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        return self.policy.predict(observation, state, episode_start, deterministic)


def _unique_state(policy) -> tuple[dict, set[str]]:
    """The policy's tensors, each stored once: PPO shares one extractor under three names
    (features_extractor, pi_ and vf_features_extractor); later names of a tensor are aliases."""
    unique, aliases, seen = {}, set(), set()
    for k, v in policy.state_dict(keep_vars=False).items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        if v.numel() and key in seen:
            aliases.add(k)
            continue
        seen.add(key)
        unique[k] = v.detach().cpu().contiguous()
    return unique, aliases


#: What a relative card's ``encoder_kwargs`` left out meant when it was saved: cards record these
#: settings only since they became choices (the encoders' defaults then).
LEGACY_ENCODER_KWARGS: dict[str, dict[str, Any]] = {"relative": {"standardize": True, "latent_norm": None}, "absolute": {"latent_norm": None}}


def encoder_kwargs(card: Card) -> dict[str, Any]:
    """The encoder arguments a card describes, with every setting it leaves out filled in as it was
    when the card was saved (:data:`LEGACY_ENCODER_KWARGS`), so an old card builds the encoder it
    trained with whatever the encoders' defaults are now."""
    return {**LEGACY_ENCODER_KWARGS.get(card.get("representation", ""), {}), **card["encoder_kwargs"]}


def build_policy(card: Card, *, anchor_frames: np.ndarray | None = None) -> BasePolicy:
    """The untrained policy a card describes (architecture only).

    ``anchor_frames``: a relative encoder's anchor frames, used instead of loading the set that
    ``encoder_kwargs["anchors"]`` names: the set's frames in the card's colour (the encoder then
    chooses ``n_anchors`` of them, as in training), or exactly the frames it uses (as many as it
    takes, so no choice is made)."""
    try:
        policy_class = _policy_classes()[card["algo"]]
        encoder_class = _encoder_classes()[card["representation"]]
    except KeyError as e:
        raise ZooError(f"card names an unknown {e}: algorithms {sorted(_policy_classes())}, "
                       f"representations {sorted(_encoder_classes())}") from None
    kwargs = encoder_kwargs(card)
    if anchor_frames is not None:
        kwargs["anchors"] = anchor_frames
    try:
        return policy_class(
            OBS_SPACE, ACTION_SPACE, lambda _: 0.0,
            features_extractor_class=encoder_class,
            features_extractor_kwargs=kwargs,
            head_dim=card["head_dim"],
        )
    except TypeError as e:  # encoder_kwargs that the card's encoder does not take
        raise ZooError(f"the card's encoder_kwargs do not fit a {card['representation']} encoder: {e}") from None


#: The suffix of the copy of a relative agent's anchor frames kept beside its card
#: (``NAME.anchors.npy.xz``) when its set is not a shipped one.
ANCHOR_COPY_SUFFIX = ".anchors.npy.xz"


def _is_shipped_set(info: AnchorInfo) -> bool:
    """Whether a card's ``anchors`` entry names a shipped anchor set with the same content (by its
    identity when the card records one, else by the checksum of its frames in the agent's colour)."""
    from . import anchors

    if info.get("set") not in anchors.available():
        return False
    if "set_id" in info:
        return _shipped_identity(info["set"]) == info["set_id"]
    shipped = json.loads((anchors.SHIPPED_DIR / info["set"] / "anchors.json").read_text())
    return shipped.get("checksums", {}).get(info.get("color")) == info.get("frames_checksum")


def _settings_of(policy, card: Card) -> dict[str, Any]:
    """The card's ``encoder_kwargs`` with the encoder's own settings written in where the card leaves
    them out and :func:`encoder_kwargs` would read them otherwise (:data:`LEGACY_ENCODER_KWARGS`), so
    the saved agent loads as the encoder it is."""
    from .extractors import encoder_of

    kwargs = dict(card.get("encoder_kwargs", {}))
    try:
        encoder = _innermost(encoder_of(policy))
    except ValueError:
        return kwargs
    for key, then in LEGACY_ENCODER_KWARGS.get(card.get("representation", ""), {}).items():
        if key not in kwargs and hasattr(encoder, key) and getattr(encoder, key) != then:
            kwargs[key] = getattr(encoder, key)  # what the card would otherwise be read as differs
    return kwargs


#: State kept in float32 by ``save(..., half=True)`` (tensor names ending so).
FULL_PRECISION = ("anchor_embeddings",)

#: What a relative agent's file holds of its anchor embeddings (:func:`save`'s ``anchor_embeddings``):
#: ``"saved"``, the moving average that training kept, or ``"reembedded"``, none: the anchor frames
#: are embedded with the agent's weights when it is loaded.
ANCHOR_EMBEDDINGS = ("saved", "reembedded")


def save(model_or_policy, path: str | os.PathLike, card: Card, *, overwrite: bool = False,
         half: bool = False, anchor_embeddings: str = "saved") -> Path:
    """Write ``path.safetensors`` and ``path.json``; returns the ``.json`` path.

    ``half`` stores floating-point tensors as float16 (half the size; the loaded agent computes in
    float32 with the rounded weights, so evaluate the agent as loaded), except a relative encoder's
    anchor embeddings (:data:`FULL_PRECISION`), kept in float32: the projection standardises with
    their per-dimension standard deviation, which for nearly dead units is far below float16's
    resolution (the book's lab notes: with float16 anchors such an agent drove differently, with
    float16 weights alone identically). Refuses to replace an
    existing agent unless ``overwrite=True``.

    ``anchor_embeddings="reembedded"`` (relative agents): the file leaves the anchor embeddings out and
    the card says so (``anchors.embeddings``); :func:`load` embeds the anchor frames with the loaded
    weights. With 3136 anchors on 3136 features they are 39 MB, over what an agent file may take
    (:data:`MAX_BYTES`); and the moving average lags the final encoder, whose own embedding of the
    anchors made two colours' encoders agree more (the book's lab notes). The policy learnt with the
    average: evaluate the agent as loaded.

    A relative agent's card records the checksum of the anchor frames its encoder uses
    (``anchors.used_checksum``); when its set is not a shipped one, those frames are also written
    beside the card (``NAME.anchors.npy.xz``, named by ``anchors.copy``), so the agent loads on any
    machine. Every file is written atomically, the card last.
    """
    from safetensors.torch import save as save_bytes

    from . import anchors, files

    policy = policy_of(model_or_policy)
    if anchor_embeddings not in ANCHOR_EMBEDDINGS:
        raise ValueError(f"unknown anchor_embeddings {anchor_embeddings!r}: expected one of {ANCHOR_EMBEDDINGS}")
    reembed = anchor_embeddings == "reembedded"
    if reembed:
        from .algos import relative_encoders_in

        if not relative_encoders_in(policy):
            raise ValueError("anchor_embeddings='reembedded' is for relative agents: this one has no anchors")
        if card.get("representation") != "relative" or not isinstance(card.get("anchors"), dict):
            raise ValueError("anchor_embeddings='reembedded' needs a relative agent's card with its anchors "
                             "(representation 'relative' and an 'anchors' entry), which says so to the loader")
    if isinstance(card.get("stitched"), dict) and card["stitched"].get("align"):
        raise ValueError(f"a stitch made with align={card['stitched']['align']!r} cannot be saved as an agent file "
                         "(its encoder is wrapped, which no card describes): save the two agents and stitch again")
    base = Path(path)
    if base.suffix in (".json", ".safetensors"):
        base = base.with_suffix("")
    weights, card_path = base.with_suffix(".safetensors"), base.with_suffix(".json")
    if not base.name or base.name.startswith("."):
        raise ValueError(f"invalid agent path {str(path)!r}: it needs a file name, e.g. runs/x/agent")
    copy_path = base.with_name(base.name + ANCHOR_COPY_SUFFIX)
    if (weights.exists() or card_path.exists()) and not overwrite:
        raise FileExistsError(f"an agent already exists at {base}; choose another name or pass overwrite=True")
    tensors, _ = _unique_state(policy)
    if reembed:
        tensors = {k: v for k, v in tensors.items() if not k.endswith("anchor_embeddings")}
    if half:
        tensors = {k: v.half() if v.is_floating_point() and not k.endswith(FULL_PRECISION) else v
                   for k, v in tensors.items()}
    data = save_bytes(tensors)
    card = cast(Card, dict(card, name=base.name, weights=weights.name, sha256=hashlib.sha256(data).hexdigest(),
                           bytes=len(data), dtype="float16" if half else "float32",
                           encoder_kwargs=_settings_of(policy, card)))
    copy_bytes = None
    if card.get("representation") == "relative" and isinstance(card.get("anchors"), dict):
        from .extractors import encoder_of

        used = getattr(_innermost(encoder_of(policy)), "anchor_frames", None)
        if used is not None:
            used = used.detach().cpu().numpy()
            info = cast(AnchorInfo, {k: v for k, v in card["anchors"].items() if k != "copy"})
            info["used_checksum"] = anchors.frames_checksum(used)
            if not _is_shipped_set(info):
                copy_bytes = anchors.frames_bytes(used)
                info["copy"] = copy_path.name
            info.pop("embeddings", None)
            if reembed:
                info["embeddings"] = "reembedded"
            card["anchors"] = info
    if copy_bytes is not None:
        files.write_bytes(copy_path, copy_bytes)
    files.write_bytes(weights, data)
    files.write_text(card_path, json.dumps(card, indent=1, default=str) + "\n")
    return card_path


def _innermost(encoder):
    """The encoder an aligned stitch wraps (itself for any other encoder)."""
    while hasattr(encoder, "encoder") and not hasattr(encoder, "anchor_frames"):
        encoder = encoder.encoder
    return encoder


def available() -> list[str]:
    """Names of the agents in the zoo (:func:`zoo_dir`)."""
    root = zoo_dir()
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.json"))


def card(name: str | os.PathLike, *, root: str | os.PathLike | None = None) -> Card:
    """The JSON card of an agent (zoo name, or card path as :func:`load` takes), read without
    loading (or checking) its weights; ``root``: look the name up in that zoo folder instead."""
    if root is None:
        return _read_card(_resolve(name))
    path = Path(root) / f"{name}.json"
    if not path.is_file():
        raise ZooError(f"no agent {str(name)!r} in {path.parent}")
    return _read_card(path)


def agent_name(algo: str, representation: str, color: str) -> str:
    """The zoo's naming rule, e.g. ``ppo-rel-green`` (what ``relreps table`` looks for)."""
    return f"{algo}-{representation[:3]}-{color}"


def seed_agent_name(algo: str, representation: str, color: str, seed: int) -> str:
    """The zoo's name for the agent of one kind trained with ``seed``: :func:`agent_name` for seed 1
    (the paper's Table 1 setting), with ``-sSEED`` appended for another seed, e.g. ``ppo-abs-red-s2``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 1:
        raise ValueError(f"a training seed is an integer >= 1, got {seed!r}")
    base = agent_name(algo, representation, color)
    return base if seed == 1 else f"{base}-s{seed}"


def variants(algo: str, representation: str, color: str) -> list[str]:
    """The zoo's other agents of one kind: same algorithm, representation and colour as
    :func:`agent_name` ``(algo, representation, color)`` but another agent (another training seed,
    e.g. ``ppo-rel-green-s2``), read from the cards; sorted by name."""
    main = agent_name(algo, representation, color)
    return [r["name"] for r in catalog() if r["name"] != main
            and (r["algo"], r["representation"], r["color"]) == (algo, representation, color)]


def color_rank(color: str) -> int:
    """Sort key of a colour: the paper's order (green, red, blue, yellow), other colours after."""
    order = list(envs.COLORS)
    return order.index(color) if color in order else len(order)


def catalog(names=None) -> list[dict]:
    """One row per zoo agent (default: all of :func:`available`), read from the cards without loading
    weights: ``name``, ``algo``, ``representation``, ``color``, ``seed`` and training ``steps``
    (``None`` when the card does not say); in the paper's colour order, then by name."""
    rows = []
    for name in available() if names is None else names:
        info = card(name)
        rows.append({"name": name, **{k: info.get(k) for k in ("algo", "representation", "color", "seed")},
                     "steps": info.get("training", {}).get("steps")})
    return sorted(rows, key=lambda r: (color_rank(r["color"]), r["name"]))


def _per_segment(segments: list[dict], key: str, steps) -> str | int | None:
    """One hardware fact of a run, or, when a resumed run moved between machines that differ in it,
    each segment's value and its steps in thousands, e.g. ``"cuda 0-200K, cpu 200-2000K"``."""
    values = [s.get(key, "-") for s in segments]
    if len(set(map(str, values))) == 1:
        return values[0]
    ends = [s.get("from_step", 0) for s in segments[1:]] + [steps or 0]
    return ", ".join(f"{v} {s.get('from_step', 0) // 1000}-{e // 1000}K" for v, s, e in zip(values, segments, ends))


def training_facts(names=None) -> list[dict]:
    """How each zoo agent (default: all of :func:`available`) was made, one flat row per agent with a
    card that records its training: steps, hours, steps/s, device, GPU, CPUs, versions, anchor set,
    file dtype and size, and the agent's score (:func:`score`: mean max return and number of held-out
    tracks, from the shipped 10-track evaluation when the card has one). A run resumed on other
    hardware lists each segment's device, GPU and CPUs with its steps; its hours and steps/s are over
    all segments."""
    rows = []
    for name in available() if names is None else names:
        info = card(name)
        t = info.get("training")
        if not t:  # an agent saved without training facts
            continue
        versions = t.get("versions", {})
        segments = t.get("hardware_segments") or [t.get("hardware", {})]
        final = score(info) or {}
        rows.append({
            "agent": name, "steps": t.get("steps"), "hours": round(t.get("wall_s", 0) / 3600, 2),
            "steps/s": t.get("steps_per_s"), "device": _per_segment(segments, "device", t.get("steps")),
            "gpu": _per_segment(segments, "gpu", t.get("steps")),
            "cpus": _per_segment(segments, "cpu_count", t.get("steps")), "torch": versions.get("torch"), "sb3": versions.get("stable-baselines3"),
            "anchor set": info.get("anchors", {}).get("set", "-"), "dtype": info.get("dtype"),
            "MB": round(info.get("bytes", 0) / 1e6, 2),
            "final mean max return": round(final["mean_max_return"]) if "mean_max_return" in final else None,
            "held-out tracks": len(final.get("tracks", [])),
        })
    return rows


LOG_FILES = ("eval.csv", "progress.csv")  # a run's learning curve and SB3's training log
#: The quality-bar evaluation a finished run may hold (``relreps evaluate RUN/agent --tracks 10
#: --out RUN/eval-10-tracks.json``, as ``relreps grid --ship`` writes it); shipped into the card.
EVALUATION_FILE = "eval-10-tracks.json"


def score(card: Card) -> dict | None:
    """The score an agent's card reports: its shipped evaluation (``card["evaluation"]``, the quality
    bar's 10 held-out tracks) when it has one, else the training run's final evaluation (5 tracks);
    ``None`` for a card with neither. Keys: ``mean_max_return``, ``std_max_return``, ``tracks``, ..."""
    return card.get("evaluation") or card.get("training", {}).get("final_eval") or None


def check_card_evaluation(result: dict, path: str | os.PathLike) -> None:
    """Refuse an evaluation result (``relreps evaluate --out``) that is not the protocol a card
    reports: greedy actions on the held-out tracks."""
    if result.get("actions", "greedy") != "greedy":
        raise ZooError(f"{path} drove with {result['actions']} actions; an agent's card reports the protocol's "
                       "greedy score: evaluate it again with --overwrite and without --actions")
    if result.get("track_set", "held-out") != "held-out":
        raise ZooError(f"{path} drove on the {result['track_set']} tracks; an agent's card reports the held-out "
                       "tracks' score: evaluate it again with --overwrite and without --track-set")


def _evaluation_for_card(path: Path, card: Card) -> dict:
    """An evaluation result (``relreps evaluate --out``) of exactly this agent, trimmed for its card."""
    result = json.loads(path.read_text())
    if result.get("sha256") != card["sha256"]:
        raise ZooError(f"{path} evaluates another agent (sha256 {str(result.get('sha256'))[:12]}..., "
                       f"the card's is {card['sha256'][:12]}...)")
    if result.get("color") != card["color"]:
        raise ZooError(f"{path} drove on {result.get('color')!r}, not the agent's own colour {card['color']!r}")
    check_card_evaluation(result, path)
    keys = ("color", "max_steps", "tracks", "mean_max_return", "std_max_return", "mean_final_return", "laps_finished")
    return {**{k: result[k] for k in keys}, "max_returns": [ep["max_return"] for ep in result["episodes"]]}


#: The folder of a run's kept agents (``relreps train --keep-agents``): one agent file per scheduled
#: checkpoint, ``agents/STEPS.json`` (steps zero-padded to 10 digits, so that they sort), to choose
#: from with ``relreps select``.
AGENTS_DIR = "agents"


def kept_agent_path(run: str | os.PathLike, steps: int) -> Path:
    """Where ``relreps train --keep-agents`` saves the agent of the checkpoint at ``steps``."""
    return Path(run) / AGENTS_DIR / f"{int(steps):010d}.json"


def kept_evaluation_path(card_path: str | os.PathLike) -> Path:
    """Where a kept agent's 10-track held-out evaluation goes (``RUN/agents/STEPS.eval-10-tracks.json``,
    ``relreps evaluate CARD --out ...``), which ``ship(selected=True)`` puts on its card."""
    card_path = Path(card_path)
    return card_path.with_name(f"{card_path.stem}.{EVALUATION_FILE}")


def kept_agents(run: str | os.PathLike) -> list[Path]:
    """A run's kept agent cards, by steps (empty without ``keep_agents``)."""
    folder = Path(run) / AGENTS_DIR
    return sorted(p for p in folder.glob("*.json") if p.stem.isdigit()) if folder.is_dir() else []


#: A run's checkpoint choice (``relreps select RUN --out RUN/selection.json``), which
#: ``relreps zoo ship RUN NAME --selected`` ships instead of the final agent.
SELECTION_FILE = "selection.json"


def _selected_agent(run: Path) -> tuple[Path, dict]:
    """The card path of the agent that ``run/selection.json`` chose, and the choice for its card."""
    path = run / SELECTION_FILE
    if not path.is_file():
        raise ZooError(f"{run} has no {SELECTION_FILE}: choose a checkpoint first with `relreps select "
                       f"{run} --out {path}` (a run trained with --keep-agents)")
    record = json.loads(path.read_text())
    steps, sha = record["chosen"].get("steps"), record["chosen"].get("sha256")
    chosen = kept_agent_path(run, steps) if isinstance(steps, int) else None
    if chosen is None or not chosen.is_file() or _read_card(chosen).get("sha256") != sha:
        raise ZooError(f"{path} chose {record['chosen'].get('path')} ({steps} steps), which is not one of this "
                       f"run's kept agents ({run / AGENTS_DIR}, the same weights): select among them again")
    choice = {"track_set": record["track_set"], "tracks": record["tracks"], "max_steps": record.get("max_steps"),
              "steps": record["chosen"]["steps"], "mean_max_return": record["chosen"]["mean_max_return"],
              "candidates": {str(c["steps"]): round(c["mean_max_return"], 2) for c in record["candidates"]}}
    return chosen, choice


def ship(run: str | os.PathLike, name: str, *, dest: str | os.PathLike | None = None,
         overwrite: bool = False, selected: bool = False) -> Path:
    """Copy a finished training run's agent into the zoo as ``NAME`` with its logs.

    Writes ``dest/NAME.safetensors``, ``dest/NAME.json`` and ``dest/logs/NAME/{eval,progress}.csv``;
    the weights are copied byte for byte, so the card's sha256 still holds. The run's
    :data:`EVALUATION_FILE`, when present, goes into the card as ``evaluation`` (refused if it
    evaluates other weights or another colour). Refuses an unfinished run, an agent over
    :data:`MAX_BYTES`, and an existing name unless ``overwrite``.

    ``selected``: ship the checkpoint that the run's :data:`SELECTION_FILE` chose on validation
    tracks (one of ``RUN/agents/``) instead of the final agent; its quality-bar evaluation is
    ``RUN/agents/STEPS.eval-10-tracks.json``, and the card records the choice (``selection``: the
    validation tracks and every candidate's score) and the run's full length (``training.run_steps``).
    """
    import shutil

    from . import files

    if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"invalid agent name {name!r}: a plain file name such as 'ppo-rel-green'")
    run, dest = Path(run), Path(dest) if dest is not None else zoo_dir()
    if not (run / "done.json").is_file():
        raise ZooError(f"{run} is not a finished run (no done.json); finish it with `relreps train --resume`")
    if not (run / "agent.json").is_file():
        raise ZooError(f"{run} has no agent.json: not a run folder of `relreps train`")
    agent_card, selection = run / "agent.json", None
    if selected:
        agent_card, selection = _selected_agent(run)
    load(agent_card)  # the card, the weights and the anchors all check out
    card = _read_card(agent_card)
    weights = agent_card.parent / card["weights"]
    if weights.stat().st_size > MAX_BYTES:
        raise ZooError(f"{weights} has {weights.stat().st_size} bytes, over the {MAX_BYTES} a shipped agent may take")
    if selection is not None:  # the run's facts (hardware, versions, precision), the checkpoint's steps and time
        done = json.loads((run / "done.json").read_text())
        facts = {k: v for k, v in done.items() if k not in ("steps", "wall_s", "steps_per_s", "final_eval")}
        checkpoint = {k: v for k, v in card["training"].items() if k != "run"}
        card = cast(Card, dict(card, selection=selection, training={
            **facts, **checkpoint, "run_steps": done["steps"], "run_wall_s": done["wall_s"]}))
    evaluation_file = kept_evaluation_path(agent_card) if selected else run / EVALUATION_FILE
    evaluation = _evaluation_for_card(evaluation_file, card) if evaluation_file.is_file() else None
    target = dest / f"{name}.json"
    log_dir = dest / "logs" / name
    if (target.exists() or target.with_suffix(".safetensors").exists() or log_dir.exists()) and not overwrite:
        raise FileExistsError(f"the zoo already has an agent {name!r} in {dest}; pass overwrite=True to replace it")
    card = cast(Card, dict(card, name=name, weights=f"{name}.safetensors"))
    copy = card.get("anchors", {}).get("copy")
    if copy:  # the anchor frames travel with the agent
        card["anchors"] = cast(AnchorInfo, dict(card["anchors"], copy=f"{name}{ANCHOR_COPY_SUFFIX}"))
        files.copy_file(agent_card.parent / copy, dest / card["anchors"]["copy"])
    if evaluation is not None:
        card["evaluation"] = evaluation
    new_logs = files.new_folder_beside(log_dir)
    try:
        for log in LOG_FILES:
            if (run / log).is_file():
                shutil.copyfile(run / log, new_logs / log)
        files.copy_file(weights, target.with_suffix(".safetensors"))
        files.replace_folder(new_logs, log_dir)  # the replaced agent's logs must not mix with the new run's
    except BaseException:
        shutil.rmtree(new_logs, ignore_errors=True)
        raise
    files.write_text(target, json.dumps(card, indent=1, default=str) + "\n")
    return target


def logs(name: str, *, root: str | os.PathLike | None = None) -> dict[str, Path]:
    """The training logs of zoo agent ``name``: ``{"eval": path, "progress": path}``."""
    root = Path(root) if root is not None else zoo_dir()
    folder = root / "logs" / name
    found = {f.split(".")[0]: folder / f for f in LOG_FILES if (folder / f).is_file()}
    if not found:
        raise ZooError(f"no training logs for {name!r} in {folder} (agents with logs: "
                       f"{', '.join(sorted(p.name for p in (Path(root) / 'logs').glob('*'))) or 'none'})")
    return found


def learning_curve(name: str, *, source: str = "eval", root: str | os.PathLike | None = None) -> dict:
    """A zoo agent's learning curve from its shipped logs, ready for :func:`relreps.plots.learning_curves`.

    ``source="eval"``: the evaluation protocol's mean maximum return on held-out tracks
    (``eval.csv``); ``"progress"``: SB3's mean training-episode return (``progress.csv``,
    ``rollout/ep_rew_mean``, over the last 100 episodes, sampled actions).
    Returns ``{"steps", "value", "representation", "color", "seed"}``.
    """
    import csv

    columns = {"eval": ("timesteps", "mean_max_return"), "progress": ("time/total_timesteps", "rollout/ep_rew_mean")}
    if source not in columns:
        raise ValueError(f"unknown source {source!r}: expected one of {tuple(columns)}")
    x, y = columns[source]
    path = logs(name, root=root).get(source)
    if path is None:
        raise ZooError(f"agent {name!r} has no {source}.csv log")
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get(y)]
    info = card(name, root=root)
    return {"steps": [int(float(r[x])) for r in rows], "value": [float(r[y]) for r in rows],
            "representation": info["representation"], "color": info["color"], "seed": info.get("seed")}


def _resolve(name_or_path) -> Path:
    p = Path(name_or_path)
    for candidate in (p, p.with_suffix(".json"), zoo_dir() / f"{name_or_path}.json"):
        if candidate.suffix == ".json" and candidate.is_file():
            return candidate
    raise ZooError(f"no agent {str(name_or_path)!r}: not a card path, and not a shipped agent "
                   f"(available: {', '.join(available()) or 'none'})")


def load(name_or_path: str | os.PathLike) -> Agent:
    """Load an agent by shipped name or by path (``.json`` card, or the path without suffix)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    card_path = _resolve(name_or_path)
    card = _read_card(card_path)
    check_card(card, card_path)
    weights = card_path.parent / card["weights"]
    if not weights.is_file():
        raise ZooError(f"agent {card['name']!r}: missing weights file {weights}")
    digest = files.sha256_file(weights)
    if digest != card["sha256"]:
        raise ZooError(f"agent {card['name']!r}: {weights.name} has sha256 {digest[:12]}..., the card says "
                       f"{card['sha256'][:12]}...; the file is corrupted or was replaced")
    try:
        tensors = load_file(str(weights))
    except SafetensorError as e:
        raise ZooError(f"agent {card['name']!r}: cannot read {weights.name}: {e}") from None
    relative_weights = any(k.endswith(("anchor_embeddings", "anchors_ready")) for k in tensors)
    if relative_weights != (card["representation"] == "relative"):
        raise ZooError(f"agent {card['name']!r}: the card says {card['representation']}, but the weights are "
                       f"those of {'a relative' if relative_weights else 'an absolute'} encoder")
    embeddings = card.get("anchors", {}).get("embeddings", "saved")
    if embeddings not in ANCHOR_EMBEDDINGS:
        raise ZooError(f"agent {card['name']!r}: anchors.embeddings is {embeddings!r}; expected one of "
                       f"{ANCHOR_EMBEDDINGS}")
    reembed = card["representation"] == "relative" and embeddings == "reembedded"
    saved_embeddings = any(k.endswith("anchor_embeddings") for k in tensors)
    if relative_weights and saved_embeddings == reembed:
        raise ZooError(f"agent {card['name']!r}: the card says its anchor embeddings are {embeddings}, but the "
                       f"weights {'hold' if saved_embeddings else 'lack'} them")
    frames = _anchor_frames(card, card_path) if card["representation"] == "relative" else None
    policy = build_policy(card, anchor_frames=frames)
    expected, aliases = _unique_state(policy)
    mismatch = [f"{k}: {tuple(tensors[k].shape)} vs {tuple(v.shape)}"
                for k, v in expected.items() if k in tensors and v.shape != tensors[k].shape]
    if mismatch:
        raise ZooError(f"agent {card['name']!r}: the card does not match the weights (tensor shapes: "
                       f"{mismatch[:3]})")
    missing, unexpected = policy.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if k not in aliases  # filled through the tensor they alias
               and not (reembed and k.endswith("anchor_embeddings"))]  # embedded below
    if missing or unexpected:
        raise ZooError(f"agent {card['name']!r}: the card does not match the weights "
                       f"(missing: {sorted(missing)[:5]}, unexpected: {sorted(unexpected)[:5]})")
    if card["representation"] == "relative":
        _check_used_anchors(policy, card)
    if reembed:
        from .algos import relative_encoders_in

        for enc in relative_encoders_in(policy):  # a DQN policy's target encoder too
            enc.reembed_anchors()
    policy.set_training_mode(False)
    return Agent(name=card["name"], policy=policy, card=card)


def _read_card(card_path: Path) -> Card:
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ZooError(f"{card_path} is not valid JSON: {e}") from None
    if not isinstance(card, dict):
        raise ZooError(f"{card_path} is not an agent card (a JSON object)")
    return cast(Card, card)


#: What every agent card holds, and of which type.
CARD_FIELDS = {"format": int, "name": str, "algo": str, "representation": str, "color": str, "head_dim": int,
               "encoder_kwargs": dict, "weights": str, "sha256": str}


def check_card(card: Card, where: str | os.PathLike = "the card") -> None:
    """Refuse a card that lacks a field, names an unknown algorithm, representation or colour, or
    contradicts itself: its colour, algorithm, representation and head size against its training
    config (a stitched agent's config is its policy's, whose colour differs), its anchors' colour and
    its encoder's arguments."""
    if card.get("format") != FORMAT_VERSION:
        raise ZooError(f"{where} has format {card.get('format')!r}; this relreps reads {FORMAT_VERSION}")
    raw = cast(dict, card)  # read as it came from JSON: any key, any value
    for key, kind in CARD_FIELDS.items():
        if key not in raw:
            raise ZooError(f"{where} lacks the field {key!r} (an agent card has {', '.join(CARD_FIELDS)})")
        if not isinstance(raw[key], kind) or isinstance(raw[key], bool):
            raise ZooError(f"{where}: {key!r} is {raw[key]!r}, not a {kind.__name__}")
    name = card["name"]
    if card["algo"] not in _policy_classes():
        raise ZooError(f"agent {name!r}: unknown algorithm {card['algo']!r} (known: {', '.join(_policy_classes())})")
    if card["representation"] not in _encoder_classes():
        raise ZooError(f"agent {name!r}: unknown representation {card['representation']!r} "
                       f"(known: {', '.join(_encoder_classes())})")
    try:
        color = envs.color_name(card["color"])
    except ValueError as e:
        raise ZooError(f"agent {name!r}: {e}") from None
    if color != card["color"]:
        raise ZooError(f"agent {name!r}: colour {card['color']!r} is not written as relreps writes it ({color!r})")
    if card["head_dim"] < 1:
        raise ZooError(f"agent {name!r}: head_dim {card['head_dim']} must be >= 1")
    if Path(card["weights"]).name != card["weights"] or card["weights"] in ("", ".", ".."):
        raise ZooError(f"agent {name!r}: weights {card['weights']!r} is not a plain file name beside the card")
    says = {"color": color, "algo": card["algo"], "representation": card["representation"],
            "head_dim": card["head_dim"]}
    others: list[tuple[str, dict]] = []
    config = card.get("config")
    if isinstance(config, dict):
        trained: dict[str, Any] = {k: config.get(k) for k in says if k in config}
        if "color" in trained:
            with contextlib.suppress(ValueError):
                trained["color"] = envs.color_name(trained["color"])
        if "stitched" in card:  # the config is the policy agent's: its colour is another one
            trained.pop("color", None)
        others.append(("its training config", trained))
    if card["representation"] == "relative":
        info = card.get("anchors")
        if info is not None:
            if not isinstance(info, dict) or not {"set", "color", "frames_checksum"} <= set(info):
                raise ZooError(f"agent {name!r}: its 'anchors' entry needs 'set', 'color' and 'frames_checksum'")
            others.append(("its anchors", {"color": info["color"]}))
        if "color" in card["encoder_kwargs"]:
            others.append(("its encoder_kwargs", {"color": card["encoder_kwargs"]["color"]}))
    for source, values in others:
        wrong = [k for k, v in values.items() if k in says and v != says[k]]
        if wrong:
            raise ZooError(f"agent {name!r}: the card says {', '.join(f'{k} {says[k]!r}' for k in wrong)}, but "
                           f"{source} says {', '.join(f'{k} {values[k]!r}' for k in wrong)}; the card was edited "
                           "or belongs to another agent")
    if card["representation"] == "absolute" and ("anchors" in card["encoder_kwargs"] or "anchors" in card):
        raise ZooError(f"agent {name!r}: the card says absolute, but it names anchors (a relative agent's card?)")


def _anchor_frames(card: Card, card_path: Path) -> np.ndarray | None:
    """The anchor frames a relative agent's card refers to, found by content wherever they are:
    the copy beside the card (its frames exactly), the shipped set of that name, or the set at the
    path the card recorded (the set's frames in the agent's colour), each checked against the
    card's checksum. ``None`` for a card without an ``anchors`` entry (the encoder then loads the
    set its ``encoder_kwargs`` name)."""
    from . import anchors

    info = card.get("anchors")
    if info is None:
        return None
    name, color, tried = card["name"], info["color"], []
    copy = info.get("copy")
    if copy:
        file = card_path.parent / str(copy)
        if Path(str(copy)).name != str(copy):
            raise ZooError(f"agent {name!r}: anchors copy {copy!r} is not a plain file name beside the card")
        if file.is_file():
            try:
                frames = anchors.read_frames(file)
            except anchors.AnchorError as e:
                tried.append(f"{file} ({e})")
            else:
                if anchors.frames_checksum(frames) == info.get("used_checksum"):
                    return frames
                tried.append(f"{file} (other frames: its checksum differs)")
        else:
            tried.append(f"{file} (missing)")
    candidates = []
    if info["set"] in anchors.available():
        candidates.append(anchors.SHIPPED_DIR / info["set"])
    if info.get("path"):
        candidates.append(Path(info["path"]))
    for folder in candidates:
        if not (folder / "anchors.json").is_file():
            tried.append(f"{folder} (no anchor set there)")
            continue
        try:
            frames = anchors.load(folder).frames(color)
        except anchors.AnchorError as e:
            tried.append(f"{folder} ({e})")
            continue
        if anchors.frames_checksum(frames) == info["frames_checksum"]:
            return frames
        tried.append(f"{folder} (other frames: its checksum differs)")
    if not tried:
        tried.append(f"no shipped set {info['set']!r} (shipped: {', '.join(anchors.available()) or 'none'}), "
                     "no recorded path, no copy beside the card")
    raise ZooError(f"agent {name!r}: cannot find the anchor frames it was trained with (set {info['set']!r}, "
                   f"colour {color}, checksum {info['frames_checksum'][:12]}...); tried: {'; '.join(tried)}")


def anchor_key(card: Card) -> tuple | None:
    """What a relative agent's relative coordinates are: ``(anchor set, n_anchors, anchor_seed)``,
    the set by its identity (:attr:`relreps.anchors.AnchorSet.identity`, colour-independent) when
    the card records it or names a shipped set, else by name. Two relative agents can be stitched
    as they are only when their keys are equal. ``None`` for an absolute agent or a card that does
    not say."""
    if card.get("representation") != "relative":
        return None
    kw = card.get("encoder_kwargs", {})
    recorded = card.get("anchors")
    info = recorded if isinstance(recorded, dict) else AnchorInfo()
    set_key = info.get("set_id")
    if set_key is None and info and _is_shipped_set(info):
        set_key = _shipped_identity(info["set"])
    if set_key is None:
        set_key = info.get("set", kw.get("anchors"))
        if not isinstance(set_key, str):
            return None
        if set_key in _shipped_set_names():
            set_key = _shipped_identity(set_key)
    n = kw.get("n_anchors")
    if n is None:
        from .extractors import CONV_DIM

        n = CONV_DIM if kw.get("latent_dim") is None else kw["latent_dim"]
    return set_key, n, kw.get("anchor_seed", 0)


def _shipped_set_names() -> list[str]:
    from . import anchors

    return anchors.available()


_IDENTITIES: dict = {}


def _shipped_identity(name: str) -> str:
    from . import anchors

    if name not in _IDENTITIES:
        _IDENTITIES[name] = anchors.load(anchors.SHIPPED_DIR / name).identity
    return _IDENTITIES[name]


def _check_used_anchors(policy, card: Card) -> None:
    """The encoder's anchor frames are the ones the card's ``used_checksum`` names (when it has one)."""
    from . import anchors
    from .extractors import encoder_of

    expected = card.get("anchors", {}).get("used_checksum")
    if expected is None:
        return
    frames = cast(torch.Tensor, encoder_of(policy).anchor_frames)
    got = anchors.frames_checksum(frames.cpu().numpy())
    if got != expected:
        raise ZooError(f"agent {card['name']!r}: its encoder would use other anchor frames than it was trained "
                       f"with (checksum {got[:12]}... != {expected[:12]}...)")


def export_sb3(agent: Agent, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write an SB3 zip (``PPO.load`` / ``DQN.load``; needs relreps importable) atomically; returns
    its path (``.zip`` added when ``path`` has no such suffix). PPO and DQN only.

    Raises:
        ValueError: an algorithm SB3 cannot load this way (before anything is written).
        FileExistsError: the zip exists and ``overwrite`` is not set.
    """
    from . import files
    from .algos import REGISTRY
    from .files import atomic_path

    cls = REGISTRY[agent.algo].export
    if cls is None:
        supported = ", ".join(name for name, spec in REGISTRY.items() if spec.export is not None)
        raise ValueError(f"export to an SB3 zip supports {supported}, not {agent.algo!r}")
    out = Path(path)
    out = out if out.suffix == ".zip" else out.with_name(out.name + ".zip")
    files.check_new(out, overwrite=overwrite, hint="pass overwrite=True to replace it")
    venv = envs.make_vec_env(agent.color, n_envs=1, workers=0)
    try:
        model = cls(type(agent.policy), venv, policy_kwargs=dict(
            features_extractor_class=_encoder_classes()[agent.representation],
            features_extractor_kwargs=encoder_kwargs(agent.card), head_dim=agent.card["head_dim"]),
            device="cpu")
        model.policy.load_state_dict(agent.policy.state_dict())
        with atomic_path(out) as tmp:  # the temporary name ends in .zip, so SB3 keeps it
            model.save(tmp)
        return out
    finally:
        venv.close()
