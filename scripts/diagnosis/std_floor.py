"""Diagnosis (not part of the package): do the anchors' nearly dead units spoil how
alike two relative encoders are? Usage, with two agent files of relative agents (e.g. exported with
`relreps export RUN --out X`):

    python scripts/diagnosis/std_floor.py GREEN_AGENT.json RED_AGENT.json

For one parallel drive (`latent.parallel_drive`, 1000 steps, every 4th frame) it prints the latent
metrics of the two relative representations (each encoder on its own colour) computed with the
saved anchor embeddings and with re-embedded ones, under the projection as trained (std + 1e-8) and
with the standardisation's std floored at a fraction of its largest value.
"""

import sys

import torch

from relreps import latent, zoo
from relreps.extractors import encoder_of, frames_to_tensor
from relreps.projection import relative_projection


def main(card_a: str, card_b: str) -> None:
    agents = [zoo.load(card_a), zoo.load(card_b)]
    colors = [a.color for a in agents]
    drive = latent.parallel_drive(colors, n_steps=1000, stride=4, seed=0)
    emb = []
    with torch.no_grad():
        for a in agents:
            enc = encoder_of(a)
            emb.append((enc.embed(frames_to_tensor(drive.frames(a.color))), enc.anchor_embeddings.clone(),
                        enc.embed_anchors()))
    print(f"{len(drive)} frames; {agents[0].name} ({colors[0]}) vs {agents[1].name} ({colors[1]})")
    for label, which in (("saved anchors", 1), ("re-embedded anchors", 2)):
        for floor in (None, 1e-4, 1e-3, 1e-2, 1e-1):
            r = [relative_projection(e[0], anchors=e[which], standardize=True, std_floor=floor).numpy() for e in emb]
            m = latent.metrics(latent.similarity(r[0], r[1]))
            print(f"{label:20s} floor {floor!s:6s}: matched {m.matched:.3f} unmatched {m.unmatched:.3f} "
                  f"top1 {m.top1:.1%}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
