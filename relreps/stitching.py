"""Zero-shot stitching: the encoder of one agent + the head of another -> a new agent.

``stitch(A, B)`` returns an agent that encodes observations with A's encoder (a relative encoder
keeps its own anchors, in its own colour) and acts with B's head, with no training. Every place
Stable-Baselines3 keeps an extractor is swapped: PPO's ``features_extractor``,
``pi_features_extractor`` and ``vf_features_extractor`` (``predict`` uses the second: swapping
only the first would silently change nothing), and the DQN family's online and target networks.
The stitched agent is evaluated on the encoder's colour.
"""

from __future__ import annotations

import copy

from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from .extractors import encoder_of
from .zoo import Agent

MODES = ("relative", "absolute")


def _head_input(policy) -> int:
    """The number of features the policy's head takes (its LayerNorm's size)."""
    import torch

    for m in policy.modules():
        if isinstance(m, torch.nn.LayerNorm):
            return int(m.normalized_shape[0])
    raise ValueError("the policy has no relreps head (LayerNorm first)")


def stitch(encoder_agent: Agent, policy_agent: Agent, mode: str | None = None) -> Agent:
    """Join ``encoder_agent``'s encoder to ``policy_agent``'s head.

    Args:
        mode: ``"relative"`` or ``"absolute"``: the representation both agents must use (default:
            whatever they share).

    Raises:
        ValueError: the agents use different representations (a relative encoder cannot feed an
            absolute head, nor the reverse), ``mode`` names another one, or the encoder's output
            size differs from what the head takes.
    """
    enc_rep, pol_rep = encoder_agent.representation, policy_agent.representation
    if mode is not None and mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: expected one of {MODES}")
    if enc_rep != pol_rep:
        def a(rep: str) -> str:
            return f"an {rep}" if rep[0] in "aeiou" else f"a {rep}"

        raise ValueError(f"cannot join {a(enc_rep)} encoder ({encoder_agent.name}) to {a(pol_rep)} head "
                         f"({policy_agent.name}): both must be relative, or both absolute")
    if mode is not None and mode != enc_rep:
        raise ValueError(f"mode {mode!r} asked for, but both agents are {enc_rep}")
    encoder = copy.deepcopy(encoder_of(encoder_agent.policy))
    policy = copy.deepcopy(policy_agent.policy)
    if encoder.features_dim != _head_input(policy):
        raise ValueError(f"{encoder_agent.name}'s encoder outputs {encoder.features_dim} features but "
                         f"{policy_agent.name}'s head takes {_head_input(policy)}")
    swapped = 0
    for module in list(policy.modules()):
        # _modules, not named_children(): the latter lists a shared module under one name only,
        # and PPO shares one extractor under three names
        for name, child in list(module._modules.items()):
            if isinstance(child, BaseFeaturesExtractor):
                setattr(module, name, encoder)
                swapped += 1
    if swapped == 0:
        raise ValueError(f"{policy_agent.name}'s policy keeps no features extractor to swap")
    policy.set_training_mode(False)
    card = {
        **policy_agent.card,
        "color": encoder_agent.color,
        "stitched": {"encoder": encoder_agent.name, "policy": policy_agent.name, "mode": enc_rep},
        "encoder_kwargs": encoder_agent.card["encoder_kwargs"],
    }
    if "anchors" in encoder_agent.card:
        card["anchors"] = encoder_agent.card["anchors"]
    return Agent(name=f"{encoder_agent.name}+{policy_agent.name}", policy=policy, card=card)


def table(encoders: dict, policies: dict, *, track_seeds, processes: int | None = None,
          max_steps: int | None = None) -> dict:
    """The encoder-by-policy table: ``cells[enc_colour][pol_colour]`` = the evaluation summary of
    ``stitch(encoders[enc_colour], policies[pol_colour])`` on the encoder's colour."""
    from . import envs
    from .evaluation import evaluate

    kwargs = {} if max_steps is None else {"max_steps": max_steps}
    cells: dict = {}
    for ec, enc in encoders.items():
        cells[ec] = {}
        for pc, pol in policies.items():
            agent = enc if enc is pol else stitch(enc, pol)
            result = evaluate(agent, color=enc.color, track_seeds=track_seeds, processes=processes, **kwargs)
            cells[ec][pc] = result.summary()
    return {"encoders": {c: a.name for c, a in encoders.items()},
            "policies": {c: a.name for c, a in policies.items()},
            "tracks": [int(s) for s in track_seeds], "max_steps": max_steps or envs.MAX_EPISODE_STEPS,
            "cells": cells}
