"""Parallel anchors: record a drive once, replay it in every colour, store and load anchor sets.

Relative representations describe each observation by its similarities to a fixed set of anchor
observations. Stitching across colours needs *parallel* anchors: anchor ``i`` must be the same
state of the world (track, car pose, HUD) in every colour, differing only in the background. So we

1. **record** a drive once: a driver (:class:`AgentDriver`, a trained agent as in the paper, or
   :class:`ScriptedDriver`, which follows the track's centre line) plays a few tracks, with bursts of one repeated random action so that
   off-track and recovery states appear. What is kept is the *recipe*: track seeds and actions;
2. **replay** the recipe in any colour. The physics does not depend on the colour, so frame ``i``
   shows the same state in every colour (tests check car poses and pixels);
3. **choose** anchor indices once, with a local seeded generator, among frames past the camera's
   zoom-in at each episode start, and share them across colours.

An anchor set on disk is a folder: ``anchors.json`` (recipe, indices, checksums, versions) and
one ``<colour>.npy.xz`` (a ``.npy`` file, lzma-compressed) per stored colour with the anchor frames as the agent sees them
(84x84x3 uint8). Colours that are not stored are replayed on demand. Every file carries a sha256
that is checked on load, and :func:`verify` replays the recipe and compares it with the stored
frames.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import math
import os
import platform
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import envs, files
from .evaluation import act

__all__ = [
    "ANCHOR_TRACK_SEED",
    "DEFAULT_N_ANCHORS",
    "DEFAULT_SET",
    "FORMAT_VERSION",
    "SHIPPED_DIR",
    "SUFFIX",
    "ZOOM_FRAMES",
    "AgentDriver",
    "AnchorError",
    "AnchorSet",
    "Recipe",
    "Replay",
    "ScriptedDriver",
    "available",
    "check_recording",
    "check_target",
    "choose_indices",
    "create",
    "frames_bytes",
    "frames_checksum",
    "load",
    "read_frames",
    "record",
    "replay",
    "replay_anchors",
    "resolve",
    "verify",
]


FORMAT_VERSION = 1
#: The set relative encoders use unless told otherwise, and the zoo's relative agents use:
#: ``scripted-3136``, recorded by the scripted driver with random bursts. It did better than
#: ``agent-3136`` (the paper's recipe: recorded by the trained ``ppo-abs-green``) for the relative
#: green agent at 1M and 2M steps (the book's lab notes, "Which anchors").
DEFAULT_SET = "scripted-3136"
DEFAULT_N_ANCHORS = 3136  # the Nature-CNN encoder's flattened output size (64 x 7 x 7)
#: Track seeds for anchor recordings start here: far from the seeds that training (SB3 seeds
#: environment i with seed + i) and evaluation use.
ANCHOR_TRACK_SEED = 900_000
#: Frames at the start of an episode while the camera zooms in (t < 1 s at 50 FPS).
ZOOM_FRAMES = 50
SHIPPED_DIR = Path(__file__).parent / "data" / "anchors"
SUFFIX = ".npy.xz"  # frames: a .npy file (no pickles), lzma-compressed (~2.8 MB for 3136 frames)


# --------------------------------------------------------------------------------------------
# Drivers
# --------------------------------------------------------------------------------------------


@dataclass
class ScriptedDriver:
    """Follows the track's centre line: steer towards a point ``lookahead`` tiles ahead, slow down
    before bends. Deterministic; drives a lap in about 600 steps (return ~900 on most tracks).

    Called with the *unwrapped* :class:`~relreps.envs.ColorCarRacing`; returns a discrete action.
    """

    lookahead: int = 7
    max_speed: float = 90.0
    min_speed: float = 45.0
    tolerance: float = 0.2  # heading error (radians) tolerated before steering

    def __post_init__(self) -> None:
        self._track: list | None = None  # the track the cached arrays came from

    def __call__(self, env: envs.ColorCarRacing) -> int:
        car = env.car
        if self._track is not env.track:  # identity, not id(): ids of freed lists get reused
            self._xy = np.array([(t[2], t[3]) for t in env.track])
            self._beta = np.array([t[1] for t in env.track])
            self._track = env.track
        n = len(self._xy)
        pos = np.array(car.hull.position)
        i = int(np.argmin(((self._xy - pos) ** 2).sum(axis=1)))
        dx, dy = self._xy[(i + self.lookahead) % n] - pos
        fx, fy = car.hull.GetWorldVector((0, 1))
        error = math.atan2(fx * dy - fy * dx, fx * dx + fy * dy)  # > 0: target is to the left
        bend = abs((self._beta[(i + 12) % n] - self._beta[i] + math.pi) % (2 * math.pi) - math.pi)
        target = self.max_speed - (self.max_speed - self.min_speed) * min(bend / 1.2, 1.0)
        speed = math.hypot(*car.hull.linearVelocity)
        if abs(error) > self.tolerance:
            return envs.LEFT if error > 0 else envs.RIGHT
        if speed < target:
            return envs.GAS
        if speed > target + 8:
            return envs.BRAKE
        return envs.NOOP


@dataclass
class AgentDriver:
    """Drives with a trained agent's greedy action on what it sees (the paper's anchor source).

    ``agent`` is anything with SB3's ``predict`` (a :class:`relreps.zoo.Agent`, an SB3 model or
    policy); it sees the preprocessed frame of the colour the recording is driven in, so record
    in the agent's own colour. Called with the unwrapped env and its latest raw frame.
    """

    agent: object
    name: str = ""
    wants_obs = True  # record() passes the latest raw frame

    def __call__(self, env: envs.ColorCarRacing, obs: np.ndarray) -> int:
        return act(self.agent, envs.preprocess(obs))


# --------------------------------------------------------------------------------------------
# Recipes: record once, replay anywhere
# --------------------------------------------------------------------------------------------


@dataclass
class Recipe:
    """What it takes to reproduce a drive: one (track seed, actions) pair per episode."""

    track_seeds: list[int]
    actions: list[list[int]]
    skip: int = ZOOM_FRAMES  # frames at each episode start excluded from the anchor pool
    info: dict = field(default_factory=dict)  # how it was recorded (driver, bursts, seed)

    @property
    def n_steps(self) -> int:
        return sum(len(a) for a in self.actions)

    def pool(self) -> np.ndarray:
        """Indices (into the frames of :func:`replay`) that may serve as anchors."""
        out, start = [], 0
        for acts in self.actions:
            n_frames = len(acts) + 1  # the reset frame, then one per action
            out.append(np.arange(start + self.skip, start + n_frames))
            start += n_frames
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def to_json(self) -> dict:
        d = asdict(self)
        d["actions"] = ["".join(str(a) for a in acts) for acts in self.actions]
        return d

    @classmethod
    def from_json(cls, d: dict) -> Recipe:
        return cls(
            track_seeds=[int(s) for s in d["track_seeds"]],
            actions=[[int(c) for c in acts] for acts in d["actions"]],
            skip=int(d["skip"]),
            info=dict(d.get("info", {})),
        )


def record(
    driver: Callable[..., int] | None = None,
    *,
    n_steps: int = 4000,
    first_track_seed: int = ANCHOR_TRACK_SEED,
    burst_every: int = 200,
    burst_length: int = 100,
    seed: int = 0,
    max_episode_steps: int = envs.MAX_EPISODE_STEPS,
    color: str | Sequence[int] = "green",
) -> Recipe:
    """Drive ``n_steps`` steps over consecutive tracks and return the :class:`Recipe`.

    ``color`` is the colour the driver sees (an :class:`AgentDriver` should drive in its own);
    it never reaches the physics, so the recipe replays identically in every colour.

    Every ``burst_every`` steps of an episode the driver is overridden for ``burst_length`` steps
    by one random action, drawn from a local generator seeded with ``seed`` (the authors' recipe:
    200 and 100), so the recording includes off-track and recovery states. Episodes end at 1000
    steps, a finished lap or leaving the playfield; the next track seed follows.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if burst_length >= burst_every and burst_length > 0:
        raise ValueError("burst_length must be shorter than burst_every")
    driver = driver if driver is not None else ScriptedDriver()
    drive: Callable[..., int] = driver
    rng = np.random.default_rng(seed)
    wants_obs = bool(getattr(driver, "wants_obs", False))
    env = envs.ColorCarRacing(color)
    seeds, actions, total = [], [], 0
    track = first_track_seed
    try:
        while total < n_steps:
            obs, _ = env.reset(seed=track)
            episode: list[int] = []
            burst_action = None
            for t in range(min(max_episode_steps, n_steps - total)):
                if burst_length and t > 0 and t % burst_every == 0:
                    burst_action = int(rng.integers(len(envs.ACTIONS)))
                if burst_action is not None and t % burst_every < burst_length and t >= burst_every:
                    action = burst_action
                else:
                    action = int(drive(env, obs) if wants_obs else drive(env))
                episode.append(action)
                obs, _, terminated, _, _ = env.step(action)
                if terminated:
                    break
            seeds.append(track)
            actions.append(episode)
            total += len(episode)
            track += 1
    finally:
        env.close()
    info = {
        "driver": _describe(driver),
        "burst_every": burst_every,
        "burst_length": burst_length,
        "seed": seed,
        "color": envs.color_name(color),
    }
    return Recipe(track_seeds=seeds, actions=actions, info=info)


def _describe(driver) -> dict:
    d: dict[str, Any] = {"type": type(driver).__name__}
    if isinstance(driver, ScriptedDriver):
        d.update(asdict(driver))
    elif isinstance(driver, AgentDriver):
        d["agent"] = driver.name
        card = getattr(driver.agent, "card", None)
        if isinstance(card, dict):
            d["agent_sha256"] = card.get("sha256")
            d["agent_steps"] = card.get("training", {}).get("steps")
    return d


@dataclass
class Replay:
    """The frames and car poses of a replayed recipe, in one colour."""

    color: str
    frames: np.ndarray  # (T, 84, 84, 3) uint8, what the agent sees (or raw 96x96 if asked)
    poses: np.ndarray  # (T, 3) float64: car x, y, angle at each frame


def replay(
    recipe: Recipe, color: str | Sequence[int] = "green", *, renderer: str = "fast", raw: bool = False
) -> Replay:
    """Replay ``recipe`` in ``color``: one frame per reset and per action, in order.

    Frames are what the agent sees (:func:`relreps.envs.preprocess`), or the raw 96x96 frames with
    ``raw=True``. The same recipe gives byte-identical frames on every replay.
    """
    env = envs.ColorCarRacing(color, renderer=renderer)
    frames, poses = [], []

    def keep(obs):
        frames.append(obs)
        poses.append((*env.car.hull.position, env.car.hull.angle))

    try:
        for track, acts in zip(recipe.track_seeds, recipe.actions):
            obs, _ = env.reset(seed=track)
            keep(obs)
            for a in acts:
                obs, *_ = env.step(a)
                keep(obs)
    finally:
        env.close()
    stack = np.stack(frames)
    return Replay(
        color=envs.color_name(color),
        frames=stack if raw else envs.preprocess(stack),
        poses=np.array(poses, dtype=np.float64),
    )


def _replay_frames(args) -> np.ndarray:
    recipe, color, indices = args
    return replay(recipe, color).frames[indices]


def replay_anchors(
    recipe: Recipe, indices: np.ndarray, colors: Iterable[str | Sequence[int]], *, processes: int | None = None
) -> dict[str, np.ndarray]:
    """Anchor frames (agent view) for several colours, replayed in parallel processes."""
    colors = list(colors)
    jobs = [(recipe, c, indices) for c in colors]
    n = min(len(jobs), processes or os.cpu_count() or 1)
    if n <= 1:
        results = [_replay_frames(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(_replay_frames, jobs))
    return {envs.color_name(c): r for c, r in zip(colors, results)}


def choose_indices(recipe: Recipe, n_anchors: int = DEFAULT_N_ANCHORS, *, seed: int = 0) -> np.ndarray:
    """Draw ``n_anchors`` distinct frame indices from the recipe's pool (sorted), reproducibly."""
    pool = recipe.pool()
    if not 1 <= n_anchors <= len(pool):
        raise ValueError(
            f"n_anchors must be between 1 and the {len(pool)} frames the recording offers "
            f"(record more steps for more anchors); got {n_anchors}"
        )
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(pool, size=n_anchors, replace=False))


# --------------------------------------------------------------------------------------------
# Anchor sets: create, save, load, verify
# --------------------------------------------------------------------------------------------


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def frames_checksum(frames: np.ndarray) -> str:
    """sha256 of the frames' shape, dtype and bytes (independent of how they are compressed)."""
    frames = np.ascontiguousarray(frames)
    head = f"{frames.dtype.str}{frames.shape}".encode()
    return _sha256_bytes(head + frames.tobytes())


class AnchorError(ValueError):
    """A missing, corrupted or inconsistent anchor set."""


@dataclass
class AnchorSet:
    """A named set of parallel anchors: a recipe, the chosen frame indices and stored frames."""

    name: str
    recipe: Recipe
    indices: np.ndarray
    checksums: dict[str, str]  # colour -> frames_checksum of its anchor frames
    path: Path | None = None
    meta: dict = field(default_factory=dict)
    _frames: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n_anchors(self) -> int:
        return len(self.indices)

    @property
    def stored_colors(self) -> list[str]:
        return sorted(self.checksums)

    def frames(self, color: str | Sequence[int] = "green") -> np.ndarray:
        """The anchor frames in ``color``: (n_anchors, 84, 84, 3) uint8, as the agent sees them.

        Stored colours are read from disk (checksum verified); others are replayed once and cached.
        """
        key = envs.color_name(color)
        if key not in self._frames:
            if self.path is not None and (self.path / f"{key}{SUFFIX}").exists():
                self._frames[key] = _read_frames(self.path / f"{key}{SUFFIX}")
            else:
                self._frames[key] = replay(self.recipe, color).frames[self.indices]
            expected = self.checksums.get(key)
            if expected is not None and frames_checksum(self._frames[key]) != expected:
                got = self._frames.pop(key)
                raise AnchorError(
                    f"anchor frames for {key!r} of set {self.name!r} do not match their checksum "
                    f"({frames_checksum(got)[:12]}... != {expected[:12]}...)"
                )
        return self._frames[key]

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``anchors.json`` and one compressed ``<colour>.npy.xz`` per cached colour.

        The set is written to a new folder beside ``path`` and renamed into place, so an interrupted
        save leaves the previous set (if any) whole. Refuses an existing set unless ``overwrite``,
        and a folder that holds other files always (:func:`check_target`).
        """
        path = Path(path)
        check_target(path, overwrite=overwrite)
        if not self._frames:
            raise AnchorError(f"anchor set {self.name!r} holds no frames to save")
        tmp = files.new_folder_beside(path)
        try:
            self._save_into(tmp)
            files.replace_folder(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.path = path
        return path

    def _save_into(self, path: Path) -> None:
        stored = {}
        checksums = dict(self.checksums)
        for key in sorted(self._frames):
            arr = self._frames[key]
            target = path / f"{key}{SUFFIX}"
            _write_frames(target, arr)
            stored[key] = {"file": target.name, "sha256": _sha256_bytes(target.read_bytes())}
            checksums[key] = frames_checksum(arr)
        card = {
            "format": FORMAT_VERSION,
            "name": self.name,
            "n_anchors": self.n_anchors,
            "obs_shape": [envs.OBS_SIZE, envs.OBS_SIZE, 3],
            "indices": self.indices.tolist(),
            "checksums": checksums,
            "files": stored,
            "recipe": self.recipe.to_json(),
            **{k: v for k, v in self.meta.items() if k not in ("files",)},
        }
        (path / "anchors.json").write_text(json.dumps(card, indent=1) + "\n")
        self.checksums, self.meta["files"] = checksums, stored

    @property
    def identity(self) -> str:
        """sha256 of what makes the anchors parallel in every colour: the recipe and the chosen
        indices (the same for every colour; two sets with equal identities hold the same states)."""
        key = json.dumps({"recipe": self.recipe.to_json(), "indices": self.indices.tolist()}, sort_keys=True)
        return _sha256_bytes(key.encode())


def check_target(path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Refuse to write an anchor set at ``path`` where that would lose files: an existing set
    (unless ``overwrite``), or an existing file or non-empty folder that is not an anchor set."""
    path = Path(path)
    if not str(path) or str(path) == ".":
        raise ValueError("the anchor set's folder is empty: give a folder name such as anchors/my-set")
    if (path / "anchors.json").is_file():
        if not overwrite:
            raise FileExistsError(
                f"an anchor set already exists at {path}; choose another name or pass overwrite=True "
                "(--overwrite)"
            )
        return
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not an anchor set (no anchors.json); choose a new folder")


def create(
    name: str,
    *,
    colors: Iterable[str | Sequence[int]] = tuple(envs.COLORS),
    n_anchors: int = DEFAULT_N_ANCHORS,
    n_steps: int = 4000,
    seed: int = 0,
    driver: Callable[..., int] | None = None,
    processes: int | None = None,
    **record_kwargs,
) -> AnchorSet:
    """Record a drive, choose ``n_anchors`` indices and replay them in ``colors`` (not saved).

    The arguments are checked before the drive is recorded."""
    colors = list(colors)
    names = [envs.color_name(c) for c in colors]  # bad colours fail here, before any work
    if not names:
        raise ValueError(f"no colours given: name at least one of {', '.join(envs.COLORS)} (or R,G,B)")
    if len(set(names)) != len(names):
        raise ValueError(f"colours given twice: {names}")
    check_recording(n_steps=n_steps, n_anchors=n_anchors, **{k: v for k, v in record_kwargs.items()
                                                               if k in ("burst_every", "burst_length")})
    if processes is not None and processes < 1:
        raise ValueError(f"processes must be >= 1 (or None: one per core), got {processes}")
    t0 = time.time()
    recipe = record(driver, n_steps=n_steps, seed=seed, **record_kwargs)
    indices = choose_indices(recipe, n_anchors, seed=seed)
    frames = replay_anchors(recipe, indices, colors, processes=processes)
    meta = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - t0, 1),
        "versions": _versions(),
    }
    aset = AnchorSet(name=name, recipe=recipe, indices=indices, checksums={}, meta=meta)
    aset._frames.update(frames)
    aset.checksums.update({k: frames_checksum(v) for k, v in frames.items()})
    return aset


def check_recording(*, n_steps: int, n_anchors: int = 1, burst_every: int = 200, burst_length: int = 100) -> None:
    """Refuse recording settings that cannot give an anchor set, before any driving: ``n_steps`` and
    ``n_anchors`` >= 1, no more anchors than steps, and bursts shorter than their period."""
    for label, value in (("n_steps (--steps)", n_steps), ("n_anchors (--n-anchors)", n_anchors)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} must be an integer >= 1, got {value!r}")
    if n_anchors > n_steps:
        raise ValueError(f"n_anchors ({n_anchors}) cannot exceed the recorded steps ({n_steps}): each anchor is "
                         "a distinct recorded frame; record more steps (--steps)")
    if burst_length < 0:
        raise ValueError(f"burst_length must be >= 0 (0: no random bursts), got {burst_length}")
    if burst_length > 0 and not burst_length < burst_every:
        raise ValueError(f"burst_length ({burst_length}) must be shorter than burst_every ({burst_every})")

def _versions() -> dict:

    from importlib.metadata import version

    from . import __version__

    return {
        "relreps": __version__,
        "gymnasium": version("gymnasium"),
        "pygame-ce": version("pygame-ce"),
        "box2d": version("box2d"),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def available() -> list[str]:
    """Names of the anchor sets shipped with the package."""
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / "anchors.json").is_file())


def load(name_or_path: str | os.PathLike) -> AnchorSet:
    """Load an anchor set by shipped name (see :func:`available`) or from a folder path.

    A shipped name (a plain name such as ``scripted-3136``, given as a string) always means the
    shipped set; a folder of the same name in the working folder is then not used, with a warning
    saying so (write ``./NAME`` for the folder). Checks the card's format and fields and every
    stored file's sha256 (frames are read lazily by :meth:`AnchorSet.frames`, which also checks
    their content checksum).
    """
    path = resolve(name_or_path)
    card_path = path / "anchors.json"
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AnchorError(f"{card_path} is not valid JSON: {e}") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT_VERSION:
        raise AnchorError(
            f"{card_path} has format {card.get('format') if isinstance(card, dict) else None!r}; this relreps "
            f"reads format {FORMAT_VERSION}"
        )
    try:
        name = str(card["name"])
        recipe = Recipe.from_json(card["recipe"])
        indices = np.array(card["indices"], dtype=np.int64)
        checksums = {str(k): str(v) for k, v in dict(card["checksums"]).items()}
        stored = {str(k): (str(f["file"]), str(f["sha256"])) for k, f in dict(card.get("files", {})).items()}
    except KeyError as e:
        raise AnchorError(f"{card_path} lacks the field {e.args[0]!r}; re-create the set with "
                          "`relreps anchors collect`") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise AnchorError(f"{card_path} has a malformed field: {e}") from None
    if indices.ndim != 1 or len(indices) == 0:
        raise AnchorError(f"{card_path}: 'indices' must be a non-empty list of frame indices")
    n_frames = recipe.n_steps + len(recipe.actions)
    if indices.min() < 0 or indices.max() >= n_frames:
        raise AnchorError(f"{card_path}: anchor indices outside the recording's {n_frames} frames")
    for key, (file_name, digest_expected) in stored.items():
        if Path(file_name).name != file_name or file_name in ("", ".", ".."):
            raise AnchorError(f"{card_path}: file name {file_name!r} of colour {key!r} is not a plain file name")
        f = {"file": file_name, "sha256": digest_expected}
        file = path / f["file"]
        if not file.is_file():
            raise AnchorError(f"anchor set {name!r}: missing file {file}")
        digest = _sha256_bytes(file.read_bytes())
        if digest != f["sha256"]:
            raise AnchorError(
                f"anchor set {name!r}: {file.name} has sha256 {digest[:12]}..., expected "
                f"{f['sha256'][:12]}...; the file is corrupted or was modified (re-create it with "
                f"`relreps anchors collect`)"
            )
    meta = {k: v for k, v in card.items() if k in ("created", "seconds", "versions", "files")}
    return AnchorSet(name=name, recipe=recipe, indices=indices, checksums=checksums, path=path, meta=meta)


def resolve(name_or_path: str | os.PathLike) -> Path:
    """The folder of the anchor set ``name_or_path`` names (:func:`load`'s rules), or an
    :class:`AnchorError` that lists the shipped sets."""
    text = os.fspath(name_or_path)
    if not text.strip():
        raise AnchorError(f"no anchor set given (an empty name): a shipped name "
                          f"({', '.join(available()) or 'none'}) or a folder with anchors.json")
    path = Path(text)
    bare = isinstance(name_or_path, str) and path.name == text and text not in (".", "..")
    shipped = SHIPPED_DIR / text
    if bare and (shipped / "anchors.json").is_file():
        if (path / "anchors.json").is_file() and path.resolve() != shipped.resolve():
            warnings.warn(f"anchor set {text!r}: using the shipped set, not the folder {text}/ of the same name "
                          f"here (pass ./{text} to use that folder)", stacklevel=3)
        return shipped
    if (path / "anchors.json").is_file():
        return path
    raise AnchorError(
        f"no anchor set {text!r}: not a folder with anchors.json, and not "
        f"a shipped name (available: {', '.join(available()) or 'none'})"
    )


def frames_bytes(frames: np.ndarray) -> bytes:
    """Frames as a ``.npy.xz`` file's bytes: a ``.npy`` file (no pickles), lzma-compressed."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(frames), allow_pickle=False)
    return lzma.compress(buf.getvalue(), preset=6)


def read_frames(file: str | os.PathLike) -> np.ndarray:
    """Frames from a ``.npy.xz`` file (:func:`frames_bytes`); never unpickles."""
    return _read_frames(Path(file))


def _write_frames(file: Path, frames: np.ndarray) -> None:
    files.write_bytes(file, frames_bytes(frames))


def _read_frames(file: Path) -> np.ndarray:
    try:
        raw = lzma.decompress(file.read_bytes())
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except (lzma.LZMAError, ValueError, OSError) as e:
        raise AnchorError(f"cannot read anchor frames from {file}: {e}") from None


def verify(aset: AnchorSet, colors: Iterable[str] | None = None, *, processes: int | None = None) -> dict[str, bool]:
    """Replay the recipe and compare with the stored frames: ``{colour: identical}``."""
    colors = list(colors) if colors is not None else aset.stored_colors
    replayed = replay_anchors(aset.recipe, aset.indices, colors, processes=processes)
    return {k: frames_checksum(v) == aset.checksums.get(k) for k, v in replayed.items()}
