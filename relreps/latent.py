"""Latent space analysis: how alike are two encoders' descriptions of the same states?

The paper's Figures 3-5 compare two encoders on *parallel* frames: one drive (track seeds and
actions, :class:`relreps.anchors.Recipe`) replayed in two colours, so that frame ``i`` shows the
same state of the world in both. Each encoder embeds the frames **in its own colour** (the encoder
trained on green sees the green replay, the one trained on red sees the red replay), and the
``N x N`` matrix of cosine similarities between the two sets of embeddings is drawn:

    S[i, j] = cos(E_a(frame i in colour a), E_b(frame j in colour b))

If the two encoders describe a state in the same way, the diagonal (matched frames) stands out.
For absolute encoders the embedding is the latent vector; for relative encoders it is the vector
of cosine similarities to the encoder's anchors (both agents must use the same anchor states, each
in its own colour, so that dimension ``k`` means "similar to anchor ``k``" for both).

Numbers that summarise a matrix (:func:`metrics`): the mean cosine of matched frames (the diagonal;
the R3L follow-up reports it), of unmatched pairs (the baseline), and how often the matched frame
is the most similar one in its row (retrieval, exact or within a few frames, since frames 1/50 s
apart are nearly identical), and its mean rank.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch

from . import anchors, envs, zoo
from .extractors import embed, encoder_of

__all__ = [
    "LATENT_TRACK_SEED",
    "Comparison",
    "Metrics",
    "ParallelDrive",
    "anchor_drift",
    "catalogue",
    "comparable",
    "compare",
    "embed",
    "encoder_of",
    "incomparable",
    "load_numbers",
    "metrics",
    "pairs",
    "parallel_drive",
    "reembedded",
    "similarity",
]

#: Track seeds of the analysed drives start here: no training run, anchor recording
#: (:data:`relreps.anchors.ANCHOR_TRACK_SEED`) or evaluation (``relreps.evaluation.EVAL_TRACKS``)
#: uses them, so the frames are new to every encoder.
LATENT_TRACK_SEED = 20_000_000


# --------------------------------------------------------------------------------------------
# Parallel frames
# --------------------------------------------------------------------------------------------


@dataclass
class ParallelDrive:
    """One drive, as frames in any colour: frame ``i`` is the same state in every colour.

    ``indices`` select frames of the replay (past the camera's zoom-in at each episode start,
    every ``stride``-th one); :meth:`frames` replays a colour on first use and caches it.
    """

    recipe: anchors.Recipe
    indices: np.ndarray
    _frames: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def colors(self) -> list[str]:
        """The colours replayed so far."""
        return sorted(self._frames)

    def frames(self, color: str | Sequence[int]) -> np.ndarray:
        """``(N, 84, 84, 3)`` uint8 frames of the drive in ``color``, as the agent sees them."""
        key = envs.color_name(color)
        if key not in self._frames:
            self._frames[key] = anchors.replay(self.recipe, color).frames[self.indices]
        return self._frames[key]


def parallel_drive(
    colors: Sequence[str | Sequence[int]] = ("green", "red"),
    *,
    recipe: anchors.Recipe | None = None,
    n_steps: int = 1000,
    stride: int = 4,
    first_track_seed: int = LATENT_TRACK_SEED,
    seed: int = 0,
    burst_every: int = 200,
    burst_length: int = 100,
    processes: int | None = None,
) -> ParallelDrive:
    """Record one drive (or take ``recipe``) and replay it in ``colors``.

    Without ``recipe``, :func:`relreps.anchors.record` drives ``n_steps`` steps with the scripted
    driver from track ``first_track_seed`` on, with bursts of one random action (``burst_every``,
    ``burst_length``; drawn from a generator seeded with ``seed``) so that off-track states appear.
    The frames kept are those past the zoom-in at each episode start (``recipe.pool()``), every
    ``stride``-th one (frames 1/50 s apart are nearly identical; a stride keeps the matrix small
    and makes "which frame is this?" a fair question). Colours are replayed in parallel processes
    (``processes``, default one per core); other colours can be added later with
    :meth:`ParallelDrive.frames`.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    names = [envs.color_name(c) for c in colors]  # bad colours fail before any work
    if recipe is None:
        recipe = anchors.record(n_steps=n_steps, first_track_seed=first_track_seed, seed=seed,
                                burst_every=burst_every, burst_length=burst_length)
    indices = recipe.pool()[::stride]
    if len(indices) < 2:
        raise ValueError(f"the drive leaves {len(indices)} frame(s) past the zoom-in frames; record more steps")
    unique = dict(zip(names, colors))  # one replay per colour, even if named twice
    frames = anchors.replay_anchors(recipe, indices, list(unique.values()), processes=processes)
    return ParallelDrive(recipe=recipe, indices=indices, _frames=frames)


# --------------------------------------------------------------------------------------------
# Embeddings and similarities
# --------------------------------------------------------------------------------------------


def similarity(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, *, eps: float = 1e-12) -> np.ndarray:
    """The cosine-similarity matrix ``S[i, j] = cos(a[i], b[j])`` (float64, ``(len(a), len(b))``).

    Row ``i`` is frame ``i`` of space ``a``. A zero vector has cosine 0 with everything.
    """
    x = np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a, dtype=np.float64)
    y = np.asarray(b.detach().cpu() if isinstance(b, torch.Tensor) else b, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected two (N, D) embedding sets of one size D; got {x.shape} and {y.shape}")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)
    y = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), eps)
    return x @ y.T


@dataclass(frozen=True)
class Metrics:
    """Numbers that summarise a square similarity matrix of matched frames (row i <-> column i).

    Retrieval asks, for each row, whether the matched frame is *strictly* the most similar one
    (ties count as misses, so a constant row never scores).
    """

    n: int  #: frames (rows)
    matched: float  #: mean cosine of matched frames (the diagonal)
    unmatched: float  #: mean cosine of unmatched pairs (off the diagonal): the baseline
    top1: float  #: fraction of rows whose most similar column is the matched frame
    top1_within: float  #: the same, counting columns within ``tolerance`` frames of the match
    tolerance: int  #: frames either side that :attr:`top1_within` accepts
    mean_rank: float  #: mean rank of the matched frame in its row (1: best; (n + 1) / 2: chance)

    @property
    def gap(self) -> float:
        """``matched - unmatched``: how much the diagonal stands out."""
        return self.matched - self.unmatched

    def to_dict(self) -> dict:
        return {**asdict(self), "gap": self.gap}


def metrics(sim: np.ndarray, *, tolerance: int = 2) -> Metrics:
    """Summarise a square similarity matrix whose row ``i`` matches column ``i`` (see :class:`Metrics`).

    The rank of the matched frame counts the columns of its row that are more similar, plus half
    of those equally similar (the mean rank over ties).
    """
    s = np.asarray(sim, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or len(s) < 2:
        raise ValueError(f"expected a square similarity matrix of at least 2 frames; got shape {s.shape}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    n = len(s)
    diag = np.diag(s)
    off = ~np.eye(n, dtype=bool)
    offset = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    outside0 = np.where(off, s, -np.inf).max(axis=1)
    outside_k = np.where(offset > tolerance, s, -np.inf).max(axis=1)  # -inf when no column is outside
    inside_k = np.where(offset <= tolerance, s, -np.inf).max(axis=1)
    greater = (s > diag[:, None]).sum(axis=1)
    ties = (s == diag[:, None]).sum(axis=1) - 1  # minus the matched frame itself
    return Metrics(
        n=n,
        matched=float(diag.mean()),
        unmatched=float(s[off].mean()),
        top1=float((diag > outside0).mean()),
        top1_within=float((inside_k > outside_k).mean()),
        tolerance=int(tolerance),
        mean_rank=float((1 + greater + ties / 2).mean()),
    )


def linear_cka(x, y) -> float:
    """Linear centred kernel alignment (Kornblith et al., 2019) of two representations of the same
    ``n`` states, ``x`` ``(n, d_x)`` and ``y`` ``(n, d_y)``: ``<K, L> / (|K| |L|)`` with ``K``, ``L``
    the centred Gram matrices of the rows. 1 when one is a rotation and scaling of the other (plus a
    shift); near 0 for unrelated ones only when there are many more states than dimensions (with
    about as many, it is biased upwards: compare values measured on the same states). Unlike the matched-frame cosine, it does not need the two
    spaces to share coordinates, so it measures how alike two spaces are *up to* a rotation: what a
    fitted map could recover, not what a plain stitch gets.

    Raises:
        ValueError: different numbers of rows, fewer than 2 rows, or a constant representation.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) < 2:
        raise ValueError(f"expected (n, d) representations of the same n >= 2 states; got {x.shape} and {y.shape}")
    x, y = x - x.mean(0), y - y.mean(0)
    kx, ky = x @ x.T, y @ y.T
    nk, nl = np.linalg.norm(kx), np.linalg.norm(ky)
    if not (nk > 0 and nl > 0):
        raise ValueError("a representation is the same for every state: its CKA is undefined")
    return float((kx * ky).sum() / (nk * nl))


# --------------------------------------------------------------------------------------------
# Which agents to compare
# --------------------------------------------------------------------------------------------

#: The fields of :func:`catalogue` rows that :func:`pairs` can match on.
FIELDS = ("algo", "representation", "color", "seed")


def catalogue(names: Iterable[str] | None = None) -> list[dict]:
    """The zoo's agents as rows for :func:`pairs` (:func:`relreps.zoo.catalog`: ``name``, ``algo``,
    ``representation``, ``color``, ``seed``, ``steps``; the paper's colour order, then by name)."""
    from . import zoo

    return zoo.catalog(names)


def pairs(rows: Sequence[dict], *, same: Sequence[str], differ: Sequence[str]) -> list[tuple[str, str]]:
    """Unordered pairs of agents (names, in the order of ``rows``) that agree on every field in
    ``same`` and differ on every field in ``differ``.

    The paper's figures: 3 ``same=("algo", "representation", "seed"), differ=("color",)``;
    4 ``same=("algo", "representation"), differ=("color", "seed")``; 5 ``same=("representation",
    "color"), differ=("algo",)``.
    """
    unknown = set(same) | set(differ)
    unknown -= set(FIELDS)
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}: expected some of {FIELDS}")
    out = []
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            if all(a[k] == b[k] for k in same) and all(a[k] != b[k] for k in differ):
                out.append((a["name"], b["name"]))
    return out


# --------------------------------------------------------------------------------------------
# Comparing two agents
# --------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Encoder ``a`` on the drive in ``colors[0]`` vs encoder ``b`` on the drive in ``colors[1]``."""

    names: tuple[str, str]
    colors: tuple[str, str]
    representation: str
    sim: np.ndarray  #: ``(N, N)`` cosine similarities; row i: frame i as encoder a sees it
    metrics: Metrics
    cka: float | None = None  #: :func:`linear_cka` of the two outputs on the drive (None: one is constant)

    @property
    def label(self) -> str:
        return f"{self.names[0]} ({self.colors[0]}) vs {self.names[1]} ({self.colors[1]})"

    def numbers(self) -> dict:
        """The :class:`Metrics` of the matrix and the :attr:`cka`, one flat dict (a table row)."""
        return {**self.metrics.to_dict(), "cka": self.cka}

    def to_dict(self) -> dict:
        """Everything but the matrix (JSON-ready)."""
        return {"names": list(self.names), "colors": list(self.colors), "representation": self.representation,
                "metrics": self.metrics.to_dict(), "cka": self.cka}


def _card(model) -> zoo.Card:
    card = getattr(model, "card", None)
    return cast(zoo.Card, card) if isinstance(card, dict) else zoo.Card()


def _check_comparable(a, b) -> str:
    """The shared representation of two models, or a ValueError saying why they cannot be compared."""
    ca, cb = _card(a), _card(b)
    ea, eb = encoder_of(a), encoder_of(b)
    rep_a = ca.get("representation") or ("relative" if hasattr(ea, "anchor_embeddings") else "absolute")
    rep_b = cb.get("representation") or ("relative" if hasattr(eb, "anchor_embeddings") else "absolute")
    if rep_a != rep_b:
        raise ValueError(f"cannot compare a {rep_a} encoder with a {rep_b} one: their outputs are different "
                         "kinds of vectors")
    if ea.features_dim != eb.features_dim:
        raise ValueError(f"the encoders output {ea.features_dim} and {eb.features_dim} features: "
                         "a cosine needs one size")
    if rep_a == "relative" and ca and cb:
        # dimension k must be "similarity to anchor state k" for both: the rule stitching uses
        from .zoo import anchor_key

        ka, kb = anchor_key(ca), anchor_key(cb)
        if None not in (ka, kb) and ka != kb:
            raise ValueError(f"the relative encoders use different anchors ({ka} vs {kb}: set, n_anchors, "
                             "anchor_seed): their similarity vectors do not line up")
    return rep_a


def incomparable(a, b) -> str | None:
    """Why the encoders of ``a`` and ``b`` cannot be compared (see :func:`compare`), or ``None``."""
    try:
        _check_comparable(a, b)
    except ValueError as e:
        return str(e)
    return None


def comparable(found: Iterable[tuple[str, str]], agents) -> tuple[list[tuple[str, str]], list[str]]:
    """Split name pairs (e.g. from :func:`pairs`) into those whose agents (``agents[name]``) can be
    compared and, for the others, a line each saying why not."""
    keep, skipped = [], []
    for a, b in found:
        why = incomparable(agents[a], agents[b])
        if why:
            skipped.append(f"{a} vs {b}: {why}")
        else:
            keep.append((a, b))
    return keep, skipped


def compare(
    a,
    b,
    drive: ParallelDrive,
    *,
    colors: tuple[str, str] | None = None,
    tolerance: int = 2,
    names: tuple[str, str] | None = None,
) -> Comparison:
    """Compare the encoders of ``a`` and ``b`` on the same states of ``drive``.

    By default each encoder sees the drive **in its own agent's colour** (``card["color"]``): the
    paper's Figures 3 and 4 (the green encoder on green frames, the red encoder on the same states
    in red). Pass ``colors=("green", "green")`` to show both the same frames (Figure 5: two
    algorithms on one colour). ``a`` and ``b`` are agents, SB3 models, policies or extractors
    (without a card, pass ``colors``, and ``names`` for the labels).

    Raises:
        ValueError: one is relative and the other absolute, their output sizes differ, or two
            relative agents use different anchors.
    """
    rep = _check_comparable(a, b)
    if colors is None:
        try:
            colors = (_card(a)["color"], _card(b)["color"])
        except KeyError:
            raise ValueError("pass colors=(colour of a's frames, colour of b's frames) for models "
                             "without a card") from None
    colors = (envs.color_name(colors[0]), envs.color_name(colors[1]))
    names = names or (getattr(a, "name", "a"), getattr(b, "name", "b"))
    xa, xb = embed(a, drive.frames(colors[0])), embed(b, drive.frames(colors[1]))
    sim = similarity(xa, xb)
    try:
        cka = linear_cka(xa, xb)
    except ValueError:  # an encoder whose output is the same for every frame (e.g. collapsed)
        cka = None
    return Comparison(names=(names[0], names[1]), colors=colors, representation=rep, sim=sim,
                      metrics=metrics(sim, tolerance=tolerance), cka=cka)


def load_numbers(path: str | os.PathLike) -> dict:
    """The numbers of a comparison that ``relreps latent`` wrote to ``path`` (JSON), as
    :meth:`Comparison.numbers` gives them: matched and unmatched cosine, gap, retrieval, mean rank,
    CKA (``None`` where the file has none). A chapter shows saved measurements with it.

    Raises:
        ValueError: the file is not such a comparison (named in the message).
    """
    import json

    try:
        data = json.loads(Path(path).read_text())
        numbers = {k: float(data["metrics"][k]) for k in Metrics.__dataclass_fields__ if k in data["metrics"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a comparison written by `relreps latent` ({type(e).__name__}: {e})") from None
    if not {"matched", "unmatched", "top1"} <= set(numbers):
        raise ValueError(f"{path} is not a comparison written by `relreps latent` (its metrics lack "
                         f"{sorted({'matched', 'unmatched', 'top1'} - set(numbers))})")
    cka = data.get("cka")
    return {**numbers, "gap": numbers["matched"] - numbers["unmatched"], "cka": None if cka is None else float(cka)}


# --------------------------------------------------------------------------------------------
# The anchors' moving average: how far it lags the encoder
# --------------------------------------------------------------------------------------------


def _relative_encoder(model):
    from .extractors import RelativeEncoder

    enc = encoder_of(model)
    if not isinstance(enc, RelativeEncoder):
        raise ValueError(f"{getattr(model, 'name', 'the model')} has an absolute encoder: it has no anchors")
    return enc


def anchor_drift(model) -> dict:
    """How far a relative encoder's saved anchor embeddings (the moving average that training kept,
    and that the policy learnt with) are from the anchors as its final weights embed them.

    Returns the mean and minimum cosine over the anchors, and the mean ratio of norms. When the
    average follows the encoder closely both are near 1; an average that still holds the untrained
    encoder's embeddings (one step of ``alpha=0.999`` per PPO update: 38% after 2M steps) is
    specific to each agent's random start, which breaks stitching (the book's lab notes).
    """
    enc = _relative_encoder(model)
    saved = enc.anchor_embeddings.detach().float()
    now = enc.embed_anchors().float()
    cos = torch.nn.functional.cosine_similarity(saved, now, dim=1)
    ratio = saved.norm(dim=1) / now.norm(dim=1).clamp_min(1e-12)
    return {"mean_cosine": float(cos.mean()), "min_cosine": float(cos.min()), "norm_ratio": float(ratio.mean())}


def reembedded(model):
    """A copy of ``model`` whose anchor embeddings are re-embedded with its own weights (the moving
    average replaced by what the final encoder makes of the anchor frames), as an agent file saved
    without them loads (``zoo.save(..., anchor_embeddings="reembedded")``): whether two encoders'
    representations agree without the average's lag. Its policy learnt with the saved average, so
    evaluate the copy before trusting it to drive (the book's lab notes)."""
    import copy

    clone = copy.deepcopy(model)
    _relative_encoder(clone).reembed_anchors()
    return clone
