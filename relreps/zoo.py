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

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces

from . import envs

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
    from .algos import HeadQRDQNPolicy
    from .extractors import HeadActorCriticPolicy, HeadDQNPolicy

    return {"ppo": HeadActorCriticPolicy, "ddqn": HeadDQNPolicy, "dqn": HeadDQNPolicy, "qrdqn": HeadQRDQNPolicy}


def _encoder_classes() -> dict:
    from .extractors import AbsoluteEncoder, RelativeEncoder

    return {"absolute": AbsoluteEncoder, "relative": RelativeEncoder}


OBS_SPACE = spaces.Box(0, 255, (3, envs.OBS_SIZE, envs.OBS_SIZE), np.uint8)
ACTION_SPACE = spaces.Discrete(len(envs.ACTIONS))


@dataclass
class Agent:
    """A loaded agent: an SB3 policy (``predict`` as SB3) plus its card."""

    name: str
    policy: torch.nn.Module
    card: dict = field(repr=False)

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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def build_policy(card: dict) -> torch.nn.Module:
    """The untrained policy a card describes (architecture only)."""
    try:
        policy_class = _policy_classes()[card["algo"]]
        encoder_class = _encoder_classes()[card["representation"]]
    except KeyError as e:
        raise ZooError(f"card names an unknown {e}: algorithms {sorted(_policy_classes())}, "
                       f"representations {sorted(_encoder_classes())}") from None
    return policy_class(
        OBS_SPACE, ACTION_SPACE, lambda _: 0.0,
        features_extractor_class=encoder_class,
        features_extractor_kwargs=dict(card["encoder_kwargs"]),
        head_dim=card["head_dim"],
    )


def card_for(config, **extra) -> dict:
    """A card for a trained model, from its :class:`~relreps.training.TrainConfig`."""
    from . import __version__, anchors

    encoder_class, encoder_kwargs = config.encoder()
    card = {
        "format": FORMAT_VERSION,
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
                           "frames_checksum": anchors.frames_checksum(aset.frames(config.color))}
    card.update(extra)
    return card


def trained_config(info: dict):
    """The :class:`~relreps.training.TrainConfig` an agent's card records (``None`` for an agent saved
    without one); read like a run's ``config.json``, so fields added since take the values that old
    runs trained with (e.g. ``anchor_update="rollout"``)."""
    from .training import TrainConfig

    return TrainConfig.from_json(info["config"]) if "config" in info else None


#: State kept in float32 by ``save(..., half=True)`` (tensor names ending so).
FULL_PRECISION = ("anchor_embeddings",)


def save(model_or_policy, path: str | os.PathLike, card: dict, *, overwrite: bool = False,
         half: bool = False) -> Path:
    """Write ``path.safetensors`` and ``path.json``; returns the ``.json`` path.

    ``half`` stores floating-point tensors as float16 (half the size; the loaded agent computes in
    float32 with the rounded weights, so evaluate the agent as loaded), except a relative encoder's
    anchor embeddings (:data:`FULL_PRECISION`), kept in float32: the projection standardises with
    their per-dimension standard deviation, which for nearly dead units is far below float16's
    resolution (the book's lab notes: with float16 anchors such an agent drove differently, with
    float16 weights alone identically). Refuses to replace an
    existing agent unless ``overwrite=True``.
    """
    from safetensors.torch import save_file

    policy = getattr(model_or_policy, "policy", model_or_policy)
    if isinstance(card.get("stitched"), dict) and card["stitched"].get("align"):
        raise ValueError(f"a stitch made with align={card['stitched']['align']!r} cannot be saved as an agent file "
                         "(its encoder is wrapped, which no card describes): save the two agents and stitch again")
    base = Path(path)
    if base.suffix in (".json", ".safetensors"):
        base = base.with_suffix("")
    weights, card_path = base.with_suffix(".safetensors"), base.with_suffix(".json")
    if (weights.exists() or card_path.exists()) and not overwrite:
        raise FileExistsError(f"an agent already exists at {base}; choose another name or pass overwrite=True")
    base.parent.mkdir(parents=True, exist_ok=True)
    tensors, _ = _unique_state(policy)
    if half:
        tensors = {k: v.half() if v.is_floating_point() and not k.endswith(FULL_PRECISION) else v
                   for k, v in tensors.items()}
    save_file(tensors, str(weights))
    card = dict(card, name=base.name, weights=weights.name, sha256=_sha256(weights),
                bytes=weights.stat().st_size, dtype="float16" if half else "float32")
    card_path.write_text(json.dumps(card, indent=1, default=str) + "\n")
    return card_path


def available() -> list[str]:
    """Names of the agents in the zoo (:func:`zoo_dir`)."""
    root = zoo_dir()
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.json"))


def card(name: str | os.PathLike, *, root: str | os.PathLike | None = None) -> dict:
    """The JSON card of an agent (zoo name, or card path as :func:`load` takes), read without
    loading (or checking) its weights; ``root``: look the name up in that zoo folder instead."""
    if root is None:
        return json.loads(_resolve(name).read_text())
    path = Path(root) / f"{name}.json"
    if not path.is_file():
        raise ZooError(f"no agent {str(name)!r} in {path.parent}")
    return json.loads(path.read_text())


def agent_name(algo: str, representation: str, color: str) -> str:
    """The zoo's naming rule, e.g. ``ppo-rel-green`` (what ``relreps table`` looks for)."""
    return f"{algo}-{representation[:3]}-{color}"


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
#: --out RUN/eval-10-tracks.json``, as ``scripts/train_zoo.sh`` writes it); shipped into the card.
EVALUATION_FILE = "eval-10-tracks.json"


def score(card: dict) -> dict | None:
    """The score an agent's card reports: its shipped evaluation (``card["evaluation"]``, the quality
    bar's 10 held-out tracks) when it has one, else the training run's final evaluation (5 tracks);
    ``None`` for a card with neither. Keys: ``mean_max_return``, ``std_max_return``, ``tracks``, ..."""
    return card.get("evaluation") or card.get("training", {}).get("final_eval") or None


def _evaluation_for_card(path: Path, card: dict) -> dict:
    """An evaluation result (``relreps evaluate --out``) of exactly this agent, trimmed for its card."""
    result = json.loads(path.read_text())
    if result.get("sha256") != card["sha256"]:
        raise ZooError(f"{path} evaluates another agent (sha256 {str(result.get('sha256'))[:12]}..., "
                       f"the card's is {card['sha256'][:12]}...)")
    if result.get("color") != card["color"]:
        raise ZooError(f"{path} drove on {result.get('color')!r}, not the agent's own colour {card['color']!r}")
    keys = ("color", "max_steps", "tracks", "mean_max_return", "std_max_return", "mean_final_return", "laps_finished")
    return {**{k: result[k] for k in keys}, "max_returns": [ep["max_return"] for ep in result["episodes"]]}


def ship(run: str | os.PathLike, name: str, *, dest: str | os.PathLike | None = None,
         overwrite: bool = False) -> Path:
    """Copy a finished training run's agent into the zoo as ``NAME`` with its logs.

    Writes ``dest/NAME.safetensors``, ``dest/NAME.json`` and ``dest/logs/NAME/{eval,progress}.csv``;
    the weights are copied byte for byte, so the card's sha256 still holds. The run's
    :data:`EVALUATION_FILE`, when present, goes into the card as ``evaluation`` (refused if it
    evaluates other weights or another colour). Refuses an unfinished run, an agent over
    :data:`MAX_BYTES`, and an existing name unless ``overwrite``.
    """
    import shutil

    run, dest = Path(run), Path(dest) if dest is not None else zoo_dir()
    if not (run / "done.json").is_file():
        raise ZooError(f"{run} is not a finished run (no done.json); finish it with `relreps train --resume`")
    card = json.loads((run / "agent.json").read_text())
    weights = run / card["weights"]
    if _sha256(weights) != card["sha256"]:
        raise ZooError(f"{weights} does not match its card's sha256")
    if weights.stat().st_size > MAX_BYTES:
        raise ZooError(f"{weights} has {weights.stat().st_size} bytes, over the {MAX_BYTES} a shipped agent may take")
    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"invalid agent name {name!r}: a plain file name such as 'ppo-rel-green'")
    evaluation = run / EVALUATION_FILE
    evaluation = _evaluation_for_card(evaluation, card) if evaluation.is_file() else None
    target = dest / f"{name}.json"
    log_dir = dest / "logs" / name
    if (target.exists() or target.with_suffix(".safetensors").exists() or log_dir.exists()) and not overwrite:
        raise FileExistsError(f"the zoo already has an agent {name!r} in {dest}; pass overwrite=True to replace it")
    if log_dir.exists():
        shutil.rmtree(log_dir)  # the replaced agent's logs must not mix with the new run's
    log_dir.mkdir(parents=True)
    shutil.copyfile(weights, target.with_suffix(".safetensors"))
    for log in LOG_FILES:
        if (run / log).is_file():
            shutil.copyfile(run / log, log_dir / log)
    card = dict(card, name=name, weights=f"{name}.safetensors")
    if evaluation is not None:
        card["evaluation"] = evaluation
    target.write_text(json.dumps(card, indent=1, default=str) + "\n")
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
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError as e:
        raise ZooError(f"{card_path} is not valid JSON: {e}") from None
    if card.get("format") != FORMAT_VERSION:
        raise ZooError(f"{card_path} has format {card.get('format')!r}; this relreps reads {FORMAT_VERSION}")
    weights = card_path.parent / card["weights"]
    if not weights.is_file():
        raise ZooError(f"agent {card['name']!r}: missing weights file {weights}")
    digest = _sha256(weights)
    if digest != card["sha256"]:
        raise ZooError(f"agent {card['name']!r}: {weights.name} has sha256 {digest[:12]}..., the card says "
                       f"{card['sha256'][:12]}...; the file is corrupted or was replaced")
    try:
        tensors = load_file(str(weights))
    except SafetensorError as e:
        raise ZooError(f"agent {card['name']!r}: cannot read {weights.name}: {e}") from None
    policy = build_policy(card)
    expected, aliases = _unique_state(policy)
    mismatch = [f"{k}: {tuple(tensors[k].shape)} vs {tuple(v.shape)}"
                for k, v in expected.items() if k in tensors and v.shape != tensors[k].shape]
    if mismatch:
        raise ZooError(f"agent {card['name']!r}: the card does not match the weights (tensor shapes: "
                       f"{mismatch[:3]})")
    missing, unexpected = policy.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if k not in aliases]  # filled through the tensor they alias
    if missing or unexpected:
        raise ZooError(f"agent {card['name']!r}: the card does not match the weights "
                       f"(missing: {sorted(missing)[:5]}, unexpected: {sorted(unexpected)[:5]})")
    if card["representation"] == "relative":
        _check_anchors(policy, card)
    policy.set_training_mode(False)
    return Agent(name=card["name"], policy=policy, card=card)


def _check_anchors(policy, card: dict) -> None:
    from . import anchors

    expected = card.get("anchors", {}).get("frames_checksum")
    if expected is None:
        return
    aset = anchors.load(card["anchors"]["set"])
    got = anchors.frames_checksum(aset.frames(card["anchors"]["color"]))
    if got != expected:
        raise ZooError(f"agent {card['name']!r} was trained with other anchor frames than the set "
                       f"{aset.name!r} now holds (checksum {got[:12]}... != {expected[:12]}...)")


def export_sb3(agent: Agent, path: str | os.PathLike) -> Path:
    """Write an SB3 zip (``PPO.load`` / ``DQN.load``; needs relreps importable). PPO and DQN only."""
    from stable_baselines3 import DQN, PPO

    from .algos import DoubleDQN

    cls = {"ppo": PPO, "ddqn": DoubleDQN, "dqn": DQN}.get(agent.algo)
    if cls is None:
        raise ValueError(f"export to an SB3 zip supports ppo, ddqn and dqn, not {agent.algo!r}")
    venv = envs.make_vec_env(agent.color, n_envs=1, workers=0)
    try:
        model = cls(type(agent.policy), venv, policy_kwargs=dict(
            features_extractor_class=_encoder_classes()[agent.representation],
            features_extractor_kwargs=dict(agent.card["encoder_kwargs"]), head_dim=agent.card["head_dim"]),
            device="cpu")
        model.policy.load_state_dict(agent.policy.state_dict())
        out = Path(path)
        model.save(out)
        return out if out.suffix == ".zip" else out.with_suffix(".zip")
    finally:
        venv.close()
