"""Diagnosis (not part of the package): what bfloat16 changes in a relative agent's outputs, with
the anchor embeddings and the relative projection kept in float32 (what ``precision="bf16"``
does) and without (everything under autocast). Usage, with relative agents (zoo names or cards):

    python scripts/diagnosis/precision_drift.py ppo-rel-red ppo-rel-green

On one drive (``latent.parallel_drive`` in the agent's colour, 1000 steps, every 4th frame), each
agent computes its relative representation and greedy actions in float32 (the reference) and under
CPU bfloat16 autocast in two ways:

- ``mixed``: convolutions and linear layers in bfloat16; anchor embeddings, latent LayerNorm,
  projection, head LayerNorm and the last layers in float32 (relreps' bf16 path);
- ``naive``: the agent's anchor embeddings held in bfloat16, and the latent LayerNorm, the
  projection and the head (LayerNorm, last layer) all under autocast.

Printed: the largest and mean absolute difference of the cosines from the reference, and the share
of frames where the greedy action equals the reference's.
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

from relreps import latent, zoo
from relreps.projection import prepare_anchors, project


def naive_features(enc, obs):
    """The relative representation with every step under bfloat16 autocast."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = enc.net(obs)
        if enc.latent_norm == "layer":
            z = F.layer_norm(z, z.shape[-1:])
        a = enc.anchor_embeddings.to(torch.bfloat16)  # the agent's anchor embeddings, held in bfloat16
        return project(z, prepare_anchors(a, standardize=enc.standardize, std_floor=enc.std_floor))


def head_logits(policy, features, autocast: bool):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        latent_pi, _ = policy.mlp_extractor(features)
        if autocast:  # a plain Linear under autocast
            return F.linear(latent_pi, policy.action_net.weight, policy.action_net.bias)
        return policy.action_net(latent_pi)


def naive_head(policy, features):
    """The head with its LayerNorm and last layer under autocast too."""
    net = policy.mlp_extractor.net
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = F.layer_norm(features, features.shape[-1:], net[0].weight, net[0].bias, net[0].eps)
        x = net[3](net[2](net[1](x)))
        return F.linear(x, policy.action_net.weight, policy.action_net.bias)


def main(names):
    for name in names:
        agent = zoo.load(name)
        if agent.representation != "relative":
            sys.exit(f"{name} is not a relative agent")
        policy = agent.policy.float().eval()
        enc = policy.features_extractor
        drive = latent.parallel_drive((agent.color,))
        frames = drive.frames(agent.color)
        obs = torch.as_tensor(np.asarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            ref = enc(obs)
            ref_act = policy.action_net(policy.mlp_extractor(ref)[0]).argmax(1)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                mixed = enc(obs)
                mixed_act = policy.action_net(policy.mlp_extractor(mixed)[0]).argmax(1)
            naive = naive_features(enc, obs).float()
            naive_act = naive_head(policy, naive).float().argmax(1)
        print(f"{name}: {len(obs)} frames, {ref.shape[1]} anchors")
        for label, f, act in (("mixed (relreps bf16)", mixed, mixed_act), ("naive (all bf16)", naive, naive_act)):
            d = (f.float() - ref).abs()
            agree = (act == ref_act).float().mean().item()
            print(f"  {label:22s} cosines: max |diff| {d.max():.4f}, mean {d.mean():.5f}; "
                  f"greedy action as float32: {agree:.1%}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["ppo-rel-red"])
