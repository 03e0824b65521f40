"""Diagnosis (not part of the package): is a failing relative stitch an offset between
the two relative spaces? Usage, with two relative agents (zoo names or card paths):

    python scripts/diagnosis/anchor_offset.py ppo-rel-green ppo-rel-red

On one parallel drive (``latent.parallel_drive``, 1000 steps, every 4th frame), each agent's encoder
sees the drive in its own colour: ``R_a`` and ``R_b``, the relative representations of the same
states. The script feeds each policy head the other encoder's representations, as they are, moved by
the difference of the two encoders' mean over the drive (an oracle: it uses frames of both colours),
and moved by the difference of their means over their own anchor frames (what
``stitching.stitch(..., align="anchor-mean")`` does, zero-shot), and prints how often the head then
picks the action its own agent picks on the same state, and its action shares.
"""

import sys

import numpy as np

from relreps import envs, latent, stitching, zoo


def cosine(x: np.ndarray, y: np.ndarray) -> float:
    return float((x * y).sum() / np.linalg.norm(x) / np.linalg.norm(y))


def main(name_a: str, name_b: str) -> None:
    a, b = zoo.load(name_a), zoo.load(name_b)
    drive = latent.parallel_drive([a.color, b.color], n_steps=1000, stride=4, seed=0)
    r = {x.name: latent.embed(x, drive.frames(x.color)) for x in (a, b)}
    own = {x.name: stitching.head_actions(x, r[x.name]) for x in (a, b)}
    drive_mean = {n: v.mean(0) for n, v in r.items()}
    anchor_mean = {x.name: stitching.anchor_mean(x).cpu().numpy() for x in (a, b)}
    print(f"{len(drive)} parallel frames; {a.name} on {a.color}, {b.name} on {b.color}")
    print(f"mean relative representation over the drive: cosine of the two {cosine(*drive_mean.values()):.3f}")
    d_drive = drive_mean[a.name] - drive_mean[b.name]
    d_anchor = anchor_mean[a.name] - anchor_mean[b.name]
    print(f"offset a - b: over the drive |{np.linalg.norm(d_drive):.2f}|, over the anchors "
          f"|{np.linalg.norm(d_anchor):.2f}|, cosine of the two offsets {cosine(d_drive, d_anchor):.3f}")
    for enc, pol in ((a, b), (b, a)):
        x = r[enc.name]
        shifts = {"as is": 0.0,
                  "drive-mean shift (oracle)": drive_mean[pol.name] - drive_mean[enc.name],
                  "anchor-mean shift (zero-shot)": anchor_mean[pol.name] - anchor_mean[enc.name]}
        for label, shift in shifts.items():
            acts = stitching.head_actions(pol, (x + shift).astype(np.float32))
            shares = ", ".join(f"{n} {np.mean(acts == i):.2f}" for i, n in enumerate(envs.ACTIONS) if n in
                               ("left", "right", "gas"))
            print(f"{enc.name} encoder + {pol.name} head, {label:30s}: picks {pol.name}'s action on "
                  f"{np.mean(acts == own[pol.name]):.1%} of frames; {shares}")
        own_shares = ", ".join(f"{n} {np.mean(own[pol.name] == i):.2f}" for i, n in enumerate(envs.ACTIONS)
                               if n in ("left", "right", "gas"))
        print(f"{pol.name} on its own: {own_shares}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
