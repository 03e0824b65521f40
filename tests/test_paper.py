"""The paper's Table 1 as data: complete, and consistent with the summary the paper states."""

import math

import pytest

from relreps import paper


def test_table1_is_complete():
    for rep in ("relative", "absolute"):
        assert set(paper.TABLE1[rep]) == set(paper.COLORS)
        for row in paper.TABLE1[rep].values():
            assert set(row) == set(paper.COLORS)
            assert all(len(v) == 2 and v[1] >= 0 for v in row.values())


def test_summary_matches_the_published_summary():
    # The paper's Table 1: Rel diagonal 693, off-diagonal 564 (worst 167); Abs 831, 14 (best 33)
    rel = paper.summary(paper.table_means("relative"))
    absolute = paper.summary(paper.table_means("absolute"))
    assert round(rel["diagonal_mean"]) == 693 and round(rel["off_diagonal_mean"]) == 564
    assert rel["off_diagonal_min"] == 167
    assert round(absolute["diagonal_mean"]) == 831 and round(absolute["off_diagonal_mean"]) == 14
    assert absolute["off_diagonal_max"] == 33


def test_summary_of_a_subset_and_of_one_colour():
    two = paper.summary(paper.table_means("relative", colors=("green", "red")))
    assert two["diagonal_mean"] == (714 + 692) / 2 and two["off_diagonal_mean"] == (840 + 774) / 2
    one = paper.summary({"green": {"green": 5.0}})
    assert one["diagonal_mean"] == 5.0 and math.isnan(one["off_diagonal_mean"])
    with pytest.raises(ValueError, match="unknown representation"):
        paper.table_means("translated")


def test_follow_up_numbers_are_consistent():
    for kind, (worst, best, mean) in paper.FOLLOW_UP["stitched"].items():
        assert worst <= mean <= best, kind
    for rep, alone in paper.FOLLOW_UP["alone"].items():
        assert set(alone) <= set(paper.COLORS) and all(700 < v < 900 for v in alone.values()), rep
    assert paper.FOLLOW_UP["matched_cosine"]["relative"] > paper.FOLLOW_UP["matched_cosine"]["absolute"]
