"""The static stitch explorer: every stitch of the zoo, driven at build time, played in a browser.

The live explorer (:mod:`relreps.widgets`) needs a kernel; most readers meet the book as static
pages. This module records, once per build, one held-out track's drive for every encoder x policy
pair of the zoo's agents (relative and absolute; the paper's stitch and the affine map on the
anchors), and writes what a browser needs to replay them with no kernel and no network:

- :func:`record` drives every pair (:func:`all_pairs`) in worker processes, with
  :func:`relreps.evaluation.record_episode` (the evaluation protocol's loop and scores), and keeps
  every :data:`STRIDE`-th frame, as the agent sees it (84x84), in one WebP **sprite sheet** per
  drive (:func:`sprite_sheet`), with the running return, the actions and whether the road is under
  the car (:func:`road_under_car`); the raw frames never leave the worker.
- :func:`write_assets` writes the sprite sheets into one folder, atomically (:mod:`relreps.files`);
  the book puts it in ``_static/`` so that the built site serves it beside the page.
- :func:`component_html` returns one self-contained HTML fragment (inline CSS and JavaScript, the
  drives' numbers inline as JSON, no CDN): choose the representation, the alignment, the encoder and
  the policy (menus, or a cell of the score grid), then watch the drive with its running-return
  curve, its scores and a verdict (:func:`verdict`: drives, drives part of the track, or fails, and
  why). A drive's sprite sheet is fetched only when the drive is chosen.

Every number the page shows is computed from the drives recorded by the build.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import multiprocessing as mp
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import envs, files, stitching, zoo
from .evaluation import EVAL_TRACKS, Drive, Episode, EpisodeScores, record_episode

__all__ = [
    "ALIGNS",
    "QUALITY",
    "STRIDE",
    "Pair",
    "Recording",
    "all_pairs",
    "compare_with_table",
    "component_html",
    "encode_webp",
    "kept_steps",
    "lowest",
    "record",
    "representative",
    "road_under_car",
    "sprite_sheet",
    "table_rows",
    "verdict",
    "write_assets",
    "zoo_names",
]

#: The alignments recorded, with the label the page shows: ``"none"`` is the paper's stitch
#: (``stitch(..., align=None)``), ``"affine"`` our affine map fitted on the anchors.
ALIGNS: dict[str, str] = {"none": "the paper's stitch", "affine": "affine map on the anchors (ours)"}
#: One frame kept every ``STRIDE`` steps (the last frame always): 251 frames for 1000 steps.
STRIDE = 4
#: WebP quality of the sprite sheets (lossy: the road, the car and the kerbs stay sharp, the grass
#: patches soften; about 90 kB for a whole lap of 251 frames).
QUALITY = 50
#: A stitch "drives" when its maximum return is at least this share of what its encoder's own agent
#: reaches on the same track and colour (the book's target ratio), and "fails" below :data:`FAILS`.
DRIVES = 0.8
FAILS = 0.5
#: CarRacing zooms in during its first second (50 steps): frames before are not judged for the road.
ZOOM_STEPS = 50
#: Where the car is in a 96x96 frame (rows, columns; it never moves on screen), and the window
#: around it where :func:`road_under_car` looks for the road.
CAR_ROWS, CAR_COLS = slice(66, 77), slice(45, 51)
ROAD_WINDOW = (slice(60, 83), slice(38, 58))
#: Share of the window's pixels (the car's excluded) that must be road for "the road is under the car".
ROAD_SHARE = 0.25
#: The playfield penalty: a step that leaves the playfield is rewarded exactly this.
OFF_PLAYFIELD = -100.0
#: CarRacing's steps per second of game time (the page plays drives at a multiple of it).
GAME_FPS = 50


# --------------------------------------------------------------------------------------------
# Which pairs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One stitch to record: ``encoder``'s encoder joined to ``policy``'s head (agent names), with
    ``align`` (a key of :data:`ALIGNS`). An agent with itself is the agent alone, in either alignment."""

    encoder: str
    policy: str
    align: str = "none"

    def __post_init__(self) -> None:
        if self.align not in ALIGNS:
            raise ValueError(f"unknown align {self.align!r}: expected one of {', '.join(ALIGNS)}")

    @property
    def alone(self) -> bool:
        """True for an agent with itself: no stitch, the same drive in every alignment."""
        return self.encoder == self.policy

    @property
    def drive_key(self) -> tuple[str, str, str]:
        """Pairs with the same key drive the same agent: an agent alone ignores the alignment."""
        return (self.encoder, self.policy, "none" if self.alone else self.align)


def zoo_names(algo: str = "ppo", names: Iterable[str] | None = None) -> list[str]:
    """The zoo's agents of one algorithm trained with seed 1 (the paper's Table 1 setting, named by
    :func:`relreps.zoo.agent_name`, e.g. ``ppo-rel-green``), relative first, colours in the paper's
    order; ``names``: choose among these instead of :func:`relreps.zoo.available`."""
    have = set(zoo.available() if names is None else names)
    return [n for rep in stitching.REPRESENTATIONS for color in envs.COLORS
            if (n := zoo.agent_name(algo, rep, color)) in have]


def _card(agent) -> zoo.Card:
    return agent.card if isinstance(agent, zoo.Agent) else zoo.card(agent)


def all_pairs(agents, aligns: Iterable[str] = tuple(ALIGNS)) -> list[Pair]:
    """Every encoder x policy pair of one representation among ``agents`` (names or loaded agents;
    a relative encoder never meets an absolute head), in each alignment: for four colours and two
    representations, 4 x 4 x 2 x 2 = 64 pairs (56 distinct drives: an agent alone is one drive)."""
    cards = {a.name if isinstance(a, zoo.Agent) else str(a): _card(a) for a in agents}
    aligns = list(aligns)
    for a in aligns:
        if a not in ALIGNS:
            raise ValueError(f"unknown align {a!r}: expected one of {', '.join(ALIGNS)}")
    out = []
    for rep in stitching.REPRESENTATIONS:
        names = [n for n, c in cards.items() if c["representation"] == rep]
        out += [Pair(e, p, a) for a in aligns for e in names for p in names]
    return out


# --------------------------------------------------------------------------------------------
# Frames: which are kept, the sprite sheet, the road under the car
# --------------------------------------------------------------------------------------------


def kept_steps(length: int, stride: int = STRIDE) -> list[int]:
    """The steps whose frame a sprite sheet keeps for a drive of ``length`` steps (``length + 1``
    frames): every ``stride``-th from step 0, and the last one."""
    if stride < 1 or length < 0:
        raise ValueError(f"need stride >= 1 and length >= 0, got stride {stride!r}, length {length!r}")
    steps = list(range(0, length + 1, stride))
    if steps[-1] != length:
        steps.append(length)
    return steps


def sprite_sheet(frames: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Frames ``(n, h, w, 3)`` tiled row by row into one image ``(rows * h, columns * w, 3)``
    (default: as square as it gets); the unused tiles of the last row are black."""
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected frames of shape (n, h, w, 3) with n >= 1, got {frames.shape}")
    n, h, w, _ = frames.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    sheet = np.zeros((rows * columns, h, w, 3), np.uint8)
    sheet[:n] = frames
    return sheet.reshape(rows, columns, h, w, 3).transpose(0, 2, 1, 3, 4).reshape(rows * h, columns * w, 3)


def encode_webp(image: np.ndarray, quality: int = QUALITY) -> bytes:
    """An RGB image as lossy WebP bytes (Pillow)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, "WEBP", quality=int(quality), method=4)
    return buf.getvalue()


def road_under_car(frames: np.ndarray) -> np.ndarray:
    """For each 96x96 frame, whether the road is under the car: at least :data:`ROAD_SHARE` of the
    pixels around the car (the car itself left out) are road grey (equal channels, 95-110; the
    backgrounds and grass are coloured). ``(n,)`` bool."""
    frames = np.asarray(frames)
    window = frames[:, ROAD_WINDOW[0], ROAD_WINDOW[1]].astype(np.int16)
    grey = (window.max(-1) - window.min(-1) <= 3) & (window[..., 0] >= 95) & (window[..., 0] <= 110)
    mask = np.ones(grey.shape[1:], bool)
    mask[CAR_ROWS.start - ROAD_WINDOW[0].start : CAR_ROWS.stop - ROAD_WINDOW[0].start,
         CAR_COLS.start - ROAD_WINDOW[1].start : CAR_COLS.stop - ROAD_WINDOW[1].start] = False
    return grey[:, mask].mean(axis=1) >= ROAD_SHARE


# --------------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Recording(EpisodeScores):
    """One recorded drive of a :class:`Pair`, compact: no raw frames, only the sprite sheet of the
    kept ones (:func:`kept_steps`), and the numbers, step by step."""

    pair: Pair
    representation: str
    encoder_color: str  #: the colour driven on
    policy_color: str
    agent: str  #: the driving agent's name (a stitch's is "ENCODER+POLICY[align]")
    track_seed: int
    max_steps: int  #: the episode's length limit
    stride: int
    episode: Episode  #: the scores, as :func:`relreps.evaluation.run_episode` gives them
    actions: np.ndarray  #: (length,) int
    rewards: np.ndarray  #: (length,) float
    returns: np.ndarray  #: (length,) float, the running return
    road: np.ndarray  #: (length + 1,) bool, :func:`road_under_car` of every frame
    sprite: bytes  #: WebP, the kept frames tiled row by row
    columns: int  #: frames per row of the sprite sheet
    size: int = envs.OBS_SIZE  #: a frame's width and height in the sheet
    seconds: float = 0.0  #: how long driving and encoding took (wall clock)
    cpu_seconds: float = 0.0  #: the CPU time they took (the worker's)
    extra: dict = field(default_factory=dict)

    @property
    def best_step(self) -> int:
        """The step after which the running return is at its maximum (1-based, as the curve's x)."""
        return int(np.argmax(self.returns)) + 1

    @property
    def steps(self) -> list[int]:
        """The steps of the sprite sheet's frames."""
        return kept_steps(self.length, self.stride)

    @property
    def off_playfield(self) -> bool:
        """The episode ended because the car left the playfield (its last reward is the penalty)."""
        return bool(len(self.rewards)) and float(self.rewards[-1]) == OFF_PLAYFIELD

    @property
    def tiles_share(self) -> float:
        """The share of the track's tiles the car visited: each step costs 0.1 and the tiles are worth
        1000 together, so it is (the return + 0.1 a step, without the playfield penalty) / 1000."""
        r = self.rewards[self.rewards != OFF_PLAYFIELD] if self.off_playfield else self.rewards
        return float(np.clip((r + 0.1).sum() / 1000.0, 0.0, 1.0))

    @property
    def last_tile_step(self) -> int:
        """The last step that reached a new tile (0 when none did)."""
        new = np.flatnonzero(self.rewards > 0)
        return int(new[-1]) + 1 if len(new) else 0

    @property
    def digest(self) -> str:
        """A short hash of the sprite sheet (its file name carries it, so a changed drive is refetched)."""
        return hashlib.sha256(self.sprite).hexdigest()[:10]


_JOBS: list = []  # (agent, colour) per distinct drive, inherited by the forked workers


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _compact(pair: Pair, drive: Drive, representation: str, policy_color: str, max_steps: int, stride: int,
             quality: int) -> Recording:
    steps = kept_steps(drive.length, stride)
    kept = envs.preprocess(drive.frames[steps])  # what the agent sees (84x84): a quarter smaller than 96x96
    return Recording(
        pair=pair, representation=representation, encoder_color=drive.color, policy_color=policy_color,
        agent=drive.agent, track_seed=drive.track_seed, max_steps=max_steps, stride=stride, episode=drive.episode,
        actions=drive.actions, rewards=drive.rewards, returns=drive.returns, road=road_under_car(drive.frames),
        sprite=encode_webp(sprite_sheet(kept), quality), columns=math.ceil(math.sqrt(len(kept))),
        size=int(kept.shape[1]))


def _drive_job(args) -> tuple[int, Recording]:
    index, track_seed, max_steps, stride, quality = args
    start, cpu = time.perf_counter(), time.process_time()
    pair, agent, representation, policy_color = _JOBS[index]
    drive = record_episode(agent, agent.color, track_seed, max_steps, threads=1)
    rec = _compact(pair, drive, representation, policy_color, max_steps, stride, quality)
    rec.seconds, rec.cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return index, rec


def _affine_maps(pairs: Sequence[Pair], agents: Mapping[str, zoo.Agent]) -> dict:
    """The affine map of every affine stitch, as :func:`relreps.stitching.table` fits them: each
    agent's outputs on the fitting set embedded once, one least-squares fit per pair."""
    outputs: dict = {}
    maps = {}
    for p in pairs:
        if p.align != "affine" or p.alone or p.drive_key in maps:
            continue
        enc, pol = agents[p.encoder], agents[p.policy]
        name = stitching._fit_set(enc, pol)  # the set stitch(..., align="affine") fits on
        for a in (enc, pol):
            if (a.name, name) not in outputs:
                outputs[a.name, name] = stitching.set_outputs(a, name)
        maps[p.drive_key] = stitching.fit_affine(outputs[enc.name, name], outputs[pol.name, name])
    return maps


def record(
    pairs: Sequence[Pair],
    agents: Mapping[str, zoo.Agent] | None = None,
    *,
    track_seed: int = EVAL_TRACKS[0],
    max_steps: int = envs.MAX_EPISODE_STEPS,
    stride: int = STRIDE,
    quality: int = QUALITY,
    processes: int | None = None,
) -> list[Recording]:
    """Drive every pair once on ``track_seed`` (on its encoder's colour, greedy, at most
    ``max_steps`` steps) and keep it compactly (:class:`Recording`), in the order of ``pairs``.

    ``agents``: name -> loaded agent (default: the names are loaded from the zoo). Pairs that drive
    the same agent (an agent alone, in either alignment) share one drive. Affine maps are fitted as
    :func:`relreps.stitching.table` fits them, so a drive's maximum return is its track's entry in
    the saved tables (:func:`compare_with_table`). ``processes`` (default: one per core) drive in
    forked worker processes, one torch thread each; ``1`` drives here.

    Raises:
        ValueError: a pair cannot be stitched (checked for all before any drive), or bad arguments.
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no pairs to record")
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    if not 0 <= quality <= 100:
        raise ValueError(f"quality must be from 0 to 100, got {quality!r}")
    agents = dict(agents or {})
    for name in {n for p in pairs for n in (p.encoder, p.policy)} - set(agents):
        agents[name] = zoo.load(name)
    for p in pairs:
        if not p.alone:
            stitching.check_stitchable(agents[p.encoder], agents[p.policy],
                                       align=None if p.align == "none" else p.align)
    maps = _affine_maps(pairs, agents)
    distinct: dict[tuple[str, str, str], int] = {}
    jobs: list[tuple[Pair, zoo.Agent, str, str]] = []
    for p in pairs:
        if p.drive_key in distinct:
            continue
        enc, pol = agents[p.encoder], agents[p.policy]
        if p.alone:
            agent = enc
        else:
            align = None if p.align == "none" else p.align
            agent = stitching.stitch(enc, pol, align=align, affine_map=maps.get(p.drive_key))
        distinct[p.drive_key] = len(jobs)
        jobs.append((p, agent, enc.representation, envs.color_name(pol.color)))
    global _JOBS
    _JOBS = jobs
    args = [(i, int(track_seed), int(max_steps), int(stride), int(quality)) for i in range(len(jobs))]
    n = min(len(jobs), processes or os.cpu_count() or 1)
    try:
        if n <= 1 or "fork" not in mp.get_all_start_methods():
            done = dict(map(_drive_job, args))
        else:
            with mp.get_context("fork").Pool(n, initializer=_init_worker) as pool:
                done = dict(pool.imap_unordered(_drive_job, args, chunksize=1))
    finally:
        _JOBS = []
    out = []
    for p in pairs:
        rec = done[distinct[p.drive_key]]
        if rec.pair != p:  # an agent alone in another alignment: the same drive, its own pair
            rec = Recording(**{**rec.__dict__, "pair": p})
        out.append(rec)
    return out


# --------------------------------------------------------------------------------------------
# Reading the drives: verdicts, the representative stitch, the saved tables
# --------------------------------------------------------------------------------------------


def _own(rec: Recording, recordings: Iterable[Recording]) -> Recording | None:
    """The drive of ``rec``'s encoder agent alone (same track), if recorded."""
    for r in recordings:
        if r.pair.alone and r.pair.encoder == rec.pair.encoder and r.track_seed == rec.track_seed:
            return r
    return None


def verdict(rec: Recording, own: Recording | None) -> dict:
    """How a stitch drives, against its encoder's agent alone on the same track (``own``).

    Returns ``{"kind", "ratio", "text"}``: ``kind`` is ``"alone"`` (an agent with itself: the
    reference), ``"drives"`` (maximum return at least :data:`DRIVES` of the agent alone's),
    ``"partly"``, ``"fails"`` (below :data:`FAILS`), or ``"unknown"`` (no drive alone to compare
    with); ``text`` says it in words, with why a drive falls short: where it stops reaching new
    tiles, the share of the track it covers, how much of the rest it spends off the road, and
    whether it left the playfield. Every number comes from the two drives.
    """
    enc, pol = rec.encoder_color, rec.policy_color
    if rec.pair.alone:
        lap = "finishes the lap" if rec.episode.lap_finished else f"covers {rec.tiles_share:.0%} of the track's tiles"
        return {"kind": "alone", "ratio": 1.0,
                "text": f"The {enc} agent alone (no stitch): it {lap}, maximum return {rec.max_return:.1f}. "
                        f"Every stitch with the {enc} encoder is compared with this drive."}
    if own is None or own.max_return <= 0:
        return {"kind": "unknown", "ratio": None,
                "text": f"Maximum return {rec.max_return:.1f}; the {enc} agent alone was not recorded on this "
                        f"track (or scored nothing), so there is nothing to compare with."}
    ratio = rec.max_return / own.max_return
    keeps = (f"{rec.max_return:.1f}, {ratio:.0%} of the {enc} agent alone on this track "
             f"({own.max_return:.1f})")
    if ratio >= DRIVES:
        lap = " and finishes the lap" if rec.episode.lap_finished else ""
        return {"kind": "drives", "ratio": ratio,
                "text": f"Drives: the {enc} encoder with the {pol} policy scores {keeps}{lap}."}
    kind = "partly" if ratio >= FAILS else "fails"
    head = "Drives part of the track" if kind == "partly" else "Fails"
    why = [f"it covers {rec.tiles_share:.0%} of the track's tiles (the agent alone {own.tiles_share:.0%})"]
    last = rec.last_tile_step
    if last == 0:
        why.append("it never reaches a new tile")
    elif rec.length - last >= 20:
        after = rec.road[max(last + 1, ZOOM_STEPS) :]
        on = float(after.mean()) if len(after) else 0.0
        where = "the road is under the car" if on >= 0.5 else "the car is off the road"
        share = on if on >= 0.5 else 1 - on
        counts = np.bincount(rec.actions[last:], minlength=len(envs.ACTIONS))
        most = int(np.argmax(counts))
        why.append(f"its last new tile is at step {last}; in the {rec.length - last} steps after, "
                   f"{where} in {share:.0%} of the frames, and {counts[most] / counts.sum():.0%} of its "
                   f"actions are {envs.ACTIONS[most]}")
    if rec.off_playfield:
        why.append(f"it leaves the playfield at step {rec.length} (-100)")
    return {"kind": kind, "ratio": ratio,
            "text": f"{head}: the {enc} encoder with the {pol} policy scores {keeps}: " + "; ".join(why) + "."}


def _stitches(recordings: Iterable[Recording], representation: str, align: str) -> list[Recording]:
    return [r for r in recordings if r.representation == representation and r.pair.align == align
            and not r.pair.alone]


def representative(recordings: Sequence[Recording], representation: str = "relative",
                   align: str = "none") -> Recording | None:
    """The median stitch (agents alone left out) of ``representation`` and ``align``, by maximum
    return: the middle one, or the lower of the two middle ones for an even count. By default, a
    typical zero-shot relative stitch. ``None`` when there is no such stitch."""
    cands = sorted(_stitches(recordings, representation, align),
                   key=lambda r: (r.max_return, zoo.color_rank(r.encoder_color), zoo.color_rank(r.policy_color)))
    return cands[(len(cands) - 1) // 2] if cands else None


def lowest(recordings: Sequence[Recording], representation: str = "relative",
           align: str = "none") -> Recording | None:
    """The stitch with the lowest maximum return among ``representation`` and ``align``'s stitches."""
    cands = _stitches(recordings, representation, align)
    return min(cands, key=lambda r: r.max_return) if cands else None


def table_rows(recordings: Sequence[Recording]) -> list[dict]:
    """One row per recording (for a DataFrame): the pair, the scores and the verdict."""
    rows = []
    for r in recordings:
        v = verdict(r, _own(r, recordings))
        rows.append({"representation": r.representation, "align": r.pair.align, "encoder": r.encoder_color,
                     "policy": r.policy_color, "max return": round(r.max_return, 1),
                     "final return": round(r.final_return, 1), "steps": r.length,
                     "ratio to encoder alone": None if v["ratio"] is None else round(v["ratio"], 2),
                     "verdict": v["kind"]})
    return rows


def compare_with_table(recordings: Sequence[Recording], saved: Mapping[str, Any], *,
                       tolerance: float = 1e-6) -> list[dict]:
    """Each recording that a saved stitching table (:func:`relreps.stitching.load_table`) also drove,
    the same way (same agents, representation, alignment, track and episode length, greedy actions),
    with the table's maximum return for that track: ``{"pair", "stored", "driven", "match"}``. A table
    driven with sampled actions compares with nothing (the recordings are greedy)."""
    if saved.get("actions", "greedy") != "greedy":
        return []
    align = saved.get("align") or "none"
    out = []
    for r in recordings:
        cell = saved["cells"].get(r.encoder_color, {}).get(r.policy_color)
        if (r.pair.align != align or cell is None or r.max_steps != saved["max_steps"]
                or saved["encoders"].get(r.encoder_color) != r.pair.encoder
                or saved["policies"].get(r.policy_color) != r.pair.policy):
            continue
        stored = {int(e["track_seed"]): float(e["max_return"]) for e in cell["episodes"]}
        if r.track_seed in stored:
            diff = abs(stored[r.track_seed] - r.max_return)
            out.append({"pair": r.pair, "stored": stored[r.track_seed], "driven": r.max_return,
                        "match": bool(diff <= tolerance)})
    return out


# --------------------------------------------------------------------------------------------
# Assets and the component
# --------------------------------------------------------------------------------------------


def _file_name(rec: Recording) -> str:
    e, p, a = rec.pair.drive_key
    return f"{e}--{p}--{a}.{rec.digest}.webp"


def write_assets(recordings: Sequence[Recording], folder: str | os.PathLike) -> dict:
    """Write every distinct drive's sprite sheet into ``folder`` (replaced as a whole, atomically:
    a reader sees the old set or the new one); returns ``{"folder", "files", "bytes"}``."""
    folder = Path(folder)
    sheets = {_file_name(r): r.sprite for r in recordings}
    new = files.new_folder_beside(folder)
    try:
        for name, data in sheets.items():
            (new / name).write_bytes(data)
        os.chmod(new, 0o755)  # mkdtemp's 0700 would keep a web server out
        files.replace_folder(new, folder)
    except BaseException:
        import shutil

        shutil.rmtree(new, ignore_errors=True)
        raise
    return {"folder": folder, "files": len(sheets), "bytes": sum(len(d) for d in sheets.values())}


def _data(recordings: Sequence[Recording], base_url: str | None, initial: Recording | None) -> dict:
    drives: dict[str, dict] = {}
    pairs: dict[str, dict] = {}
    colors: dict[str, list[dict]] = {}
    reps: list[str] = []
    for r in recordings:
        did = _file_name(r)
        if did not in drives:
            steps = r.steps
            returns = np.concatenate([[0.0], r.returns])[steps]
            drives[did] = {
                "src": (base_url + did if base_url is not None
                        else "data:image/webp;base64," + base64.b64encode(r.sprite).decode("ascii")),
                "n": len(steps), "cols": r.columns, "size": r.size,
                "stride": r.stride, "length": r.length,
                "ret": [int(round(10 * x)) for x in returns],
                "act": "".join(str(int(r.actions[s])) if s < r.length else "-" for s in steps),
                "road": "".join("1" if r.road[s] else "0" for s in steps),
                "max": round(r.max_return, 1), "best": r.best_step, "final": round(r.final_return, 1),
                "lap": bool(r.episode.lap_finished), "agent": r.agent, "color": r.encoder_color,
                "track": r.track_seed}
        own = _own(r, recordings)
        v = verdict(r, own)
        key = "|".join((r.representation, r.pair.align, r.encoder_color, r.policy_color))
        pairs[key] = {"drive": did, "own": None if own is None else _file_name(own), "kind": v["kind"],
                      "ratio": None if v["ratio"] is None else round(v["ratio"], 3), "text": v["text"],
                      "enc": r.pair.encoder, "pol": r.pair.policy}
        if r.representation not in reps:
            reps.append(r.representation)
        for c, name in ((r.encoder_color, r.pair.encoder), (r.policy_color, r.pair.policy)):
            row = colors.setdefault(r.representation, [])
            if all(x["color"] != c for x in row):
                row.append({"color": c, "name": name, "rgb": "rgb(%d,%d,%d)" % envs.resolve_color(c)[0]})
    for row in colors.values():
        row.sort(key=lambda x: (zoo.color_rank(x["color"]), x["color"]))
    reps.sort(key=lambda m: list(stitching.REPRESENTATIONS).index(m) if m in stitching.REPRESENTATIONS else 9)
    first = initial or representative(recordings) or recordings[0]
    start = "|".join((first.representation, first.pair.align, first.encoder_color, first.policy_color))
    return {"drives": drives, "pairs": pairs, "colors": colors, "reps": reps,
            "aligns": [[a, ALIGNS[a]] for a in ALIGNS if any(r.pair.align == a for r in recordings)],
            "actions": list(envs.ACTIONS), "initial": start, "fps": GAME_FPS, "zoom": ZOOM_STEPS,
            "drives_at": DRIVES, "fails_at": FAILS}


_CSS = """
#ID{--rrx-fg:var(--pst-color-text-base,#222);--rrx-muted:var(--pst-color-text-muted,#666);
--rrx-line:var(--pst-color-border,#ccc);--rrx-accent:#2a9d8f;--rrx-best:#e76f51;
color:var(--rrx-fg);max-width:100%;box-sizing:border-box;font-size:0.9rem;line-height:1.35;margin:0.5rem 0}
#ID *{box-sizing:border-box}
#ID .rrx-controls{display:flex;flex-wrap:wrap;gap:0.4rem 0.8rem;margin-bottom:0.5rem}
#ID .rrx-controls label{display:flex;flex-direction:column;font-size:0.8rem;color:var(--rrx-muted);min-width:0;
flex:1 1 9rem;max-width:100%}
#ID select{font:inherit;font-size:0.9rem;color:inherit;background:transparent;border:1px solid var(--rrx-line);
border-radius:4px;padding:0.2rem;max-width:100%;min-width:0;width:100%}
#ID select option{color:#222;background:#fff}
#ID .rrx-main{display:flex;flex-wrap:wrap;gap:0.8rem;align-items:flex-start}
#ID .rrx-view{flex:1 1 14rem;max-width:24rem;min-width:0;position:relative}
#ID canvas{display:block;width:100%;height:auto;aspect-ratio:1/1;image-rendering:pixelated;
image-rendering:crisp-edges;background:#000;border-radius:4px}
#ID .rrx-loading{position:absolute;left:0;right:0;top:40%;text-align:center;color:#eee;font-size:0.85rem;
pointer-events:none}
#ID .rrx-side{flex:1 1 16rem;min-width:0}
#ID svg{display:block;width:100%;height:auto;overflow:visible}
#ID svg text{fill:var(--rrx-muted);font-size:10px;font-family:inherit}
#ID .rrx-player{display:flex;align-items:center;gap:0.5rem;margin-top:0.3rem;flex-wrap:wrap}
#ID .rrx-player input[type=range]{flex:1 1 8rem;min-width:0;accent-color:var(--rrx-accent)}
#ID button{font:inherit;font-size:0.85rem;color:inherit;background:transparent;border:1px solid var(--rrx-line);
border-radius:4px;padding:0.15rem 0.5rem;cursor:pointer}
#ID .rrx-step{font-size:0.8rem;color:var(--rrx-muted);font-variant-numeric:tabular-nums;min-height:1.2em}
#ID .rrx-off{color:var(--rrx-best)}
#ID .rrx-score{margin:0.3rem 0;font-variant-numeric:tabular-nums}
#ID .rrx-verdict{padding:0.35rem 0.5rem;border-left:4px solid var(--rrx-line);margin:0.3rem 0;font-size:0.85rem}
#ID .rrx-verdict.drives{border-color:#2a9d8f}#ID .rrx-verdict.partly{border-color:#e9c46a}
#ID .rrx-verdict.fails{border-color:#d62828}#ID .rrx-verdict.alone{border-color:#888}
#ID .rrx-grid{margin-top:0.6rem;overflow-x:auto;max-width:100%}
#ID table{border-collapse:collapse;font-size:0.8rem;font-variant-numeric:tabular-nums;margin:0}
#ID th,#ID td{padding:0.1rem;text-align:center;border:none}
#ID th{font-weight:normal;color:var(--rrx-muted)}
#ID td button{width:100%;min-width:2.8rem;padding:0.2rem 0.1rem;border-width:2px}
#ID td button.drives{background:rgba(42,157,143,0.25)}#ID td button.partly{background:rgba(233,196,106,0.35)}
#ID td button.fails{background:rgba(214,40,40,0.22)}#ID td button.alone{background:rgba(128,128,128,0.18)}
#ID td button.on{border-color:var(--rrx-fg)}
#ID td button:disabled{opacity:0.35;cursor:default}
#ID .rrx-swatch{display:inline-block;width:0.7em;height:0.7em;border-radius:2px;margin-right:0.2em;
vertical-align:baseline;border:1px solid rgba(0,0,0,0.3)}
#ID .rrx-legend{font-size:0.78rem;color:var(--rrx-muted)}
#ID .rrx-key{display:inline-block;width:1.4em;height:0;border-top:2px solid var(--rrx-accent);vertical-align:middle;
margin-left:0.6em}
#ID .rrx-key.rrx-own{border-top:2px dashed #999}
#ID .rrx-note{font-size:0.78rem;color:var(--rrx-muted);margin-top:0.3rem}
"""

_JS = r"""
(function () {
  "use strict";
  var root = document.getElementById("ID");
  if (!root || root.getAttribute("data-ready")) { return; }
  root.setAttribute("data-ready", "1");
  var D = JSON.parse(root.querySelector("script[type='application/json']").textContent);
  function el(k) { return root.querySelector("[data-rrx='" + k + "']"); }
  function make(tag, attrs, text) {
    var e = document.createElementNS(tag === "svg" || attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
    Object.keys(attrs).forEach(function (a) { if (a !== "svg") { e.setAttribute(a, attrs[a]); } });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  var sel = { rep: el("rep"), align: el("align"), enc: el("enc"), pol: el("pol") };
  var canvas = el("frame"), ctx = canvas.getContext("2d");
  var slider = el("slider"), play = el("play"), speed = el("speed"), stepInfo = el("step");
  var loading = el("loading"), legend = el("legend"), score = el("score"), verdictBox = el("verdict"), grid = el("grid");
  var svg = el("curve"), W = 320, H = 170, X0 = 42, X1 = 312, Y0 = 12, Y1 = 140;
  var images = {};
  var S = { key: null, pair: null, drive: null, k: 0, playing: false, last: 0, acc: 0, visible: false };

  function colorsOf(rep) { return D.colors[rep] || []; }
  function keyOf() { return [sel.rep.value, sel.align.value, sel.enc.value, sel.pol.value].join("|"); }
  function fill(select, options, value) {
    select.textContent = "";
    options.forEach(function (o) { var e = make("option", { value: o[0] }, o[1]); select.appendChild(e); });
    if (value !== undefined && options.some(function (o) { return o[0] === value; })) { select.value = value; }
  }
  function colorOptions(rep) {
    return colorsOf(rep).map(function (c) { return [c.color, c.color + " (" + c.name + ")"]; });
  }

  function buildGrid(rep, align) {
    grid.textContent = "";
    var cs = colorsOf(rep), table = make("table", {}), head = make("tr", {});
    head.appendChild(make("th", {}, "encoder \u2193 policy \u2192"));
    cs.forEach(function (c) { head.appendChild(make("th", { scope: "col" }, c.color)); });
    table.appendChild(head);
    cs.forEach(function (e) {
      var tr = make("tr", {});
      tr.appendChild(make("th", { scope: "row" }, e.color));
      cs.forEach(function (p) {
        var key = [rep, align, e.color, p.color].join("|"), pair = D.pairs[key], td = make("td", {});
        var b = make("button", { type: "button", "data-key": key,
          title: e.color + " encoder + " + p.color + " policy" }, pair ? String(Math.round(D.drives[pair.drive].max)) : "\u00b7");
        if (pair) { b.className = pair.kind; b.addEventListener("click", function () { choose(key, true); }); }
        else { b.disabled = true; b.title += ": not recorded in this build"; }
        td.appendChild(b); tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    grid.appendChild(table);
  }

  function syncControls(key) {
    var p = key.split("|");
    fill(sel.rep, D.reps.map(function (r) { return [r, r]; }), p[0]);
    fill(sel.align, D.aligns, p[1]);
    fill(sel.enc, colorOptions(p[0]), p[2]);
    fill(sel.pol, colorOptions(p[0]), p[3]);
    buildGrid(p[0], p[1]);
    Array.prototype.forEach.call(grid.querySelectorAll("button[data-key]"), function (b) {
      b.classList.toggle("on", b.getAttribute("data-key") === key);
    });
  }

  function nice(x) {  // a round tick step near x: 1, 2 or 5 times a power of ten
    if (!(x > 0)) { return 1; }
    var p = Math.pow(10, Math.floor(Math.log(x) / Math.LN10)), m = x / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }
  function fmt(x) { return (Math.round(x * 10) / 10).toFixed(1); }

  function drawCurve(pair, d) {
    svg.textContent = "";
    var own = pair.own && pair.own !== pair.drive ? D.drives[pair.own] : null;
    var all = d.ret.concat(own ? own.ret : []), lo = Math.min(0, Math.min.apply(null, all) / 10);
    var hi = Math.max(1, Math.max.apply(null, all) / 10), span = hi - lo;
    lo -= 0.05 * span; hi += 0.12 * span;
    var length = Math.max(d.length, own ? own.length : 0, 1);
    function X(step) { return X0 + (X1 - X0) * step / length; }
    function Y(v) { return Y1 - (Y1 - Y0) * (v - lo) / (hi - lo); }
    function path(dr) {
      return dr.ret.map(function (r, i) {
        var s = Math.min(i * dr.stride, dr.length);
        return (i ? "L" : "M") + X(s).toFixed(1) + "," + Y(r / 10).toFixed(1);
      }).join("");
    }
    var v, dy = nice((hi - lo) / 4), dx = nice(length / 4);
    for (v = Math.ceil(lo / dy) * dy; v <= hi; v += dy) {
      svg.appendChild(make("line", { svg: 1, x1: X0, x2: X1, y1: Y(v), y2: Y(v), stroke: v === 0 ? "#aaa" : "#ddd",
        "stroke-width": v === 0 ? 0.8 : 0.5 }));
      svg.appendChild(make("text", { svg: 1, x: X0 - 4, y: Y(v) + 3, "text-anchor": "end" }, String(Math.round(v))));
    }
    for (v = 0; v <= length; v += dx) {
      svg.appendChild(make("text", { svg: 1, x: X(v), y: Y1 + 13, "text-anchor": "middle" }, String(Math.round(v))));
    }
    svg.appendChild(make("line", { svg: 1, x1: X0, x2: X0, y1: Y0, y2: Y1, stroke: "#aaa", "stroke-width": 0.8 }));
    svg.appendChild(make("text", { svg: 1, x: (X0 + X1) / 2, y: Y1 + 25, "text-anchor": "middle" }, "step"));
    svg.appendChild(make("text", { svg: 1, x: 10, y: (Y0 + Y1) / 2, "text-anchor": "middle",
      transform: "rotate(-90 10 " + (Y0 + Y1) / 2 + ")" }, "running return"));
    legend.textContent = "";
    legend.appendChild(make("span", { "class": "rrx-key" }));
    legend.appendChild(document.createTextNode(" this drive"));
    if (own) {
      svg.appendChild(make("path", { svg: 1, d: path(own), fill: "none", stroke: "#999", "stroke-width": 1.2,
        "stroke-dasharray": "4 3" }));
      legend.appendChild(make("span", { "class": "rrx-key rrx-own" }));
      legend.appendChild(document.createTextNode(" the " + own.color + " agent alone (max " + fmt(own.max) + ")"));
    }
    svg.appendChild(make("path", { svg: 1, d: path(d), fill: "none", stroke: "var(--rrx-accent)", "stroke-width": 1.8 }));
    var bx = X(d.best), by = Y(d.max);
    svg.appendChild(make("circle", { svg: 1, cx: bx, cy: by, r: 3.5, fill: "var(--rrx-best)" }));
    var right = d.best > 0.75 * length;
    var t = make("text", { svg: 1, x: bx + (right ? -5 : 5), y: by - 5, "text-anchor": right ? "end" : "start" },
      "max " + fmt(d.max));
    t.style.fill = "var(--rrx-best)";
    svg.appendChild(t);
    var cursor = make("line", { svg: 1, x1: X0, x2: X0, y1: Y0, y2: Y1, stroke: "var(--rrx-best)", "stroke-width": 1.2,
      "data-rrx": "cursor" });
    svg.appendChild(cursor);
    S.X = X;
  }

  function image(d) {
    var entry = images[d.src];
    if (!entry) {
      entry = images[d.src] = { img: new Image(), ready: false, failed: false };
      entry.img.onload = function () { entry.ready = true; if (S.drive === d) { loading.textContent = ""; draw(); } };
      entry.img.onerror = function () {
        entry.failed = true;
        if (S.drive === d) { loading.textContent = "could not load " + d.src; }
      };
      entry.img.src = d.src;
    }
    return entry;
  }

  function draw() {
    var d = S.drive; if (!d) { return; }
    var k = S.k, step = Math.min(k * d.stride, d.length), entry = images[d.src];
    slider.value = String(k);
    canvas.setAttribute("data-frame", d.src + "#" + k);
    if (entry && entry.ready) {
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(entry.img, (k % d.cols) * d.size, Math.floor(k / d.cols) * d.size, d.size, d.size, 0, 0, canvas.width, canvas.height);
    }
    var cursor = svg.querySelector("[data-rrx='cursor']");
    if (cursor && S.X) { var x = S.X(step).toFixed(1); cursor.setAttribute("x1", x); cursor.setAttribute("x2", x); }
    var a = d.act.charAt(k), act = a === "-" ? "end" : D.actions[+a];
    stepInfo.textContent = "step " + step + " of " + d.length + " \u00b7 next action: " + act + " \u00b7 return " + fmt(d.ret[k] / 10);
    if (step >= D.zoom && d.road.charAt(k) === "0") {
      stepInfo.appendChild(make("span", { "class": "rrx-off" }, " \u00b7 off the road"));
    }
  }

  function setPlaying(on) {
    S.playing = on;
    play.textContent = on ? "\u275a\u275a pause" : "\u25b6 play";
    play.setAttribute("aria-pressed", on ? "true" : "false");
    if (on) { S.last = 0; S.acc = 0; requestAnimationFrame(tick); }
  }
  function tick(now) {
    if (!S.playing || !S.drive) { return; }
    var d = S.drive, entry = images[d.src];
    if (S.last && entry && entry.ready) {
      S.acc += (now - S.last) / 1000 * D.fps / d.stride * (+speed.value);
      var adv = Math.floor(S.acc);
      if (adv > 0) {
        S.acc -= adv; S.k = Math.min(d.n - 1, S.k + adv); draw();
        if (S.k >= d.n - 1) { setPlaying(false); return; }
      }
    }
    S.last = now;
    requestAnimationFrame(tick);
  }

  function poster(d) {  // the first frame after CarRacing's zoom-in: step 0 is a black, zoomed-out view
    var k = Math.ceil((D.zoom + 10) / d.stride);
    return Math.min(k, d.n - 1);
  }

  function choose(key, autoplay) {
    var pair = D.pairs[key];
    syncControls(key);
    S.key = key; S.pair = pair;
    if (!pair) {
      S.drive = null; setPlaying(false);
      score.textContent = "This pair was not recorded in this build.";
      verdictBox.className = "rrx-verdict"; verdictBox.textContent = "";
      svg.textContent = ""; stepInfo.textContent = ""; loading.textContent = "";
      ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
      canvas.setAttribute("data-frame", "");
      return;
    }
    var d = D.drives[pair.drive];
    S.drive = d; S.k = poster(d);
    slider.max = String(d.n - 1);
    drawCurve(pair, d);
    var p = key.split("|");
    score.textContent = "";
    score.appendChild(make("b", {}, p[2] + " encoder + " + p[3] + " policy"));
    score.appendChild(document.createTextNode(" (" + p[0] + ", " + D.aligns.filter(function (a) { return a[0] === p[1]; })[0][1] +
      "), on " + d.color + ", held-out track " + d.track + ": maximum return "));
    score.appendChild(make("b", { "data-rrx": "max" }, fmt(d.max)));
    score.appendChild(document.createTextNode(" (step " + d.best + "), final return " + fmt(d.final) + ", " + d.length +
      " steps, lap finished: " + (d.lap ? "yes" : "no") + "."));
    verdictBox.className = "rrx-verdict " + pair.kind;
    verdictBox.textContent = pair.text;
    if (S.visible || autoplay) { var entry = image(d); loading.textContent = entry.ready ? "" : (entry.failed ? "could not load " + d.src : "loading\u2026"); }
    else { loading.textContent = ""; }
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    draw();
    setPlaying(!!autoplay);
  }

  function fromControls(changed) {
    var rep = sel.rep.value, cs = colorsOf(rep).map(function (c) { return c.color; });
    if (changed === "rep") {  // keep the colours where the other representation has them
      var enc = cs.indexOf(sel.enc.value) >= 0 ? sel.enc.value : cs[0];
      var pol = cs.indexOf(sel.pol.value) >= 0 ? sel.pol.value : cs[Math.min(1, cs.length - 1)];
      fill(sel.enc, colorOptions(rep), enc); fill(sel.pol, colorOptions(rep), pol);
    }
    choose(keyOf(), true);
  }
  ["rep", "align", "enc", "pol"].forEach(function (k) {
    sel[k].addEventListener("change", function () { fromControls(k); });
  });
  play.addEventListener("click", function () {
    if (!S.drive) { return; }
    image(S.drive);
    if (!S.playing && S.k >= S.drive.n - 1) { S.k = 0; draw(); }
    setPlaying(!S.playing);
  });
  slider.addEventListener("input", function () { setPlaying(false); S.k = +slider.value; if (S.drive) { image(S.drive); } draw(); });

  choose(D.initial, false);
  function seen() {
    if (S.visible) { return; }
    S.visible = true;
    if (S.drive) { var e = image(S.drive); if (!e.ready) { loading.textContent = "loading\u2026"; } }
  }
  if (typeof IntersectionObserver === "function") {
    var io = new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) { seen(); io.disconnect(); }
    }, { rootMargin: "300px" });
    io.observe(root);
  } else { seen(); }
})();
"""

_BODY = """<div class="rrx" id="{uid}">
<style>{css}</style>
<div class="rrx-controls">
<label>representation<select data-rrx="rep"></select></label>
<label>alignment<select data-rrx="align"></select></label>
<label title="the stitched agent drives on the encoder's colour">encoder<select data-rrx="enc"></select></label>
<label title="the head that chooses the actions">policy<select data-rrx="pol"></select></label>
</div>
<div class="rrx-main">
<div class="rrx-view">
<canvas data-rrx="frame" width="{size}" height="{size}" role="img"
aria-label="the stitched agent's view of the track, frame by frame"></canvas>
<div class="rrx-loading" data-rrx="loading"></div>
<div class="rrx-player">
<button type="button" data-rrx="play" aria-pressed="false">&#9654; play</button>
<input type="range" data-rrx="slider" min="0" max="0" value="0" aria-label="frame">
<select data-rrx="speed" aria-label="speed" style="width:auto">
<option value="1">1x</option><option value="2" selected>2x</option><option value="4">4x</option></select>
</div>
<div class="rrx-step" data-rrx="step"></div>
</div>
<div class="rrx-side">
<svg data-rrx="curve" viewBox="0 0 320 170" role="img" aria-label="running return against the step"></svg>
<div class="rrx-legend" data-rrx="legend"></div>
<div class="rrx-score" data-rrx="score"></div>
<div class="rrx-verdict" data-rrx="verdict"></div>
</div>
</div>
<div class="rrx-grid" data-rrx="grid"></div>
<div class="rrx-note">{note}</div>
<noscript>This explorer needs JavaScript; the table below the chapter's explorer lists the same drives.</noscript>
<script type="application/json">{data}</script>
<script>{js}</script>
</div>"""


def component_html(recordings: Sequence[Recording], base_url: str | None, *, initial: Recording | None = None,
                   element_id: str | None = None) -> str:
    """The static explorer as one HTML fragment: inline CSS and JavaScript, the drives' numbers as
    inline JSON; each drive's sprite sheet is loaded from ``base_url`` + its file name
    (:func:`write_assets`; a URL relative to the page) when the drive is first shown, or, with
    ``base_url=None``, carried inline as a data URL (no files: for a notebook with no site, e.g. on
    Colab; the fragment then weighs what the sheets weigh, a third more). ``initial``: the drive
    shown first (default: :func:`representative`). Works in a static page (no kernel, no CDN), at
    any width."""
    recordings = list(recordings)
    if not recordings:
        raise ValueError("no recordings to show")
    if base_url and not base_url.endswith("/"):
        base_url += "/"
    data = _data(recordings, base_url, initial)
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    uid = element_id or "rrx-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    stride = recordings[0].stride
    track = recordings[0].track_seed
    note = (f"Recorded when this page was built: each pair drove held-out track {track} once (greedy, the "
            f"evaluation protocol's loop); one frame in {stride} is kept. The grid shows each pair's maximum "
            f"return; its colour is the verdict against the encoder's agent alone: drives (at least "
            f"{DRIVES:.0%} of it), part of the track, or fails (below {FAILS:.0%}).")
    parts = {"uid": uid, "css": _CSS.replace("#ID", "#" + uid), "size": str(recordings[0].size),
             "note": html.escape(note), "data": text.replace("<", "\\u003c"),
             "js": _JS.replace('"ID"', json.dumps(uid))}
    return re.sub(r"\{(uid|css|size|note|data|js)\}", lambda m: parts[m.group(1)], _BODY)
