"""Diagnosis (not part of the package): the relative-recipe pilots side by side, one table read
from the files their commands wrote. Usage:

    python scripts/diagnosis/pilots.py > results/diagnosis/pilots.md

Each row is a recipe at some number of training steps: green and red runs of the same seed (1), each
measured with `relreps latent GREEN RED` on the parallel drive (238 frames of a track no run uses,
each encoder on its own colour: matched / unmatched cosine, top-1 retrieval, linear CKA, and how
often each plain stitch picks the policy's own agent's action, frame by frame), and at the end of a
pilot its 2x2 table (`relreps table --colors green red --representations relative ...`, 5 held-out
tracks; the zoo's agents: the 10-track Table 1). A file that does not exist yet leaves its cells
empty, and a row with no file yet is left out. (The cost of an update of each recipe, `relreps bench update`, is in the lab notes.)
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "results"
D = RESULTS / "diagnosis"

def checkpoints(tag: str, steps=(200, 300, 400, 500), table_at: int | tuple[int, ...] | None = 500
                ) -> dict[str, tuple[Path, Path | None]]:
    """A pilot's files: its latent comparison at each of ``steps`` (thousands), its 2x2 table at
    ``table_at`` (one step or several)."""
    tables = (table_at,) if isinstance(table_at, int) else tuple(table_at or ())
    return {f"{k}K": (D / f"latent-{tag}-green-{k}K-vs-red-{k}K.json",
                      D / f"table-ppo-relative-green-red-{tag}-{k}K.json" if k in tables else None)
            for k in steps}


#: recipe -> (what it is, {steps: (latent file, table file or None)})
PILOTS: dict[str, tuple[str, dict[str, tuple[Path, Path | None]]]] = {
    "zoo": (
        "the zoo's: 256-d latent with a parameter-free LayerNorm, centred projection, 256 anchors of "
        "`scripted-3136`, anchor average 0.999 per gradient step",
        {"200K": (D / "latent-layernorm-centred-green-200K-vs-red-200K.json", None),
         "2M": (RESULTS / "latent-ppo-rel-green-ppo-rel-red.json", RESULTS / "table-ppo-relative.json")},
    ),
    "(a) authors'": (
        "3136 convolution features and anchors (`scripted-3136`), per-dimension standardisation, "
        "no latent norm, anchor average 0.999 per gradient step",
        checkpoints("authors-config"),
    ),
    "(b) authors', agent anchors": (
        "(a) with anchors recorded by the trained absolute agent (`agent-3136`)",
        checkpoints("agent-anchors"),
    ),
    "(c) zoo, 1024 anchors": (
        "the zoo's recipe with 1024 anchors instead of 256",
        checkpoints("1024-anchors"),
    ),
    "(d) zoo, agent anchors": (
        "the zoo's recipe with anchors recorded by the trained absolute agent (`agent-3136`)",
        checkpoints("agent-anchors-zoo"),
    ),
    "(b) to 2M, chosen": (
        "the recipe chosen, (b), trained to 2M steps (green fell at 700-800K); measured as its files load, "
        "anchors re-embedded",
        checkpoints("authors-recipe", steps=range(100, 2001, 100), table_at=None),
    ),
    "(e) (b) + RMS norm": (
        "(b) with each frame's 3136 features divided by their root mean square (`--latent-norm rms`), 2M steps",
        checkpoints("authors-rms", steps=range(100, 2001, 100), table_at=None),
    ),
    "(e2) (e) again": (
        "(e) trained again from the start with the same command and seed on another machine (an AVX2 CPU), "
        "to 2M steps: a second sample of (e), whose first runs were stopped at 510K",
        checkpoints("authors-rms-2m", steps=range(100, 2001, 100), table_at=300),
    ),
    "(e3) (e) a third time": (
        "(e) trained a third time from the start, same command and seed, on an AVX-512 CPU: green to 2M "
        "steps first, red beside it at low priority",
        checkpoints("authors-rms-e3", steps=range(100, 2001, 100), table_at=(1200, 1300)),
    ),
    "(e3) chosen on validation": (
        "(e3)'s checkpoint of each colour chosen on the 10 validation tracks (`relreps select RUN`): green "
        "1600K, red 200K, stitched although 1.4M steps apart; the 2x2 table on the 10 held-out tracks",
        {"1600K / 200K": (D / "latent-authors-rms-e3-green-1600K-vs-red-200K.json",
                          D / "table-ppo-relative-green-red-authors-rms-e3-selected.json")},
    ),
    "(f) (e), fresh anchors": (
        "(e) with the anchors embedded afresh at every update instead of averaged (`--alpha 0`): the "
        "policy trains on the anchor embeddings its agent file loads with; 2M-step schedule, stopped at 227K "
        "(neither colour learnt)",
        checkpoints("authors-rms-fresh", steps=range(100, 2001, 100), table_at=None),
    ),
    "(g) (e), alpha 0.99": (
        "(e) with a tenth of the average's memory (`--alpha 0.99` per gradient step: about 100 gradient "
        "steps, 13K environment steps), 2M-step schedule, stopped at 131K",
        checkpoints("authors-rms-a99", steps=range(100, 2001, 100), table_at=None),
    ),
}


def agreement(latent: dict, encoder_colour: str) -> str:
    """How often the plain stitch with ``encoder_colour``'s encoder picks the policy's own action."""
    st = latent.get("stitch_agreement", {})
    names = dict(zip(latent["colors"], latent["names"]))
    for s in st.get("stitched", {}).values():
        if s["encoder"] == names[encoder_colour] and s["policy"] != s["encoder"]:
            return f"{s['with_policy_agent']:.0%}"
    return ""


def reembedded(path: Path) -> Path:
    """The file of the same measurement with each agent's anchors embedded again by its final weights."""
    return path.with_name(path.stem + "-reembedded" + path.suffix)


def latent_cells(latent_file: Path, *, actions: bool) -> list[str]:
    if not latent_file.is_file():
        return [""] * (6 if actions else 3)
    d = json.loads(latent_file.read_text())
    m = d["metrics"]
    cells = [f"{m['matched']:.3f}", f"{m['unmatched']:.3f}", f"{m['top1']:.1%}"]
    if actions:
        cka = d.get("cka")
        cells += ["" if cka is None else f"{cka:.3f}", agreement(d, "green"), agreement(d, "red")]
    return cells


def table_cells(table_file: Path | None) -> list[str]:
    if table_file is None or not table_file.is_file():
        return ["", ""]
    t = json.loads(table_file.read_text())["cells"]

    def score(e: str, p: str) -> str:
        return f"{t[e][p]['mean_max_return']:.0f}"

    return [f"{score('green', 'green')} / {score('red', 'red')}", f"{score('green', 'red')} / {score('red', 'green')}"]


def row(recipe: str, steps: str, latent_file: Path, table_file: Path | None) -> str:
    cells = [recipe, steps, *latent_cells(latent_file, actions=True), *table_cells(table_file)]
    tables = [] if table_file is None else [f for f in (table_file, reembedded(table_file)) if f.is_file()]
    cells += [str(len(json.loads(tables[0].read_text())["cells"]["green"]["green"]["episodes"])) if tables else ""]
    cells += latent_cells(reembedded(latent_file), actions=False)
    cells += table_cells(reembedded(table_file) if table_file is not None else None)
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    print("| recipe | steps | matched | unmatched | top-1 | CKA | actions: green enc + red head | "
          "red enc + green head | alone: green / red | stitched: green enc / red enc | tracks | "
          "re-embedded: matched | unmatched | top-1 | alone | stitched |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for recipe, (_, steps) in PILOTS.items():
        for s, (latent_file, table_file) in steps.items():
            tables = () if table_file is None else (table_file, reembedded(table_file))
            if any(f.is_file() for f in (latent_file, reembedded(latent_file), *tables)):
                print(row(recipe, s, latent_file, table_file))
    print()
    for recipe, (what, steps) in PILOTS.items():
        if any(f.is_file() or reembedded(f).is_file() for files in steps.values() for f in files if f is not None):
            print(f"- **{recipe}**: {what}.")
    print("\n**Re-embedded**: the same measurements with each agent's anchor embeddings made anew by its final "
          "weights (`relreps latent --reembed-anchors`; the 2x2 table: "
          "`python scripts/diagnosis/reembed_scores.py`), as an agent file without them is loaded "
          "(`relreps train --anchor-embeddings reembedded`), instead of the moving average that training kept.")
    print("\nLinear CKA compares the two representations up to a rotation; with 3136 anchors (3136 "
          "dimensions) and 238 frames it is biased upwards, so the CKA of (a) and (b) is not comparable with "
          "the 256- and 1024-anchor rows. An empty cell: not measured (the zoo's 200K runs were compared before "
          "`relreps latent` reported CKA and actions).")


if __name__ == "__main__":
    main()
