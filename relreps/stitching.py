"""Zero-shot stitching: the encoder of one agent + the head of another -> a new agent.

``stitch(A, B)`` returns an agent that encodes observations with A's encoder (a relative encoder
keeps its own anchors, in its own colour) and acts with B's head, with no training. Every place
Stable-Baselines3 keeps an extractor is swapped: PPO's ``features_extractor``,
``pi_features_extractor`` and ``vf_features_extractor`` (``predict`` uses the second: swapping
only the first would silently change nothing), and the DQN family's online and target networks.
The stitched agent is evaluated on the encoder's colour.

``stitch(A, B, align="anchor-mean")`` (not in the paper) also moves A's relative representation by
the difference of the two agents' **mean relative representation of their own anchors**:
``r_A(x) - mean_k r_A(anchor_k) + mean_k r_B(anchor_k)``, each agent's anchors in its own colour.
If the two relative spaces agreed exactly, as the method assumes, the two means would be equal and
nothing would move; where they differ by an offset per anchor (one encoder finds every state a
little more like anchor k than the other does), the offset is removed. It uses nothing but the
anchors, which each agent already carries, so the stitch stays zero-shot: no training, no frames
of the other colour, no episodes.

``stitch(A, B, align="affine")`` (not in the paper either; the *latent translation* of the authors'
follow-up and of Maiorca et al., 2023) feeds B's head with ``E_A(x) W + b``, where ``W`` and ``b``
are the least-squares affine map (with a small ridge penalty, :data:`RIDGE`) from A's encoder
outputs to B's on **parallel frames**: the frames
of one anchor set, each agent's in its own colour (the same states, told apart only by colour).
The relative method needs such parallel anchors anyway; here all the set's frames (3136 for the
shipped sets) fit the map, not only the encoder's anchors. It works for absolute agents too, which
carry no anchors: the fit reads the default set. Still zero-shot: no training, no episodes, no
reward; what it costs is two embeddings of the set's frames and one linear solve.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, TypedDict, cast

import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from . import align as align_maps
from . import envs
from .align import RIDGE
from .evaluation import policy_of
from .extractors import REPRESENTATIONS, embed, encoder_of, frames_to_tensor
from .zoo import Agent, Card

if TYPE_CHECKING:
    from . import latent

__all__ = [
    "ALIGNMENTS",
    "FACTORS",
    "REPRESENTATIONS",
    "RIDGE",
    "SEED_GROUPS",
    "Agreement",
    "AlignedEncoder",
    "Table",
    "algorithm_tables",
    "anchor_mean",
    "check_stitchable",
    "copyable",
    "factor_groups",
    "factor_summary",
    "fit_affine",
    "greedy_actions",
    "head_actions",
    "scores",
    "seed_summary",
    "seed_tables",
    "set_outputs",
    "stitch",
    "stitch_agreement",
    "summary",
    "swap_extractors",
    "table",
    "translation",
]


#: ``stitch(..., align=...)`` choices: ``None`` (the paper's stitch), ``"anchor-mean"`` or
#: ``"affine"`` (see above).
ALIGNMENTS = (None, "anchor-mean", "affine")


class Table(TypedDict, total=False):
    """An encoder-by-policy table (:func:`table`; ``relreps table`` saves it as JSON): plain data."""

    encoders: dict[str, str]  #: colour -> the encoder agent's name
    policies: dict[str, str]  #: colour -> the policy agent's name
    sha256: dict[str, dict[str, str | None]]  #: "encoders"/"policies" -> colour -> the weights' sha256
    tracks: list[int]  #: the held-out track seeds of every cell
    max_steps: int  #: the episodes' length
    align: str  #: the stitches' alignment (absent: the paper's stitch)
    ridge: float  #: the affine fit's ridge (align="affine")
    actions: str  #: how the agents picked their actions (absent: greedy, the protocol; or "sampled")
    cells: dict[str, dict[str, dict[str, Any]]]  #: encoder colour -> policy colour -> evaluation summary
    algo: str  #: as saved by ``relreps table``: the agents' algorithm
    representation: str  #: as saved by ``relreps table``: the agents' representation
    score: str  #: as saved by ``relreps table``: what a cell's numbers are


class Agreement(TypedDict, total=False):
    """What :func:`stitch_agreement` measures for a pair of agents: plain data."""

    frames: int  #: parallel frames judged
    align: str  #: the stitches' alignment (absent: the paper's stitch)
    agents_agree: float  #: how often the two agents pick the same action on the same state
    own_actions: dict[str, dict[str, float]]  #: agent -> its action shares
    stitched: dict[str, dict[str, Any]]  #: stitch -> its agreement, action shares and recall


def anchor_mean(agent: Agent) -> torch.Tensor:
    """The mean, over its own anchor frames (in its own colour), of what a relative agent's encoder
    outputs: ``mean_k r(anchor_k)``, a ``(n_anchors,)`` float32 tensor on the encoder's device."""
    enc = inner = encoder_of(agent.policy)
    while isinstance(inner, AlignedEncoder):  # an aligned stitch: its anchors are its encoder's
        inner = inner.encoder
    if not hasattr(inner, "anchor_frames"):
        raise ValueError(f"{agent.name} has an absolute encoder: it has no anchors to align with")
    frames = cast(torch.Tensor, inner.anchor_frames)
    out = torch.zeros(enc.features_dim, device=frames.device)
    with torch.no_grad():
        for i in range(0, len(frames), 256):
            chunk = frames_to_tensor(frames[i : i + 256], frames.device)
            out += enc(chunk).float().sum(0)
    return out / len(frames)


def _fit_set(encoder_agent: Agent, policy_agent: Agent) -> str:
    """The anchor set whose frames fit an affine alignment: the encoder's own set (a relative agent's
    card names it), else the policy's, else :data:`relreps.anchors.DEFAULT_SET`. A set that is not
    shipped is used from the folder its card records, when that folder still holds it (a run's own
    copy holds one colour, not the parallel frames of both); otherwise the next choice is taken."""
    from pathlib import Path

    from .anchors import DEFAULT_SET, available

    for agent in (encoder_agent, policy_agent):
        info = agent.card.get("anchors")
        if not isinstance(info, dict):
            continue
        if info.get("set") in available():
            return info["set"]
        path = info.get("path")
        if isinstance(path, str) and (Path(path) / "anchors.json").is_file():
            return path
    return DEFAULT_SET


def fit_affine(x, y, *, ridge: float = RIDGE) -> tuple[torch.Tensor, torch.Tensor]:
    """``align.fit(x, y, "affine", ridge=ridge)`` (:func:`relreps.align.fit`) as float32 tensors
    ``(W, b)``: the map ``align="affine"`` feeds a policy head with, ``E_A(x) W + b``.

    Raises:
        ValueError: as :func:`relreps.align.fit`.
    """
    matrix, shift = align_maps.fit(x, y, "affine", ridge=ridge).tensors()
    assert matrix is not None
    return matrix, shift


def set_outputs(agent: Agent, anchor_set: str):
    """What ``agent``'s encoder outputs for the frames of ``anchor_set`` in the agent's own colour:
    ``(n_frames, features)`` float32, one side of :func:`translation`'s fit."""
    from . import anchors

    return embed(agent, anchors.load(anchor_set).frames(agent.color))


def translation(encoder_agent: Agent, policy_agent: Agent, *, anchor_set: str | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ridge-regularised least-squares affine map ``(W, b)`` (:func:`fit_affine`) from ``encoder_agent``'s encoder
    outputs to ``policy_agent``'s on parallel frames (``stitch(..., align="affine")``, module
    docstring): ``E_A(x) W + b`` is what B's head is fed.

    ``anchor_set``: the set whose frames fit it, each agent's in its own colour (default: the
    encoder's own set, else the policy's, else :data:`relreps.anchors.DEFAULT_SET`). Returns float32
    ``(d_A, d_B)`` and ``(d_B,)`` tensors.
    """
    name = anchor_set or _fit_set(encoder_agent, policy_agent)
    try:
        return fit_affine(set_outputs(encoder_agent, name), set_outputs(policy_agent, name))
    except ValueError as e:
        raise ValueError(f"anchor set {name!r}, {encoder_agent.name} -> {policy_agent.name}: {e}") from None


class AlignedEncoder(BaseFeaturesExtractor):
    """An encoder whose output is moved by a constant ``shift`` (``stitch(..., align="anchor-mean")``)
    or first multiplied by a ``matrix`` (``align="affine"``): ``E(x) @ matrix + shift``.

    The wrapped encoder is unchanged (its anchors, their moving average and its weights); the shift
    and the matrix are buffers, computed once when the stitch is made.
    """

    def __init__(self, encoder: BaseFeaturesExtractor, shift: torch.Tensor, matrix: torch.Tensor | None = None):
        features = encoder.features_dim if matrix is None else int(matrix.shape[-1])
        super().__init__(encoder._observation_space, features)
        if matrix is not None and (matrix.ndim != 2 or matrix.shape[0] != encoder.features_dim):
            raise ValueError(f"the matrix has shape {tuple(matrix.shape)}; the encoder outputs "
                             f"{encoder.features_dim} features (expected ({encoder.features_dim}, n))")
        if tuple(shift.shape) != (features,):
            raise ValueError(f"the shift has shape {tuple(shift.shape)}; expected ({features},)")
        self.encoder = encoder
        self.register_buffer("shift", shift.detach().clone().float())
        self.register_buffer("matrix", None if matrix is None else matrix.detach().clone().float())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        z = self.encoder(obs)
        return (z if self.matrix is None else z @ self.matrix) + self.shift


def swap_extractors(policy, encoder, *, only=None) -> int:
    """Put ``encoder`` in every place ``policy`` keeps a features extractor (or only where it keeps
    the extractor ``only``); returns how many places were swapped."""
    swapped = 0
    for module in list(policy.modules()):
        # _modules, not named_children(): the latter lists a shared module under one name only,
        # and PPO shares one extractor under three names
        for name, child in list(module._modules.items()):
            if (child is only) if only is not None else isinstance(child, BaseFeaturesExtractor):
                setattr(module, name, encoder)
                swapped += 1
    return swapped


def _head_input(policy) -> int:
    """The number of features the policy's head takes (its LayerNorm's size)."""
    import torch

    for m in policy.modules():
        if isinstance(m, torch.nn.LayerNorm):
            return int(m.normalized_shape[0])
    raise ValueError("the policy has no relreps head (LayerNorm first)")


def check_stitchable(encoder_agent: Agent, policy_agent: Agent, mode: str | None = None, *,
                     align: str | None = None) -> None:
    """Refuse, with a ValueError saying why (see :func:`stitch`), a stitch that :func:`stitch` would
    refuse, without building it: :func:`table`, :func:`seed_tables` and :func:`algorithm_tables` check every pair before
    driving any episode."""
    if align not in ALIGNMENTS:
        raise ValueError(f"unknown align {align!r}: expected one of {ALIGNMENTS}")
    enc_rep, pol_rep = encoder_agent.representation, policy_agent.representation
    if mode is not None and mode not in REPRESENTATIONS:
        raise ValueError(f"unknown mode {mode!r}: expected one of {REPRESENTATIONS}")
    if enc_rep != pol_rep:
        def a(rep: str) -> str:
            return f"an {rep}" if rep[0] in "aeiou" else f"a {rep}"

        raise ValueError(f"cannot join {a(enc_rep)} encoder ({encoder_agent.name}) to {a(pol_rep)} head "
                         f"({policy_agent.name}): both must be relative, or both absolute")
    if mode is not None and mode != enc_rep:
        raise ValueError(f"mode {mode!r} asked for, but both agents are {enc_rep}")
    if enc_rep == "relative" and align != "affine":
        from .zoo import anchor_key

        key_e, key_p = anchor_key(encoder_agent.card), anchor_key(policy_agent.card)
        if key_e is not None and key_p is not None and key_e != key_p and key_e[1] == key_p[1]:  # sizes: refused below
            def said(agent):
                kw = agent.card.get("encoder_kwargs", {})
                return (f"{agent.name}: set {agent.card.get('anchors', {}).get('set', kw.get('anchors'))!r}, "
                        f"{(key_e if agent is encoder_agent else key_p)[1]} anchors, anchor_seed {kw.get('anchor_seed', 0)}")

            raise ValueError(f"cannot stitch relative agents with different anchors ({said(encoder_agent)}; "
                             f"{said(policy_agent)}): their relative coordinates are similarities to different "
                             f"states, so nothing lines up{' (anchor-mean moves them, it does not match them)' if align else ''}; "
                             "align='affine' (--align affine) fits a map between the two on parallel frames")
    features, head = encoder_of(encoder_agent.policy).features_dim, _head_input(policy_agent.policy)
    if align != "affine" and features != head:  # an affine map bridges sizes
        raise ValueError(f"{encoder_agent.name}'s encoder outputs {features} features but "
                         f"{policy_agent.name}'s head takes {head}")
    if align == "anchor-mean" and enc_rep != "relative":
        raise ValueError(f"align='anchor-mean' needs relative agents ({encoder_agent.name} and "
                         f"{policy_agent.name} are absolute): an absolute encoder has no anchors")


def stitch(encoder_agent: Agent, policy_agent: Agent, mode: str | None = None, *,
           align: str | None = None, affine_map: tuple[torch.Tensor, torch.Tensor] | None = None) -> Agent:
    """Join ``encoder_agent``'s encoder to ``policy_agent``'s head.

    Args:
        mode: ``"relative"`` or ``"absolute"``: the representation both agents must use (default:
            whatever they share).
        align: ``None`` (the paper's stitch); ``"anchor-mean"``: move the encoder's relative
            representation by ``anchor_mean(policy_agent) - anchor_mean(encoder_agent)`` (relative
            agents only); ``"affine"``: map the encoder's output with :func:`translation`, fitted
            on parallel anchor frames (relative or absolute agents). Module docstring; the card's
            ``stitched`` entry records it (and, for ``"affine"``, the set that fitted the map).
        affine_map: with ``align="affine"``, the ``(W, b)`` that :func:`translation` would fit on
            the set the card names (``fit_frames``), already computed (:func:`table` fits each pair
            from one embedding per agent).

    Raises:
        ValueError: the agents use different representations (a relative encoder cannot feed an
            absolute head, nor the reverse), ``mode`` names another one, the encoder's output
            size differs from what the head takes, ``align`` is unknown, or ``"anchor-mean"`` is
            asked of absolute agents.
    """
    if affine_map is not None and align != "affine":
        raise ValueError(f"an affine_map is given but align is {align!r}: pass align='affine'")
    check_stitchable(encoder_agent, policy_agent, mode, align=align)
    enc_rep = encoder_agent.representation
    encoder = copy.deepcopy(encoder_of(encoder_agent.policy))
    policy = copy.deepcopy(policy_agent.policy)
    if align == "anchor-mean":
        shift = anchor_mean(policy_agent).cpu() - anchor_mean(encoder_agent).cpu()
        encoder = AlignedEncoder(encoder, shift).to(next(encoder.buffers()).device)
    elif align == "affine":
        fit_set = _fit_set(encoder_agent, policy_agent)
        matrix, shift = affine_map or translation(encoder_agent, policy_agent, anchor_set=fit_set)
        encoder = AlignedEncoder(encoder, shift, matrix).to(next(encoder.parameters()).device)
        if encoder.features_dim != _head_input(policy):
            raise ValueError(f"the affine map outputs {encoder.features_dim} features but {policy_agent.name}'s "
                             f"head takes {_head_input(policy)}")
    if swap_extractors(policy, encoder) == 0:
        raise ValueError(f"{policy_agent.name}'s policy keeps no features extractor to swap")
    policy.set_training_mode(False)
    card: Card = {
        **policy_agent.card,
        "color": encoder_agent.color,
        "stitched": {"encoder": encoder_agent.name, "policy": policy_agent.name, "mode": enc_rep,
                     **({"align": align} if align else {}),
                     **({"fit_frames": fit_set} if align == "affine" else {})},
        "encoder_kwargs": encoder_agent.card["encoder_kwargs"],
    }
    if "anchors" in encoder_agent.card:
        card["anchors"] = encoder_agent.card["anchors"]
    suffix = f"[{align}]" if align else ""
    return Agent(name=f"{encoder_agent.name}+{policy_agent.name}{suffix}", policy=policy, card=card)


def _weights_id(agent: Agent) -> str | None:
    """The sha256 of an agent's weights file, as its card records it (``None`` when it has none)."""
    return agent.card.get("sha256")


def copyable(known) -> bool:
    """Whether ``known`` (e.g. read from a file) has what :func:`table` copies a cell by: a table's
    cells, and its agents' weight checksums (``sha256``, which tables record since they copy cells)."""
    sha = known.get("sha256") if isinstance(known, dict) else None
    return (isinstance(sha, dict) and isinstance(sha.get("encoders"), dict) and isinstance(sha.get("policies"), dict)
            and isinstance(known.get("cells"), dict) and all(isinstance(r, dict) for r in known["cells"].values()))


def _reusable(known: Table | None, *, track_seeds, max_steps, align, actions: str = "greedy") -> bool:
    """Whether ``known`` (an earlier :func:`table`) was measured the same way: same tracks, same
    episode length, same alignment (for ``"affine"``, the same ridge), same action rule, and with
    the weights' checksums to match its cells by (:func:`copyable`)."""
    if known is None or not copyable(known):
        return False
    return (known.get("tracks") == [int(s) for s in track_seeds] and known.get("max_steps") == max_steps
            and known.get("align") == align and known.get("ridge") == (RIDGE if align == "affine" else None)
            and known.get("actions", "greedy") == actions)


def table(encoders: dict, policies: dict, *, track_seeds, processes: int | None = None,
          max_steps: int | None = None, align: str | None = None, known: Table | list[Table] | None = None,
          actions: str = "greedy") -> Table:
    """The encoder-by-policy table: ``cells[enc_colour][pol_colour]`` = the evaluation summary of
    ``stitch(encoders[enc_colour], policies[pol_colour], align=align)`` on the encoder's colour
    (an agent with itself is not stitched: its anchor-mean shift would be zero, its affine map close
    to the identity). With ``align="affine"`` the table also records the fit's ``ridge``.
    ``actions="sampled"`` (:data:`relreps.evaluation.ACTION_RULES`) drives every cell with sampled
    actions instead of greedy ones, and the table records it.

    ``known``: an earlier table measured the same way (same tracks, ``max_steps``, ``align`` and
    ``actions``);
    a cell whose encoder and policy have the same weights there (by their cards' sha256, which the
    table records) is copied instead of driven again, e.g. to swap one colour's agent for another
    seed and drive only the cells it enters; a list of such tables is searched in order. Evaluation
    is deterministic, so a copied cell is the cell that driving it again would give on the same machine.

    Raises:
        ValueError: ``align`` or ``actions`` is unknown, a pair cannot be stitched
            (:func:`check_stitchable`), or ``actions="sampled"`` meets a policy without action
            probabilities; checked for every pair before any episode is driven.
    """
    if align not in ALIGNMENTS:
        raise ValueError(f"unknown align {align!r}: expected one of {ALIGNMENTS}")
    from .evaluation import check_actions, evaluate

    check_actions(actions)
    for pol in policies.values():
        check_actions(actions, pol)

    kwargs = {} if max_steps is None else {"max_steps": max_steps}
    steps = max_steps or envs.MAX_EPISODE_STEPS
    knowns = [known] if isinstance(known, dict) else list(known or [])
    knowns = [k for k in knowns if _reusable(k, track_seeds=track_seeds, max_steps=steps, align=align,
                                             actions=actions)]

    def copied(ec, pc, ids):
        """The cell of an earlier table with the same encoder and policy weights, or None."""
        if None in ids:
            return None
        for k in knowns:
            if (ec in k["cells"] and pc in k["cells"][ec]
                    and (k["sha256"]["encoders"].get(ec), k["sha256"]["policies"].get(pc)) == ids):
                return k["cells"][ec][pc]
        return None
    outputs: dict = {}  # align="affine": (agent, anchor set) -> its outputs on the set, embedded once

    def fitted(enc, pol):
        if align != "affine":
            return None
        name = _fit_set(enc, pol)
        for agent in (enc, pol):
            if (id(agent), name) not in outputs:
                outputs[id(agent), name] = set_outputs(agent, name)
        return fit_affine(outputs[id(enc), name], outputs[id(pol), name])

    for enc in encoders.values():  # every stitch refused before any episode is driven
        for pol in policies.values():
            if enc is not pol:
                check_stitchable(enc, pol, align=align)
    cells: dict = {}
    for ec, enc in encoders.items():
        cells[ec] = {}
        for pc, pol in policies.items():
            cell = copied(ec, pc, (_weights_id(enc), _weights_id(pol)))
            if cell is not None:
                cells[ec][pc] = cell
                continue
            agent = enc if enc is pol else stitch(enc, pol, align=align, affine_map=fitted(enc, pol))
            result = evaluate(agent, color=enc.color, track_seeds=track_seeds, processes=processes,
                              actions=actions, **kwargs)
            cells[ec][pc] = result.summary()
    return {"encoders": {c: a.name for c, a in encoders.items()},
            "policies": {c: a.name for c, a in policies.items()},
            "sha256": {"encoders": {c: _weights_id(a) for c, a in encoders.items()},
                       "policies": {c: _weights_id(a) for c, a in policies.items()}},
            "tracks": [int(s) for s in track_seeds], "max_steps": steps,
            **({"align": align} if align else {}), **({"ridge": RIDGE} if align == "affine" else {}),
            **({"actions": actions} if actions != "greedy" else {}), "cells": cells}


def scores(t: Table) -> dict:
    """A :func:`table`'s cells as ``{encoder colour: {policy colour: (mean, std)}}`` of the episode
    maximum return, the form :func:`relreps.plots.stitching_heatmaps` takes."""
    return {e: {p: (c["mean_max_return"], c["std_max_return"]) for p, c in row.items()}
            for e, row in t["cells"].items()}


def summary(t: Table, colors=None) -> dict:
    """A :func:`table`'s summary: :func:`relreps.paper.summary` of its means (diagonal mean,
    off-diagonal mean, worst and best stitched cell) plus ``ratio``, off-diagonal over diagonal;
    with ``colors``, of the sub-table of those encoder and policy colours only."""
    from .paper import summary as means_summary

    keep = set(t["cells"]) if colors is None else set(colors)
    out = means_summary({e: {p: c["mean_max_return"] for p, c in row.items() if p in keep}
                         for e, row in t["cells"].items() if e in keep})
    return {**out, "ratio": out["off_diagonal_mean"] / out["diagonal_mean"]}


def _pair_key(encoder_value, policy_value) -> str:
    """The key of an (encoder, policy) table in :func:`seed_tables` and :func:`algorithm_tables`:
    ``"1-2"`` is the seed-1 encoders with the seed-2 policies, ``"ppo-ddqn"`` the PPO encoders with
    the Double DQN heads."""
    return f"{encoder_value}-{policy_value}"


#: What sets two groups of agents apart in :func:`seed_tables` and :func:`algorithm_tables`: the
#: factor -> (the card field that names it, its name in the summary's groups, how a value is told).
FACTORS = {"seed": ("seed", "seed", lambda v: f"seed {v}"),
           "algo": ("algo", "algorithm", lambda v: str(v))}


def _factor_tables(agents: dict, factor: str, *, track_seeds, processes: int | None, max_steps: int | None,
                   align: str | None, known: Table | list[Table] | None, actions: str = "greedy") -> dict:
    """:func:`seed_tables` and :func:`algorithm_tables`: one :func:`table` per ordered pair of the
    factor's values, checked first, and their :func:`factor_summary`."""
    from .evaluation import check_actions

    field, word, _ = FACTORS[factor]
    check_actions(actions)
    if not agents:
        raise ValueError(f"no {word}s: expected {{{word}: {{colour: agent}}}} with at least one {word}")
    values = list(agents)
    for v in values:
        if factor == "algo" and (not isinstance(v, str) or "-" in v):
            raise ValueError(f"algorithm {v!r}: expected an algorithm's name without '-' (e.g. 'ppo', 'ddqn')")
        if factor == "seed" and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"seed {v!r}: expected a training seed, an integer >= 1")
    colors = list(agents[values[0]])
    for v in values:
        if list(agents[v]) != colors:
            raise ValueError(f"{word} {v} has colours {list(agents[v])}, {word} {values[0]} has {colors}: "
                             f"every {word} needs the same colours")
        for c, agent in agents[v].items():
            card_value, card_color = agent.card.get(field), agent.card.get("color")
            if card_value is not None and str(card_value) != str(v):
                raise ValueError(f"{agent.name} was trained with {word} {card_value}, not {v}")
            if card_color is not None and card_color != c:
                raise ValueError(f"{agent.name} is a {card_color} agent, not {c}")
    for s in values:  # every stitch of every table refused before any episode is driven
        for t in values:
            for enc in agents[s].values():
                for pol in agents[t].values():
                    if enc is not pol:
                        check_stitchable(enc, pol, align=align)
    for v in values:
        for pol in agents[v].values():
            check_actions(actions, pol)
    tables = {}
    for s in values:
        for t in values:
            tables[_pair_key(s, t)] = table(agents[s], agents[t], track_seeds=track_seeds, processes=processes,
                                            max_steps=max_steps, align=align, known=known, actions=actions)
    listed = [int(v) for v in values] if factor == "seed" else values
    return {f"{field}s": listed, "colors": colors, "tables": tables, "summary": factor_summary(tables, factor)}


def seed_tables(agents: dict, *, track_seeds, processes: int | None = None, max_steps: int | None = None,
                align: str | None = None, known: Table | list[Table] | None = None,
                actions: str = "greedy") -> dict:
    """Stitching across training seeds: one :func:`table` per ordered pair of seeds ``(s, t)``, the
    encoders of seed ``s`` with the policies of seed ``t``, for every pair (``s == t``: that seed's own
    Table 1; ``s != t``: every cell is a stitch, the same colour's cell included, which is the seed
    factor alone), and their :func:`seed_summary`.

    Args:
        agents: ``{seed: {colour: agent}}``, the same colours for every seed; each agent's card must
            name that seed and colour (when it names one).
        known: earlier tables (one, or a list) whose cells with the same weights are copied
            (:func:`table`), e.g. each seed's own table.

    Returns ``{"seeds": [...], "colors": [...], "tables": {"s-t": table}, "summary": ...}``.

    Raises:
        ValueError: no seed, different colours for different seeds, an agent whose card names
            another seed or colour than the one it stands for, or a pair that cannot be stitched
            (:func:`check_stitchable`), an unknown ``actions``, or ``actions="sampled"`` with a head
            that has no action probabilities (a Q head); all checked before any episode is driven.
    """
    return _factor_tables(agents, "seed", track_seeds=track_seeds, processes=processes, max_steps=max_steps,
                          align=align, known=known, actions=actions)


def algorithm_tables(agents: dict, *, track_seeds, processes: int | None = None, max_steps: int | None = None,
                     align: str | None = None, known: Table | list[Table] | None = None,
                     actions: str = "greedy") -> dict:
    """Stitching across training algorithms, as :func:`seed_tables` across seeds: one :func:`table`
    per ordered pair of algorithms ``(a, b)``, the encoders trained with ``a`` and the heads trained
    with ``b`` (``"ppo-ddqn"``: PPO encoders with Double DQN heads, each stitched agent acting
    greedily, the argmax of the head's Q-values; ``"ddqn-ppo"``: the reverse, the argmax of PPO's
    logits), the same colour's cell included (the algorithm factor alone), and their
    :func:`factor_summary` with the groups ``alone``, ``algorithm``, ``colour`` and
    ``colour+algorithm``.

    Args:
        agents: ``{algorithm: {colour: agent}}`` (``"ppo"``, ``"ddqn"``, ...), the same colours for
            every algorithm; each agent's card must name that algorithm and colour.

    Returns ``{"algos": [...], "colors": [...], "tables": {"a-b": table}, "summary": ...}``.

    Raises:
        ValueError: as :func:`seed_tables`, for algorithms: checked before any episode is driven.
    """
    return _factor_tables(agents, "algo", track_seeds=track_seeds, processes=processes, max_steps=max_steps,
                          align=align, known=known, actions=actions)


def factor_groups(factor: str) -> dict:
    """The groups of cells :func:`factor_summary` averages: (same colour?, same value of the
    factor?) -> name (:data:`SEED_GROUPS` for seeds)."""
    word = FACTORS[factor][1]
    return {(True, True): "alone", (True, False): word, (False, True): "colour", (False, False): f"colour+{word}"}


#: The groups of cells :func:`seed_summary` averages: (same colour?, same seed?) -> name.
SEED_GROUPS = factor_groups("seed")


def factor_summary(tables: dict, factor: str = "seed") -> dict:
    """The summary of :func:`seed_tables`' tables (``{"s-t": table}``) or :func:`algorithm_tables`'
    (``{"a-b": table}``), in the style of the authors' follow-up: each (encoder colour, policy
    colour) cell as the mean and standard deviation, over the (encoder, policy) pairs of the factor,
    of the cell's mean score (``values`` lists them in the tables' order), and the mean of four
    groups of cells, with its worst cell and its ratio to the agents alone (for seeds):

    - ``alone``: same colour, same seed (an agent with itself, not stitched);
    - ``seed``: same colour, another seed (the seed factor alone);
    - ``colour``: another colour, same seed (Table 1's off-diagonal);
    - ``colour+seed``: both differ.

    For algorithms the groups are ``alone``, ``algorithm``, ``colour`` and ``colour+algorithm``. A
    group without cells (e.g. ``seed`` from one seed) is left out.
    """
    import numpy as np

    groups_of = factor_groups(factor)
    tell = FACTORS[factor][2]
    per_cell: dict = {}
    groups: dict = {name: [] for name in groups_of.values()}
    for key, t in tables.items():
        s, _, p = key.partition("-")
        for ec, row in t["cells"].items():
            for pc, cell in row.items():
                score = float(cell["mean_max_return"])
                per_cell.setdefault(ec, {}).setdefault(pc, []).append(score)
                groups[groups_of[(ec == pc, s == p)]].append((score, f"{ec} encoder ({tell(s)}) + {pc} policy ({tell(p)})"))
    cells = {ec: {pc: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v), "values": v}
                  for pc, v in row.items()} for ec, row in per_cell.items()}
    alone = float(np.mean([v for v, _ in groups["alone"]])) if groups["alone"] else None
    out = {}
    for name, found in groups.items():
        if not found:
            continue
        mean = float(np.mean([v for v, _ in found]))
        worst = min(found)
        out[name] = {"mean": mean, "cells": len(found), "worst": worst[0], "worst_cell": worst[1],
                     **({"ratio": mean / alone} if alone else {})}
    return {"cells": cells, "groups": out}


def seed_summary(tables: dict) -> dict:
    """:func:`factor_summary` of :func:`seed_tables`' tables (groups :data:`SEED_GROUPS`)."""
    return factor_summary(tables, "seed")


# --------------------------------------------------------------------------------------------
# Actions: does a stitched agent act as the policy's own agent does on the same states?
# --------------------------------------------------------------------------------------------


def greedy_actions(agent, frames: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """The greedy actions (``(N,)`` int64, indices into :data:`relreps.envs.ACTIONS`) of an agent
    (or SB3 policy) for ``(N, 84, 84, 3)`` uint8 frames: what :func:`relreps.evaluation.act` picks
    for each frame on its own."""
    policy = policy_of(agent)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (N, 84, 84, 3) uint8 frames, got {frames.dtype} {frames.shape}")
    out = [policy.predict(frames[i : i + batch_size].transpose(0, 3, 1, 2), deterministic=True)[0]
           for i in range(0, len(frames), batch_size)]
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def head_actions(agent, features) -> np.ndarray:
    """The greedy actions (``(N,)`` int64) of a PPO agent's (or policy's) **head** for given encoder
    outputs ``(N, features)``: what it picks when fed them in place of its own encoder's, e.g. a
    foreign encoder's outputs, moved or mapped (the diagnosis scripts in ``scripts/diagnosis``)."""
    policy = policy_of(agent)
    with torch.no_grad():
        logits = policy.action_net(policy.mlp_extractor.forward_actor(torch.as_tensor(features, dtype=torch.float32)))
    return logits.argmax(1).numpy().astype(np.int64)


def _shares(actions: np.ndarray) -> dict[str, float]:
    counts = np.bincount(actions, minlength=len(envs.ACTIONS))
    return {name: float(c) / max(len(actions), 1) for name, c in zip(envs.ACTIONS, counts)}


def stitch_agreement(a, b, drive: latent.ParallelDrive, *, align: str | None = None) -> Agreement:
    """Per-state fidelity of the two stitches of agents ``a`` and ``b`` (:class:`relreps.zoo.Agent`),
    on the parallel frames of ``drive``, each agent in its own colour.

    A stitched agent (encoder of X, policy of Y) sees X's colour; on the same state, Y's own agent
    sees Y's colour. If X's encoder describes states as Y's does, the stitch picks Y's action. For
    each direction this returns the fraction of frames where the stitch agrees with the policy's
    agent (``with_policy_agent``) and with the encoder's agent (``with_encoder_agent``), its
    action shares, and ``recall``: for each action the policy's agent picks somewhere, the fraction
    of those frames where the stitch picks it too (a stitch that always accelerates agrees on every
    frame where the agent does, and ``recall`` shows the turns it misses); ``agents_agree`` is how often ``a`` and ``b`` themselves pick the same action
    (two policies trained apart need not agree even where their encoders do). ``align`` is passed
    to :func:`stitch` (``"anchor-mean"``: relative agents only; ``"affine"``: both). Unlike a driven
    episode, where one wrong turn changes every later frame, each frame here is judged alone.

    Raises:
        ValueError: the agents cannot be stitched (:func:`stitch`), or have the same name (the
            results are keyed by name).
    """
    if a.name == b.name:
        raise ValueError(f"both agents are named {a.name!r}: the agreement is reported by name, so give them "
                         "different names (e.g. dataclasses.replace(agent, name=...))")
    own = {x.name: greedy_actions(x, drive.frames(x.color)) for x in (a, b)}
    out: Agreement = {
        "frames": len(drive),
        **({"align": align} if align else {}),
        "agents_agree": float((own[a.name] == own[b.name]).mean()),
        "own_actions": {name: _shares(acts) for name, acts in own.items()},
        "stitched": {},
    }
    for enc, pol in ((a, b), (b, a)):
        s = stitch(enc, pol, align=align)
        acts = greedy_actions(s, drive.frames(enc.color))
        out["stitched"][s.name] = {
            "encoder": enc.name, "policy": pol.name,
            "with_policy_agent": float((acts == own[pol.name]).mean()),
            "with_encoder_agent": float((acts == own[enc.name]).mean()),
            "actions": _shares(acts),
            "recall": {name: float((acts[own[pol.name] == i] == i).mean())
                       for i, name in enumerate(envs.ACTIONS) if (own[pol.name] == i).any()},
        }
    return out


# --------------------------------------------------------------------------------------------
# Saved tables: read one that ``relreps table`` wrote, and re-drive a sample of its episodes
# --------------------------------------------------------------------------------------------

#: How far (absolutely) a re-driven episode's maximum return may be from the stored one in
#: :func:`recheck`. Evaluation is deterministic on one machine, so the two are equal; the tolerance
#: only absorbs the last bits of a float written to JSON and read back.
RECHECK_TOLERANCE = 1e-6


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and bool(np.isfinite(x))


def _read_object(path, what: str) -> tuple[dict, Any]:
    """A saved JSON object (``what`` it should be, for the error) and the ``bad(message)`` that
    makes a ValueError naming the file."""
    import json
    from pathlib import Path

    path = Path(path)

    def bad(message: str) -> ValueError:
        return ValueError(f"{path}: {message}")

    try:
        t = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise bad(f"not JSON ({e})") from None
    if not isinstance(t, dict):
        raise bad(f"expected a JSON object ({what}), got {type(t).__name__}")
    return t, bad


def load_table(path) -> Table:
    """A table that :func:`table` computed and ``relreps table`` saved (``results/table-*.json``),
    read back in :func:`table`'s format, so that :func:`scores`, :func:`summary` and
    :func:`relreps.plots.stitching_heatmaps` take it as they take a table just computed. Keys the
    command adds (``algo``, ``representation``, ``score``) are kept.

    Checked: the encoder and policy colours (named agents, the same colours in every row of
    ``cells``), the tracks and ``max_steps``, the alignment (one of :data:`ALIGNMENTS`; an affine
    table names its ridge), the weights' checksums when the table records them (one per agent),
    and every cell: driven on its encoder's colour, one episode per track in the table's order,
    finite maximum returns whose mean and standard deviation are the cell's.

    Raises:
        ValueError: the file is not JSON, holds the tables of ``relreps table --cross-seed`` (one
            per pair of seeds), or fails a check above; the message names the file and what is
            wrong.
    """
    t, bad = _read_object(path, "a stitching table")
    if "tables" in t and "cells" not in t:
        raise bad(f"holds {len(t['tables'])} tables, one per (encoder, policy) pair of seeds or algorithms "
                  f"({', '.join(t['tables'])}; relreps table --cross-seed or --algos), not one table: "
                  "read it with load_factor_tables")
    return _checked_table(t, bad)


def _checked_table(t: dict, bad) -> Table:
    """:func:`load_table`'s checks of one table read from JSON; ``bad(message)`` makes the error."""
    missing = [k for k in ("encoders", "policies", "tracks", "max_steps", "cells") if k not in t]
    if missing:
        raise bad(f"not a stitching table: no {', '.join(missing)}")
    for side in ("encoders", "policies"):
        names = t[side]
        if not isinstance(names, dict) or not names or not all(isinstance(n, str) for n in names.values()):
            raise bad(f"{side!r} must map each colour to an agent's name, got {names!r}")
    tracks = t["tracks"]
    if not isinstance(tracks, list) or not tracks or not all(isinstance(s, int) and not isinstance(s, bool)
                                                             for s in tracks):
        raise bad(f"'tracks' must be a non-empty list of track seeds, got {tracks!r}")
    steps = t["max_steps"]
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise bad(f"'max_steps' must be an integer >= 1, got {steps!r}")
    align = t.get("align")
    if align not in ALIGNMENTS:
        raise bad(f"unknown align {align!r}: expected one of {ALIGNMENTS}")
    if align == "affine" and not (_number(t.get("ridge")) and t["ridge"] >= 0):
        raise bad(f"an affine table records its fit's ridge; got {t.get('ridge')!r}")
    from .evaluation import ACTION_RULES

    actions = t.get("actions", "greedy")
    if actions not in ACTION_RULES:
        raise bad(f"unknown actions {actions!r}: expected one of {', '.join(ACTION_RULES)}")
    if "actions" in t and actions == "greedy":
        raise bad("records 'actions': 'greedy'; a greedy table leaves the key out")
    if "sha256" in t:
        ids = t["sha256"]
        for side in ("encoders", "policies"):
            got = ids.get(side) if isinstance(ids, dict) else None
            if not isinstance(got, dict) or set(got) != set(t[side]):
                raise bad(f"'sha256' must give one checksum per agent of {side!r} ({', '.join(t[side])}), "
                          f"got {got!r}")
    cells = t["cells"]
    if not isinstance(cells, dict) or list(cells) != list(t["encoders"]):
        raise bad(f"'cells' must have one row per encoder colour ({', '.join(t['encoders'])}), "
                  f"got {list(cells) if isinstance(cells, dict) else cells!r}")
    for ec, row in cells.items():
        if not isinstance(row, dict) or list(row) != list(t["policies"]):
            raise bad(f"row {ec!r} must have one cell per policy colour ({', '.join(t['policies'])}), "
                      f"got {list(row) if isinstance(row, dict) else row!r}")
        for pc, cell in row.items():
            where = f"cell ({ec} encoder, {pc} policy)"
            if not isinstance(cell, dict):
                raise bad(f"{where} is {cell!r}, not an evaluation summary")
            if cell.get("color") != ec:
                raise bad(f"{where} was driven on {cell.get('color')!r}, not on its encoder's colour {ec!r}")
            if "actions" in cell and cell["actions"] == "greedy":
                raise bad(f"{where} records 'actions': 'greedy'; a greedy cell leaves the key out")
            if cell.get("actions", "greedy") != actions:
                raise bad(f"{where} was driven with {cell.get('actions', 'greedy')} actions, the table's are {actions}")
            episodes = cell.get("episodes")
            if not isinstance(episodes, list) or [e.get("track_seed") if isinstance(e, dict) else e
                                                  for e in episodes] != tracks:
                raise bad(f"{where} must hold one episode per track of the table ({tracks}), in that order")
            returns = [e.get("max_return") for e in episodes]
            if not all(_number(r) for r in returns):
                raise bad(f"{where}: every episode needs a finite max_return, got {returns}")
            for key, value in (("mean_max_return", float(np.mean(returns))), ("std_max_return", float(np.std(returns)))):
                if not _number(cell.get(key)) or abs(cell[key] - value) > RECHECK_TOLERANCE:
                    raise bad(f"{where}: {key} is {cell.get(key)!r}, but its episodes give {value!r}")
    return cast(Table, t)


def _difference(a, b, tolerance: float, where: str = "") -> str | None:
    """Where ``a`` and ``b`` first differ (``None``: equal, numbers within ``tolerance``)."""
    here = where or "the top level"
    if _number(a) and _number(b):
        return None if abs(a - b) <= tolerance else f"{here}: {a!r}, the tables give {b!r}"
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return f"{here}: keys {', '.join(map(str, a)) or 'none'}, the tables give {', '.join(map(str, b))}"
        for k in a:
            found = _difference(a[k], b[k], tolerance, f"{where}.{k}" if where else str(k))
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{here}: {len(a)} entries, the tables give {len(b)}"
        for k, (x, y) in enumerate(zip(a, b)):
            found = _difference(x, y, tolerance, f"{where}[{k}]")
            if found:
                return found
        return None
    return None if a == b else f"{here}: {a!r}, the tables give {b!r}"


def load_factor_tables(path) -> dict:
    """The tables of one ``relreps table --cross-seed`` (or ``--algos``) file
    (``results/table-*-seeds-*.json``, ``table-algos-*.json``), read back in :func:`seed_tables`' (or
    :func:`algorithm_tables`') format: ``{"seeds": [...] (or "algos"), "colors": [...], "tables":
    {"s-t": table}, "summary": ...}``, keys the command adds (``algo``, ``representation``, ...) kept.

    Checked: every table as :func:`load_table` checks one; the seeds (integers >= 1) or algorithms
    (names without ``-``); one table per ordered pair of them, in :func:`seed_tables`' order, each
    with the file's colours as its encoders' and policies'; table ``s-t`` made with the encoders of
    table ``s-s`` and the policies of table ``t-t`` (names, and weights' checksums where recorded),
    an ``s-s`` table with the same agents as encoders and policies, and other agents for each
    colour in another ``t-t``; the same tracks, episode length, alignment, ridge and actions in every
    table (alignment and actions at the file's top level too); and a ``summary`` equal to
    :func:`factor_summary` of the tables (numbers within :data:`RECHECK_TOLERANCE`).

    Raises:
        ValueError: the file is not JSON, holds a single table (read it with :func:`load_table`),
            or fails a check above; the message names the file, the table and what is wrong.
    """
    t, bad = _read_object(path, "the tables of relreps table --cross-seed")
    if "cells" in t:
        raise bad("holds one table, not one per pair of seeds or algorithms: read it with load_table")
    found = [f for f in FACTORS if f"{FACTORS[f][0]}s" in t]
    if len(found) != 1:
        raise bad("expected the tables of relreps table --cross-seed ('seeds') or --algos ('algos'), "
                  f"got the keys {', '.join(t) or 'none'}")
    factor = found[0]
    field = f"{FACTORS[factor][0]}s"
    values, colors, tables = t[field], t.get("colors"), t.get("tables")
    if not isinstance(values, list) or not values or len(set(map(str, values))) != len(values):
        raise bad(f"{field!r} must be a non-empty list of distinct values, got {values!r}")
    for v in values:
        if factor == "seed" and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise bad(f"seed {v!r}: expected a training seed, an integer >= 1")
        if factor == "algo" and (not isinstance(v, str) or not v or "-" in v):
            raise bad(f"algorithm {v!r}: expected an algorithm's name without '-' (e.g. 'ppo', 'ddqn')")
    if not isinstance(colors, list) or not colors or not all(isinstance(c, str) for c in colors):
        raise bad(f"'colors' must be a non-empty list of colours, got {colors!r}")
    keys = [_pair_key(a, b) for a in values for b in values]
    if not isinstance(tables, dict) or list(tables) != keys:
        raise bad(f"'tables' must hold one table per ordered pair of {field} ({', '.join(keys)}), got "
                  f"{', '.join(tables) if isinstance(tables, dict) else repr(tables)}")
    checked = {}
    for key, sub in tables.items():
        def bad_in(message: str, key=key) -> ValueError:
            return bad(f"table {key!r}: {message}")

        if not isinstance(sub, dict):
            raise bad_in(f"expected a table (a JSON object), got {type(sub).__name__}")
        sub_t = _checked_table(sub, bad_in)
        for side in ("encoders", "policies"):
            if list(sub_t[side]) != colors:
                raise bad_in(f"its {side} are {', '.join(sub_t[side])}, the file's colours {', '.join(colors)}")
        checked[key] = sub_t
    first = checked[keys[0]]
    for key, sub_t in checked.items():
        for k in ("tracks", "max_steps", "align", "ridge", "actions"):
            if sub_t.get(k) != first.get(k):
                raise bad(f"table {key!r} has {k} {sub_t.get(k)!r}, table {keys[0]!r} has {first.get(k)!r}: "
                          "every table of the file needs the same protocol")
    for k, absent in (("align", None), ("actions", "greedy")):
        if t.get(k, absent) != first.get(k, absent):
            raise bad(f"the file says {k} {t.get(k, absent)!r}, its tables {first.get(k, absent)!r}")

    def agents_of(sub_t: Table, side: str) -> dict:
        ids = cast(dict, sub_t).get("sha256", {}).get(side, {})
        return {c: (cast(dict, sub_t)[side][c], ids.get(c)) for c in colors}

    for a in values:
        own = checked[_pair_key(a, a)]
        if agents_of(own, "encoders") != agents_of(own, "policies"):
            raise bad(f"table {_pair_key(a, a)!r} must drive each agent alone: its encoders and policies "
                      "are other agents")
        for b in values:
            if a != b:
                other = agents_of(checked[_pair_key(b, b)], "encoders")
                same = [c for c, agent in agents_of(own, "encoders").items() if agent[0] == other[c][0]]
                if same:
                    raise bad(f"tables {_pair_key(a, a)!r} and {_pair_key(b, b)!r} have the same {same[0]} "
                              f"agent ({other[same[0]][0]}): each {FACTORS[factor][1]} needs its own agents")
            key = _pair_key(a, b)
            for side, source in (("encoders", _pair_key(a, a)), ("policies", _pair_key(b, b))):
                if agents_of(checked[key], side) != agents_of(checked[source], side):
                    raise bad(f"table {key!r}: its {side} are not those of table {source!r}")
    made = factor_summary(checked, factor)
    if "summary" not in t:
        raise bad("has no 'summary'")
    wrong = _difference(t["summary"], made, RECHECK_TOLERANCE, "summary")
    if wrong:
        raise bad(f"its summary is not what its tables give (factor_summary): {wrong}")
    return {**t, "tables": checked, "summary": made}


def sample_episodes(saved: Table, episodes: int, *, seed: int = 0) -> list[tuple[str, str, int]]:
    """``episodes`` distinct ``(encoder colour, policy colour, track seed)`` episodes of a table,
    drawn uniformly without replacement by a generator seeded with ``seed`` (the same table,
    number and seed give the same sample), listed in the table's order (row by row, then by
    track).

    Raises:
        ValueError: ``episodes`` is not an integer from 1 to the table's number of episodes.
    """
    every = [(ec, pc, int(e["track_seed"])) for ec, row in saved["cells"].items()
             for pc, cell in row.items() for e in cell["episodes"]]
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or not 1 <= episodes <= len(every):
        raise ValueError(f"episodes must be an integer from 1 to the table's {len(every)}, got {episodes!r}")
    picked = np.random.default_rng(seed).choice(len(every), size=int(episodes), replace=False)
    return [every[i] for i in sorted(picked)]


_ROLE = {"encoders": "encoder", "policies": "policy"}


def check_agents(saved: Table, encoders: dict, policies: dict, *, by_name: bool = False) -> str:
    """Refuse, with a ValueError saying which agent differs, agents that are not the ones a saved
    table was made with; returns what they were matched by: ``"sha256"`` or ``"name"``.

    The colours must be the table's. A table that records its agents' weights (``sha256``, by
    their cards' checksums) is matched by them: an agent whose card has no checksum is refused.
    One that does not (written before tables recorded them) is refused, unless ``by_name``: then
    the agents' names are compared, which says nothing about their weights (a re-driven episode
    equal to the stored one does).
    """
    raw = cast(dict, saved)  # keyed by the side's name
    for side, given in (("encoders", encoders), ("policies", policies)):
        if list(given) != list(raw[side]):
            raise ValueError(f"the table's {side} are {', '.join(raw[side])}; got {', '.join(given) or 'none'}")
    wrong = []
    if "sha256" in saved:
        for side, given in (("encoders", encoders), ("policies", policies)):
            for c, agent in given.items():
                want, have = raw["sha256"][side][c], _weights_id(agent)
                if have != want:
                    wrong.append(f"{c} {_ROLE[side]} {agent.name} has weights {have or 'without a checksum'}, "
                                 f"the table's ({raw[side][c]}) {want}")
        if wrong:
            raise ValueError("the table was made with other weights: " + "; ".join(wrong))
        return "sha256"
    if not by_name:
        raise ValueError("the table records no weights' checksums (it was written before tables recorded them): "
                         "pass by_name=True to match its agents by name")
    for side, given in (("encoders", encoders), ("policies", policies)):
        for c, agent in given.items():
            if agent.name != raw[side][c]:
                wrong.append(f"{c} {_ROLE[side]} is {agent.name}, the table's is {raw[side][c]}")
    if wrong:
        raise ValueError("the table was made with other agents: " + "; ".join(wrong))
    return "name"


def recheck(saved: Table, encoders: dict, policies: dict, *, episodes: int, seed: int = 0,
            processes: int | None = None, by_name: bool = False, tolerance: float = RECHECK_TOLERANCE) -> dict:
    """Drive again a seeded sample of a saved table's episodes (:func:`sample_episodes`) and compare
    each maximum return with the stored one.

    Each sampled cell is made as :func:`table` made it: ``stitch(encoders[e], policies[p])`` with
    the table's alignment (an agent that is both a cell's encoder and its policy drives alone, so
    pass the dicts the table was made with), evaluated on the encoder's colour with the table's
    ``max_steps`` and action rule (greedy, or the sampled actions it records). The agents are checked first (:func:`check_agents`; ``by_name`` is passed on).

    Returns ``{"episodes": [...], "match": bool, "checked_by": "sha256" | "name", "tolerance":
    ..., "sampled": n, "of": all episodes}``, one entry per sampled episode with its ``encoder``,
    ``policy``, ``track_seed``, ``stored`` and ``driven`` maximum return, ``difference`` and
    ``match`` (``difference <= tolerance``); ``match`` is true when every episode matches.

    Raises:
        ValueError: the agents are not the table's (:func:`check_agents`), an affine table was fitted
            with another ridge than :data:`RIDGE`, ``episodes`` is out of range, or a sampled pair
            cannot be stitched.
    """
    from .evaluation import evaluate

    align = saved.get("align")
    if align == "affine" and saved.get("ridge") != RIDGE:
        raise ValueError(f"the table's affine maps were fitted with ridge {saved.get('ridge')!r}; "
                         f"stitch fits them with {RIDGE}")
    checked_by = check_agents(saved, encoders, policies, by_name=by_name)
    sample = sample_episodes(saved, episodes, seed=seed)
    per_cell: dict[tuple[str, str], list[int]] = {}
    for ec, pc, track in sample:
        per_cell.setdefault((ec, pc), []).append(track)
    out = []
    for (ec, pc), tracks in per_cell.items():
        enc, pol = encoders[ec], policies[pc]
        agent = enc if enc is pol else stitch(enc, pol, align=align)
        driven = evaluate(agent, color=enc.color, track_seeds=tracks, processes=processes,
                          max_steps=saved["max_steps"], actions=saved.get("actions", "greedy")).episodes
        stored = {int(e["track_seed"]): float(e["max_return"]) for e in saved["cells"][ec][pc]["episodes"]}
        for ep in driven:
            diff = abs(ep.max_return - stored[ep.track_seed])
            out.append({"encoder": ec, "policy": pc, "track_seed": ep.track_seed, "stored": stored[ep.track_seed],
                        "driven": float(ep.max_return), "difference": diff, "match": bool(diff <= tolerance)})
    return {"episodes": out, "match": all(e["match"] for e in out), "checked_by": checked_by,
            "tolerance": tolerance, "sampled": len(out),
            "of": sum(len(cell["episodes"]) for row in saved["cells"].values() for cell in row.values())}


__all__ += ["RECHECK_TOLERANCE", "check_agents", "load_factor_tables", "load_table", "recheck", "sample_episodes"]
