"""The paper's published numbers, as data (Ricciardi et al., EWRL 2023, Table 1), and those of its
authors' follow-up (:data:`FOLLOW_UP`), so that chapters and the README can put them beside ours.
Nothing here is computed: these are the published values.

Table 1: PPO on CarRacing, encoder colour (rows; also the track colour) x policy colour (columns),
score = the episode's maximum return, mean and std over 5 track seeds (seed-1 agents).
"""

from __future__ import annotations

__all__ = [
    "AUTHORS_HOURS_PER_5M",
    "AUTHORS_STEPS_PER_S",
    "COLORS",
    "FOLLOW_UP",
    "TABLE1",
    "summary",
    "table_means",
]


COLORS = ("green", "red", "blue", "yellow")

#: ``TABLE1[representation][encoder colour][policy colour] = (mean, std)``.
TABLE1: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "relative": {
        "green": {"green": (714, 288), "red": (840, 94), "blue": (870, 84), "yellow": (685, 237)},
        "red": {"green": (774, 275), "red": (692, 251), "blue": (288, 105), "yellow": (638, 235)},
        "blue": {"green": (256, 163), "red": (307, 124), "blue": (690, 200), "yellow": (556, 71)},
        "yellow": {"green": (713, 204), "red": (678, 81), "blue": (167, 66), "yellow": (675, 233)},
    },
    "absolute": {
        "green": {"green": (863, 109), "red": (7, 0.7), "blue": (26, 4), "yellow": (12, 4)},
        "red": {"green": (19, 3.8), "red": (829, 116), "blue": (7, 0.7), "yellow": (7, 0.7)},
        "blue": {"green": (7, 1), "red": (7, 0.6), "blue": (759, 288), "yellow": (8, 3)},
        "yellow": {"green": (7, 0.7), "red": (33, 4), "blue": (26, 4), "yellow": (874, 85)},
    },
}

#: The authors' follow-up (their later code and report), for comparison: scores with actions
#: *sampled* from each policy, and every test episode reset to the same track (track seed 0), so
#: its "10 tracks" are ten episodes of one track; a cell is the mean over pairs of training seeds.
#: ``alone``: end-to-end agents (4 seeds x 10 episodes); ``stitched``: colour x colour stitching
#: (5 seeds x 10 episodes), ``(worst cell, best cell, off-diagonal mean)``; ``matched_cosine``: mean
#: cosine of matched frames of two colours' encoders.
FOLLOW_UP: dict[str, dict] = {
    "alone": {"relative": {"green": 832, "red": 797, "blue": 811},
              "absolute": {"green": 829, "red": 854, "blue": 852}},
    "stitched": {"relative": (776, 810, 796), "absolute": (-4, 175, 93), "absolute, map": (786, 859, 822)},
    "matched_cosine": {"relative": 0.94, "absolute": 0.23, "absolute, map": 0.92},
}

#: The authors' training speed (reported with their later code): env steps per second, hours per 5M.
AUTHORS_STEPS_PER_S = 278
AUTHORS_HOURS_PER_5M = 5.0


def summary(cells: dict[str, dict[str, float]]) -> dict[str, float]:
    """Diagonal and off-diagonal means (and the worst off-diagonal cell) of a square table of
    means, ``cells[encoder][policy]``, over the colours present in both dimensions."""
    colors = [c for c in cells if all(c in row for row in cells.values())]
    diag = [cells[c][c] for c in colors]
    off = [cells[e][p] for e in colors for p in colors if e != p]
    out = {"diagonal_mean": sum(diag) / len(diag) if diag else float("nan")}
    out["off_diagonal_mean"] = sum(off) / len(off) if off else float("nan")
    out["off_diagonal_min"] = min(off) if off else float("nan")
    out["off_diagonal_max"] = max(off) if off else float("nan")
    return out


def table_means(representation: str, colors=COLORS) -> dict[str, dict[str, float]]:
    """The paper's Table 1 means for ``representation``, restricted to ``colors``."""
    if representation not in TABLE1:
        raise ValueError(f"unknown representation {representation!r}: expected one of {tuple(TABLE1)}")
    t = TABLE1[representation]
    return {e: {p: float(t[e][p][0]) for p in colors} for e in colors}
