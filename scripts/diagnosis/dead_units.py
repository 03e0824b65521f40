"""Diagnosis (session 9, not part of the package): how much of a relative agent's representation
comes from units that are (nearly) dead on its anchors? Usage, with relative agent files (e.g.
exported with `relreps export RUN --out X`):

    python scripts/diagnosis/dead_units.py AGENT.json [AGENT.json ...]

Each agent embeds the 3136 frames of its anchor set in its own colour (its anchors are 256 of them).
A unit is "dead on the anchors" when its spread over the saved anchor embeddings is below 1e-3 of
the largest. Over the 3136 frames it prints how many such units are active (> 0, after the ReLU)
and which share of the standardised embedding's squared norm they carry: the projection divides
by the units' spread over the anchors, so such a unit, even at 0, sits at -mean/std, a constant
that can outweigh every live unit and then is the same for every frame.
"""

import sys

import torch

from relreps import anchors as anchor_sets, zoo
from relreps.extractors import encoder_of, frames_to_tensor


def main(paths: list[str]) -> None:
    for path in paths:
        agent = zoo.load(path)
        enc = encoder_of(agent)
        frames = anchor_sets.load(agent.card["encoder_kwargs"]["anchors"]).frames(agent.color)
        with torch.no_grad():
            emb = torch.cat([enc.embed(frames_to_tensor(frames[i:i + 256])) for i in range(0, len(frames), 256)])
        a = enc.anchor_embeddings.float()
        mean, std = a.mean(0), a.std(0)
        dead = std < 1e-3 * std.max()
        other = emb
        z = (other - mean) / (std + 1e-8)
        share = (z[:, dead] ** 2).sum(1) / (z ** 2).sum(1)
        active = (other[:, dead] > 0).sum(1).float()
        print(f"{path}: {int(dead.sum())} of {len(std)} units dead on the anchors; on {len(other)} frames "
              f"{active.mean():.1f} of them active per frame (max {int(active.max())}); their share of the "
              f"standardised norm: median {share.median():.3f}, mean {share.mean():.3f}, "
              f"frames above 0.5: {(share > 0.5).float().mean():.1%}")


if __name__ == "__main__":
    main(sys.argv[1:])
