"""Diagnosis (not part of the package): which zero-shot map between two encoders'
outputs, fitted on the parallel anchor frames, makes a stitched head act as its own agent does?
Usage:

    python scripts/diagnosis/affine_agreement.py > results/diagnosis/affine-agreement.txt

For the zoo's four relative and four absolute seed-1 agents, on one parallel drive
(``latent.parallel_drive``, 1000 steps, every 4th frame), each of the twelve stitches per
representation is fed the encoder's outputs mapped by: nothing (the paper's stitch), the
difference of the means over the anchor frames, an orthogonal map with one scale (Procrustes,
centred), the minimum-norm least-squares affine map, and ridge versions of it (penalty ``alpha``
times the mean eigenvalue of the centred Gram matrix; ``stitching.fit_affine``, what
``align="affine"`` does, uses ``alpha = stitching.RIDGE``).
Every map is fitted on the 3136 frames of ``scripted-3136``, each agent's in its own colour; the
drive is not among them. It prints, per stitch, how often the head picks the action the policy's
own agent picks on the same state (in its own colour), and the mean and worst over the twelve.
"""

import itertools

import numpy as np
import torch

from relreps import anchors, envs, latent, stitching, zoo


def fit(x: np.ndarray, y: np.ndarray, kind: str, alpha: float = 0.0):
    """A map ``z -> z W + b`` from ``x``'s space to ``y``'s, fitted on the rows of both."""
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    if kind == "mean":
        return lambda z: z - mx + my
    if kind == "orthogonal":
        sx, sy = np.linalg.norm(xc), np.linalg.norm(yc)
        u, _, vt = np.linalg.svd((xc / sx).T @ (yc / sy))
        w = u @ vt * (sy / sx)
    elif kind == "lstsq":  # no ridge: the minimum-norm least-squares map
        w = np.linalg.lstsq(xc, yc, rcond=None)[0]
    else:  # ridge: stitching.fit_affine, what align="affine" does with alpha = stitching.RIDGE
        w, b = (t.double().numpy() for t in stitching.fit_affine(x, y, ridge=alpha))
        return lambda z: z @ w + b
    return lambda z: (z - mx) @ w + my


def main() -> None:
    torch.set_num_threads(1)
    aset = anchors.load("scripted-3136")
    drive = latent.parallel_drive(list(envs.COLORS), n_steps=1000, stride=4, seed=0)
    maps = [("as is", None, 0.0), ("anchor-mean shift", "mean", 0.0), ("orthogonal", "orthogonal", 0.0),
            ("least squares, no ridge", "lstsq", 0.0), (f"align='affine' ({stitching.RIDGE:g})", "ridge", stitching.RIDGE)]
    maps += [(f"ridge alpha={a:g}", "ridge", a) for a in (1e-6, 1e-4, 1e-2, 1e-1)]
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
                z = on_drive[e] if kind is None else fit(on_set[e], on_set[p], kind, alpha)(on_drive[e])
                agree.append(float(np.mean(stitching.head_actions(agents[p], z) == own[p])))
            print(f"{rep:8s} {label:24s}: agreement mean {np.mean(agree):.3f}, worst {np.min(agree):.3f}; "
                  f"per stitch {' '.join(f'{a:.2f}' for a in agree)}")
        print(f"{rep:8s} stitches in order: {', '.join(f'{e}+{p}' for e, p in itertools.permutations(names, 2))}")


if __name__ == "__main__":
    main()
