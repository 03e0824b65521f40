"""Diagnosis (not part of the package): which zero-shot map between two encoders'
outputs, fitted on the parallel anchor frames, makes a stitched head act as its own agent does?
Usage:

    python scripts/diagnosis/affine_agreement.py > results/diagnosis/affine-agreement.txt

For the zoo's four relative and four absolute seed-1 agents, on one parallel drive
(``latent.parallel_drive``, 1000 steps, every 4th frame), each of the twelve stitches per
representation is fed the encoder's outputs mapped by: nothing (the paper's stitch), the
difference of the means over the anchor frames, an orthogonal map with one scale (Procrustes,
centred), the minimum-norm least-squares affine map, and the ridge version of it that
``align="affine"`` uses (penalty ``align.RIDGE`` times the mean eigenvalue of the centred Gram
matrix); all fitted by :func:`relreps.align.fit`.
Every map is fitted on the 3136 frames of ``scripted-3136``, each agent's in its own colour; the
drive is not among them. It prints, per stitch, how often the head picks the action the policy's
own agent picks on the same state (in its own colour), and the mean and worst over the twelve.
"""

import itertools

import numpy as np
import torch

from relreps import align, anchors, envs, latent, stitching, zoo


def main() -> None:
    torch.set_num_threads(1)
    aset = anchors.load("scripted-3136")
    drive = latent.parallel_drive(list(envs.COLORS), n_steps=1000, stride=4, seed=0)
    maps = [("as is", None, 0.0), ("anchor-mean shift", "mean-shift", 0.0), ("orthogonal", "orthogonal", 0.0),
            ("least squares, no ridge", "least-squares", 0.0), (f"align='affine' ({align.RIDGE:g})", "affine", align.RIDGE)]
    maps += [(f"ridge alpha={a:g}", "affine", a) for a in (1e-6, 1e-4, 1e-2, 1e-1)]
    print(f"{len(drive)} parallel drive frames; maps fitted on the {aset.n_anchors} frames of {aset.name}")
    for rep in ("relative", "absolute"):
        names = [zoo.agent_name("ppo", rep, c) for c in envs.COLORS]
        agents = {n: zoo.load(n) for n in names}
        on_set = {n: latent.embed(a, aset.frames(a.color)).astype(np.float64) for n, a in agents.items()}
        on_drive = {n: latent.embed(a, drive.frames(a.color)).astype(np.float64) for n, a in agents.items()}
        own = {n: stitching.head_actions(agents[n], on_drive[n]) for n in names}
        for label, kind, alpha in maps:
            agree = []
            for e, p in itertools.permutations(names, 2):
                z = on_drive[e] if kind is None else align.fit(on_set[e], on_set[p], kind, ridge=alpha)(on_drive[e])
                agree.append(float(np.mean(stitching.head_actions(agents[p], z) == own[p])))
            print(f"{rep:8s} {label:24s}: agreement mean {np.mean(agree):.3f}, worst {np.min(agree):.3f}; "
                  f"per stitch {' '.join(f'{a:.2f}' for a in agree)}")
        print(f"{rep:8s} stitches in order: {', '.join(f'{e}+{p}' for e, p in itertools.permutations(names, 2))}")


if __name__ == "__main__":
    main()
