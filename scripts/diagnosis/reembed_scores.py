"""Diagnosis (not part of the package): can a relative agent be shipped without its anchor
embeddings, re-embedding the anchor frames with its final encoder when it is loaded? Usage, with two
relative agents (zoo names or card paths) and the table measured with their saved embeddings:

    python scripts/diagnosis/reembed_scores.py GREEN RED --table SAVED.json --out OUT.json

The saved embeddings are the moving average that training kept (what the policy learnt with); with
3136 anchors they are 39 MB of a 43 MB agent file. The script drives the same 2x2 table (each agent
alone and the two plain stitches, on the tracks of ``SAVED.json``) with both agents' anchors
re-embedded (``latent.reembedded``), writes it to ``OUT.json`` and prints the two tables side by side
with each agent's anchor drift (``latent.anchor_drift``).
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

from relreps import latent, stitching, zoo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("green")
    parser.add_argument("red")
    parser.add_argument("--table", required=True, help="the 2x2 table with the saved embeddings")
    parser.add_argument("--out", required=True, help="where to write the re-embedded table (JSON)")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists: choose another --out (nothing is overwritten)")
    saved = stitching.load_table(args.table)
    agents = {c: zoo.load(p) for c, p in (("green", args.green), ("red", args.red))}
    for c, a in agents.items():
        if a.color != c:
            raise SystemExit(f"{a.name} drives on {a.color}, expected {c}")
    drift = {c: latent.anchor_drift(a) for c, a in agents.items()}
    fresh = {c: latent.reembedded(a) for c, a in agents.items()}
    t = stitching.table(fresh, fresh, track_seeds=saved["tracks"], processes=args.processes,
                        max_steps=saved["max_steps"])
    # the copies carry the saved agents' cards: their checksums must not let this table pass for theirs
    t["sha256"] = {side: {c: None for c in names} for side, names in t["sha256"].items()}
    t["reembedded_anchors"] = True
    t["anchor_drift"] = drift
    with tempfile.NamedTemporaryFile("w", dir=out.parent, suffix=".tmp", delete=False) as f:
        json.dump(t, f, indent=1)
    os.replace(f.name, out)
    print(f"tracks {saved['tracks']}; mean max return, saved embeddings -> re-embedded")
    for c, d in drift.items():
        print(f"  {c}: anchor drift mean cosine {d['mean_cosine']:.3f}, norm ratio {d['norm_ratio']:.2f}")
    for e in ("green", "red"):
        for p in ("green", "red"):
            a, b = saved["cells"][e][p]["mean_max_return"], t["cells"][e][p]["mean_max_return"]
            what = "alone" if e == p else "stitched"
            print(f"  {e} encoder + {p} head ({what}): {a:6.1f} -> {b:6.1f}")


if __name__ == "__main__":
    main()
