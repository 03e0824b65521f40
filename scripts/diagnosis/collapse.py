"""Diagnosis (not part of the package): what is left of a relative agent's representation?
Usage, with relative agent files (e.g. exported from a run with `relreps export RUN --out X`):

    python scripts/diagnosis/collapse.py AGENT.json [AGENT.json ...]

Each agent embeds the 3136 frames of its anchor set in its own colour, every 4th of them (784; its
256 anchors are among the 3136). It prints two things.

Dead units. A unit is "dead on the anchors" when its spread over the saved anchor embeddings is
below 1e-3 of the largest. With the per-dimension standardisation (the default projection), such a
unit at 0 becomes -mean/std, a constant for every frame that can outweigh the live units: the
script gives the share of the standardised squared norm these units carry.

Drift. The saved anchor embeddings are a moving average that lags the encoder. If the encoder's
embeddings grow (or move together), x - mean(anchors) points along that growth for every frame:
the script gives the mean norms of the saved anchor embeddings, of the anchors re-embedded by the
current encoder and of the frames' embeddings, the cosine between x - mean(anchors) and the drift
(mean of the re-embedded anchors - mean of the saved ones), and the mean cosine between the relative
representations of two different frames (1: every frame looks the same to the policy).

Shrinkage (encoders with ``latent_norm="rms"``, whose frames all have unit mean square). The
moving average of vectors that turn is shorter than they are; the script also gives the mean
cosine of two frames' relative representations with the saved anchors rescaled to unit mean square
(a spherical average): if it is far lower, the lag is mostly the average's shrinkage, not its
direction.

Actions. The share of frames on which each action is the greedy one, and the policy's mean
probability of each action: a policy that still drives with sampled actions but stands still
when greedy has lost its "gas" argmax while keeping some gas probability.
"""

import sys

import torch
import torch.nn.functional as F

from relreps import anchors as anchor_sets
from relreps import latent, zoo
from relreps.envs import ACTIONS
from relreps.extractors import encoder_of, frames_to_tensor
from relreps.projection import prepare_anchors, project


def pairwise_cosine(r) -> float:
    """The mean cosine of two different rows of ``r``."""
    cos, n = latent.similarity(r, r), len(r)
    return float((cos.sum() - cos.diagonal().sum()) / (n * n - n))


def main(paths: list[str]) -> None:
    for path in paths:
        agent = zoo.load(path)
        enc = encoder_of(agent)
        frames = anchor_sets.load(agent.card["encoder_kwargs"]["anchors"]).frames(agent.color)[::4]
        rel = latent.embed(agent, frames)  # what the policy receives
        with torch.no_grad():
            x = enc.embed(frames_to_tensor(frames))
            saved, now = enc.anchor_embeddings.float(), enc.embed_anchors()
        mean, std = saved.mean(0), saved.std(0)
        dead = std < 1e-3 * std.max()
        z = (x - mean) / (std + 1e-8)
        share = (z[:, dead] ** 2).sum(1) / (z ** 2).sum(1)
        pairwise = pairwise_cosine(rel)
        shrink = ""
        if getattr(enc, "latent_norm", None) == "rms":
            unit = saved / saved.pow(2).mean(1, keepdim=True).sqrt()
            prepared = prepare_anchors(unit, standardize=enc.standardize, std_floor=enc.std_floor)
            with torch.no_grad():
                rescaled = pairwise_cosine(project(x, prepared))
            shrink = (f"\n  shrinkage: saved anchors' root mean square {saved.pow(2).mean(1).sqrt().mean():.3f}; "
                      f"mean cosine of two frames' relative representations with them rescaled to 1: {rescaled:.3f}")
        drift = F.cosine_similarity(x - mean, (now.mean(0) - mean)[None]).mean()
        obs, _ = agent.policy.obs_to_tensor(frames.transpose(0, 3, 1, 2))
        with torch.no_grad():
            probs = agent.policy.get_distribution(obs).distribution.probs
        greedy = torch.bincount(probs.argmax(1), minlength=len(ACTIONS)).float() / len(probs)
        print(f"{path}:\n"
              f"  dead units: {int(dead.sum())} of {len(std)} (std over the anchors < 1e-3 of the largest); "
              f"active per frame {(x[:, dead] > 0).sum(1).float().mean():.1f}; share of the standardised "
              f"norm: median {share.median():.3f}\n"
              f"  drift: mean norm of saved anchors {saved.norm(dim=1).mean():.3g}, of re-embedded anchors "
              f"{now.norm(dim=1).mean():.3g}, of frames {x.norm(dim=1).mean():.3g}; cos(x - mean, drift) "
              f"{drift:.3f}; mean cosine of two frames' relative representations {pairwise:.3f}{shrink}\n"
              f"  actions (greedy share / mean probability): "
              + ", ".join(f"{a} {g:.2f}/{p:.2f}" for a, g, p in zip(ACTIONS, greedy, probs.mean(0))))


if __name__ == "__main__":
    main(sys.argv[1:])
