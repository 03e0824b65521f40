"""Diagnosis (not part of the package): how alike would two trained encoders look through other
relative projections? No training: each encoder's latent (before any projection) of the same states,
each on its own colour, is projected on anchors embedded by that encoder, with a varying number of
anchors and normalisation. Usage, with pairs of agents (shipped names or card paths):

    python scripts/diagnosis/anchor_count.py ppo-rel-green:ppo-rel-red ppo-abs-green:ppo-abs-red ...

For one parallel drive (`latent.parallel_drive`, 1000 steps, every 4th frame, a track no run uses) it
prints, per pair and per projection: the matched and unmatched cosine, top-1 retrieval and linear CKA
of the two relative representations, and the CKA of the two latents themselves. The anchors are the
first N of the `scripted-3136` frames in a seeded random order, re-embedded by each final encoder
(for a relative agent this is not the saved moving average its policy learnt with: the numbers ask
what the *encoders* share, not how a stitch drives). An absolute agent's latent is its encoder's
output (256 features for the shipped ones): the relative projection is applied after training.
"""

import sys

import numpy as np
import torch

from relreps import anchors as anchor_sets
from relreps import latent, zoo
from relreps.extractors import encoder_of, frames_to_tensor
from relreps.projection import relative_projection

COUNTS = (64, 256, 1024, 3136)
PROJECTIONS = (("centre", "center"), ("per-dimension", True), ("none", False))


def _embed(enc, frames: np.ndarray, batch: int = 256) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([enc.embed(frames_to_tensor(frames[i:i + batch])).float()
                          for i in range(0, len(frames), batch)])


def main(pairs: list[tuple[str, str]]) -> None:
    agents = {name: zoo.load(name) for pair in pairs for name in pair}
    colors = sorted({a.color for a in agents.values()})
    drive = latent.parallel_drive(colors, n_steps=1000, stride=4, seed=0)
    order = np.random.default_rng(0).permutation(3136)
    aset = anchor_sets.load("scripted-3136")
    anchor_frames = {c: aset.frames(c)[order] for c in colors}
    latents = {}
    for name, agent in agents.items():
        enc = encoder_of(agent)
        latents[name] = (_embed(enc, drive.frames(agent.color)), _embed(enc, anchor_frames[agent.color]))
    print(f"{len(drive)} frames of one drive (track {latent.LATENT_TRACK_SEED}); anchors: scripted-3136, "
          f"re-embedded by each final encoder")
    for a, b in pairs:
        (xa, aa), (xb, ab) = latents[a], latents[b]
        print(f"\n{a} ({agents[a].color}) vs {b} ({agents[b].color}): latent CKA {latent.linear_cka(xa, xb):.3f}, "
              f"latent dims {xa.shape[1]}/{xb.shape[1]}")
        print(f"  {'projection':14s} {'anchors':>7s} {'matched':>8s} {'unmatched':>9s} {'top1':>6s} {'CKA':>6s}")
        for label, standardize in PROJECTIONS:
            for n in COUNTS:
                ra = relative_projection(xa, anchors=aa[:n], standardize=standardize).numpy()
                rb = relative_projection(xb, anchors=ab[:n], standardize=standardize).numpy()
                m = latent.metrics(latent.similarity(ra, rb))
                print(f"  {label:14s} {n:7d} {m.matched:8.3f} {m.unmatched:9.3f} {m.top1:6.1%} "
                      f"{latent.linear_cka(ra, rb):6.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or any(arg.count(":") != 1 for arg in sys.argv[1:]):
        sys.exit(__doc__)
    main([tuple(arg.split(":")) for arg in sys.argv[1:]])
