"""Diagnosis (not part of the package): does the anchor-mean alignment of
``stitching.stitch(..., align="anchor-mean")`` work only because the spaces are relative? Usage:

    python scripts/diagnosis/absolute_mean_shift.py ENCODER_AGENT POLICY_AGENT [TRACKS]

with two absolute agents (zoo names or card paths). Absolute agents carry no anchors, so each one's
mean latent is taken over the shipped anchor set's frames (``anchors.DEFAULT_SET``) in its own
colour, the same states the relative agents use; the stitch's head then receives
``z_A(x) - mean_A + mean_B``. Prints the paper's stitch and the shifted one on the first TRACKS
(default 5) held-out tracks, each episode's maximum return and the mean.
"""

import sys

import numpy as np
import torch

from relreps import anchors, evaluation, latent, stitching, zoo
from relreps.extractors import encoder_of


def mean_latent(agent) -> torch.Tensor:
    frames = anchors.load(anchors.DEFAULT_SET).frames(agent.color)
    return torch.as_tensor(latent.embed(agent, frames).mean(0))


def shifted(encoder_agent, policy_agent):
    s = stitching.stitch(encoder_agent, policy_agent)
    enc = encoder_of(s.policy)
    wrapped = stitching.AlignedEncoder(enc, mean_latent(policy_agent) - mean_latent(encoder_agent))
    stitching.swap_extractors(s.policy, wrapped, only=enc)
    return s


def main(enc_name: str, pol_name: str, n_tracks: int = 5) -> None:
    e, p = zoo.load(enc_name), zoo.load(pol_name)
    if e.representation != "absolute" or p.representation != "absolute":
        raise SystemExit("both agents must be absolute (relative ones: relreps table --align anchor-mean)")
    tracks = evaluation.EVAL_TRACKS[:n_tracks]
    for label, agent in (("paper's stitch", stitching.stitch(e, p)), ("mean-shifted", shifted(e, p))):
        r = evaluation.evaluate(agent, color=e.color, track_seeds=tracks)
        scores = [round(x.max_return, 1) for x in r.episodes]
        print(f"{e.name} + {p.name}, {label:15s}: {scores} mean {np.mean(scores):.1f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
