"""Saved stitching tables: stitching.load_table reads back what relreps table writes and refuses
broken files; sample_episodes draws the same sample for the same seed; recheck re-drives a sample,
finds a stored return that is not what the agents drive, and refuses agents with other weights."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from relreps import plots, stitching, zoo

TRACKS = [10_000_002, 10_000_003]
STEPS = 8


def _agent(color: str, seed: int) -> zoo.Agent:
    """An untrained absolute PPO agent with a card (no anchors to embed: fast), its checksum made up."""
    torch.manual_seed(seed)
    card: zoo.Card = {"format": zoo.FORMAT_VERSION, "algo": "ppo", "representation": "absolute", "color": color,
            "seed": 1, "head_dim": 16, "encoder_kwargs": {"latent_dim": 16}, "sha256": f"{seed:064d}"}
    return zoo.Agent(name=f"ppo-abs-{color}-{seed}", policy=zoo.build_policy(card), card=card)


@pytest.fixture(scope="module")
def agents():
    return {"red": _agent("red", 1), "green": _agent("green", 2)}


@pytest.fixture(scope="module")
def saved(agents, tmp_path_factory):
    """A 2 x 2 table (2 tracks, 8-step episodes) written as relreps table writes it, and its path."""
    t = stitching.table(agents, agents, track_seeds=TRACKS, processes=1, max_steps=STEPS)
    t.update(algo="ppo", representation="absolute", score="mean and std of the episode maximum return")
    path = tmp_path_factory.mktemp("results") / "table-ppo-absolute.json"
    path.write_text(json.dumps(t, indent=1) + "\n")
    return t, path


def test_load_table_gives_back_the_table(saved):
    t, path = saved
    loaded = stitching.load_table(path)
    assert loaded == t
    assert stitching.scores(loaded) == stitching.scores(t)
    assert stitching.summary(loaded) == stitching.summary(t)
    plots.stitching_heatmaps({"saved": stitching.scores(loaded)})


def _broken(t: dict, how: str):
    t = copy.deepcopy(t)
    cell = t["cells"]["green"]["red"]
    if how == "cross-seed":
        return {"seeds": [1, 2], "tables": {"1-1": t, "1-2": t}, "summary": {}}
    if how == "no cells":
        del t["cells"]
    elif how == "no tracks":
        t["tracks"] = []
    elif how == "max_steps":
        t["max_steps"] = 0
    elif how == "align":
        t["align"] = "rotate"
    elif how == "affine without ridge":
        t["align"] = "affine"
    elif how == "actions":
        t["actions"] = "softmax"
    elif how == "greedy named":
        t["actions"] = "greedy"
    elif how == "cell actions":
        cell["actions"] = "sampled"
    elif how == "greedy cell named":
        cell["actions"] = "greedy"
    elif how == "checksums":
        del t["sha256"]["policies"]["red"]
    elif how == "missing row":
        del t["cells"]["red"]
    elif how == "missing cell":
        del t["cells"]["red"]["green"]
    elif how == "colour":
        cell["color"] = "red"
    elif how == "episode missing":
        cell["episodes"].pop()
    elif how == "other track":
        cell["episodes"][0]["track_seed"] = 1
    elif how == "max_return":
        cell["episodes"][0]["max_return"] = None
    elif how == "mean":
        cell["episodes"][0]["max_return"] += 1.0
    elif how == "std":
        cell["std_max_return"] += 1.0
    return t


BROKEN = {
    "cross-seed": "one per \\(encoder, policy\\) pair of seeds or algorithms.*read it with load_factor_tables",
    "no cells": "not a stitching table: no cells",
    "no tracks": "'tracks' must be", "max_steps": "'max_steps' must be", "align": "unknown align 'rotate'",
    "affine without ridge": "records its fit's ridge", "actions": "unknown actions 'softmax'",
    "greedy named": "records 'actions': 'greedy'; a greedy table leaves the key out",
    "cell actions": "driven with sampled actions, the table's are greedy",
    "greedy cell named": "records 'actions': 'greedy'; a greedy cell leaves the key out", "checksums": "one checksum per agent of 'policies'",
    "missing row": "one row per encoder colour", "missing cell": "row 'red' must have one cell per policy colour",
    "colour": "driven on 'red', not on its encoder's colour 'green'", "episode missing": "one episode per track",
    "other track": "one episode per track", "max_return": "finite max_return",
    "mean": "mean_max_return is .*, but its episodes give", "std": "std_max_return is .*, but its episodes give",
}


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_load_table_refuses_a_broken_file(saved, tmp_path, how):
    path = tmp_path / "table.json"
    path.write_text(json.dumps(_broken(saved[0], how)))
    with pytest.raises(ValueError, match=BROKEN[how]) as e:
        stitching.load_table(path)
    assert str(path) in str(e.value)


def test_load_table_refuses_what_is_no_table(tmp_path):
    path = tmp_path / "table.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        stitching.load_table(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        stitching.load_table(path)


def test_the_sample_is_fixed_by_its_seed(saved):
    t = saved[0]
    every = [(e, p, s) for e in t["cells"] for p in t["cells"][e] for s in TRACKS]
    first = stitching.sample_episodes(t, 3, seed=4)
    assert first == stitching.sample_episodes(copy.deepcopy(t), 3, seed=4)
    assert len(set(first)) == 3 and set(first) <= set(every)
    assert first == sorted(first, key=every.index)  # in the table's order
    assert len({tuple(stitching.sample_episodes(t, 3, seed=s)) for s in range(10)}) > 1
    assert stitching.sample_episodes(t, len(every), seed=0) == every
    for n in (0, len(every) + 1, 1.5, True):
        with pytest.raises(ValueError, match="episodes must be an integer from 1 to the table's 8"):
            stitching.sample_episodes(t, n)


def test_recheck_drives_the_sample_again(saved, agents):
    t = stitching.load_table(saved[1])
    r = stitching.recheck(t, agents, agents, episodes=3, seed=1, processes=1)
    assert r["match"] and r["checked_by"] == "sha256" and (r["sampled"], r["of"]) == (3, 8)
    assert [(e["encoder"], e["policy"], e["track_seed"]) for e in r["episodes"]] == \
        stitching.sample_episodes(t, 3, seed=1)
    assert all(e["driven"] == e["stored"] and e["difference"] == 0 for e in r["episodes"])


def test_recheck_finds_a_tampered_return(saved, agents):
    t = copy.deepcopy(saved[0])
    cell = t["cells"]["green"]["red"]
    cell["episodes"][1]["max_return"] += 0.01  # the cell's mean with it, so that the file still loads
    cell["mean_max_return"] = sum(e["max_return"] for e in cell["episodes"]) / len(cell["episodes"])
    r = stitching.recheck(t, agents, agents, episodes=8, processes=1)
    assert not r["match"]
    wrong = [e for e in r["episodes"] if not e["match"]]
    assert [(e["encoder"], e["policy"], e["track_seed"]) for e in wrong] == [("green", "red", TRACKS[1])]
    assert wrong[0]["difference"] == pytest.approx(0.01)
    # a difference within the tolerance is a match; one just outside it is not
    cell["episodes"][1]["max_return"] -= 0.01 - 1e-9
    assert stitching.recheck(t, agents, agents, episodes=8, processes=1)["match"]
    cell["episodes"][1]["max_return"] += 1e-5
    assert not stitching.recheck(t, agents, agents, episodes=8, processes=1)["match"]


def test_recheck_refuses_other_agents(saved, agents):
    t = saved[0]
    other = {**agents, "red": _agent("red", 3)}  # other weights, other checksum
    with pytest.raises(ValueError, match=f"other weights: red encoder ppo-abs-red-3 has weights {3:064d}"):
        stitching.recheck(t, other, other, episodes=1)
    no_sum = {**agents, "green": zoo.Agent("x", agents["green"].policy, {**agents["green"].card, "sha256": None})}
    with pytest.raises(ValueError, match="green policy x has weights without a checksum"):
        stitching.recheck(t, agents, no_sum, episodes=1)
    with pytest.raises(ValueError, match="the table's encoders are red, green; got green, red"):
        stitching.recheck(t, dict(reversed(list(agents.items()))), agents, episodes=1)
    # a table that records no checksums: refused, unless matched by name (and then the names must be its)
    old = {k: v for k, v in t.items() if k != "sha256"}
    with pytest.raises(ValueError, match="records no weights' checksums.*by_name=True"):
        stitching.recheck(old, agents, agents, episodes=1)
    with pytest.raises(ValueError, match="other agents: red encoder is ppo-abs-red-3, the table's is ppo-abs-red-1"):
        stitching.recheck(old, other, other, episodes=1, by_name=True)
    r = stitching.recheck(old, agents, agents, episodes=1, by_name=True, processes=1)
    assert r["match"] and r["checked_by"] == "name"


@pytest.mark.slow
def test_recheck_stitches_as_the_table_did(agents, monkeypatch):
    t = stitching.table(agents, agents, track_seeds=TRACKS[:1], processes=1, max_steps=STEPS, align="affine")
    made = []
    stitch = stitching.stitch

    def recorded(enc, pol, *args, **kwargs):
        made.append((enc.name, pol.name, kwargs.get("align")))
        return stitch(enc, pol, *args, **kwargs)

    monkeypatch.setattr(stitching, "stitch", recorded)
    r = stitching.recheck(t, agents, agents, episodes=4, processes=1)
    assert r["match"] and r["sampled"] == 4
    # the two stitches with the table's affine maps; each agent alone is not stitched
    assert made == [("ppo-abs-red-1", "ppo-abs-green-2", "affine"), ("ppo-abs-green-2", "ppo-abs-red-1", "affine")]
    with pytest.raises(ValueError, match="fitted with ridge 0.0"):
        stitching.recheck({**t, "ridge": 0.0}, agents, agents, episodes=1)


def test_recheck_drives_a_sampled_table_with_sampled_actions(agents, tmp_path, monkeypatch):
    from relreps import evaluation

    t = stitching.table(agents, agents, track_seeds=TRACKS, processes=1, max_steps=STEPS, actions="sampled")
    path = tmp_path / "table-ppo-absolute-sampled.json"
    path.write_text(json.dumps(t))
    loaded = stitching.load_table(path)
    assert loaded["actions"] == "sampled"
    rules = []
    evaluate = evaluation.evaluate

    def recorded(*args, **kwargs):
        rules.append(kwargs.get("actions"))
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", recorded)
    assert stitching.recheck(loaded, agents, agents, episodes=8, processes=1)["match"]
    assert rules == ["sampled"] * 4  # every cell driven again as the table drove it


def test_summary_of_a_sub_table(saved):
    t = saved[0]
    red = stitching.summary(t, colors=["red"])
    assert red["diagonal_mean"] == t["cells"]["red"]["red"]["mean_max_return"]
    assert stitching.summary(t, colors=["red", "green"]) == stitching.summary(t)


@pytest.fixture(scope="module")
def saved_seeds(agents, tmp_path_factory):
    """A file of relreps table --cross-seed's form (seeds 1 and 2, 2 colours), and its path."""
    second = {}
    for k, color in enumerate(agents, start=5):
        a = _agent(color, k)
        second[color] = zoo.Agent(f"{a.name}-s2", a.policy, {**a.card, "seed": 2})
    data = stitching.seed_tables({1: agents, 2: second}, track_seeds=TRACKS, processes=1, max_steps=STEPS)
    data.update(representation="absolute", algo="ppo")
    path = tmp_path_factory.mktemp("results") / "table-ppo-absolute-seeds-1-2.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    return json.loads(path.read_text()), path


def test_load_factor_tables_gives_back_the_tables(saved_seeds, tmp_path):
    data, path = saved_seeds
    loaded = stitching.load_factor_tables(path)
    assert loaded == data and list(loaded["tables"]) == ["1-1", "1-2", "2-1", "2-2"]
    assert set(loaded["summary"]["groups"]) == {"alone", "seed", "colour", "colour+seed"}
    assert stitching.summary(loaded["tables"]["1-2"]) == stitching.summary(data["tables"]["1-2"])
    # the same tables across algorithms (relreps table --algos): groups by algorithm
    names = {"1": "ppo", "2": "ddqn"}
    tables = {"-".join(names[v] for v in k.split("-")): t for k, t in data["tables"].items()}
    algos = {"algos": ["ppo", "ddqn"], "colors": data["colors"], "tables": tables,
             "summary": stitching.factor_summary(tables, "algo"), "seed": 1}
    (tmp_path / "algos.json").write_text(json.dumps(algos))
    loaded = stitching.load_factor_tables(tmp_path / "algos.json")
    assert list(loaded["tables"]) == ["ppo-ppo", "ppo-ddqn", "ddqn-ppo", "ddqn-ddqn"]
    assert set(loaded["summary"]["groups"]) == {"alone", "algorithm", "colour", "colour+algorithm"}


def _broken_seeds(data: dict, how: str):
    data = copy.deepcopy(data)
    if how == "one table":
        return data["tables"]["1-1"]
    if how == "no factor":
        del data["seeds"]
    elif how == "repeated seed":
        data["seeds"] = [1, 1]
    elif how == "seed as text":
        data["seeds"] = ["1", "2"]
    elif how == "missing pair":
        del data["tables"]["2-1"]
    elif how == "pair order":
        data["tables"] = dict(reversed(list(data["tables"].items())))
    elif how == "broken table":
        data["tables"]["2-1"]["cells"]["green"]["red"]["std_max_return"] += 1.0
    elif how == "other colours":
        data["colors"] = ["red"]
    elif how == "protocol":
        data["tables"]["1-2"]["max_steps"] += 1
    elif how == "file's align":
        data["align"] = "affine"
    elif how == "pair's agents":
        data["tables"]["1-2"] = data["tables"]["1-1"]
    elif how == "one seed's agents":
        data["tables"]["2-2"] = data["tables"]["1-1"]
    elif how == "no summary":
        del data["summary"]
    elif how == "summary":
        data["summary"]["groups"]["seed"]["mean"] += 1.0
    return data


BROKEN_SEEDS = {
    "one table": "holds one table, not one per pair of seeds or algorithms: read it with load_table",
    "no factor": "expected the tables of relreps table --cross-seed \\('seeds'\\) or --algos",
    "repeated seed": "'seeds' must be a non-empty list of distinct values",
    "seed as text": "seed '1': expected a training seed, an integer >= 1",
    "missing pair": "one table per ordered pair of seeds \\(1-1, 1-2, 2-1, 2-2\\), got 1-1, 1-2, 2-2",
    "pair order": "one table per ordered pair of seeds",
    "broken table": "table '2-1': cell \\(green encoder, red policy\\): std_max_return is",
    "other colours": "table '1-1': its encoders are red, green, the file's colours red",
    "protocol": "table '1-2' has max_steps 9, table '1-1' has 8",
    "file's align": "the file says align 'affine', its tables None",
    "pair's agents": "table '1-2': its policies are not those of table '2-2'",
    "one seed's agents": "tables '1-1' and '2-2' have the same red agent \\(ppo-abs-red-1\\)",
    "no summary": "has no 'summary'",
    "summary": "its summary is not what its tables give \\(factor_summary\\): summary.groups.seed.mean",
}


@pytest.mark.parametrize("how", sorted(BROKEN_SEEDS))
def test_load_factor_tables_refuses_a_broken_file(saved_seeds, tmp_path, how):
    path = tmp_path / "table-seeds.json"
    path.write_text(json.dumps(_broken_seeds(saved_seeds[0], how)))
    with pytest.raises(ValueError, match=BROKEN_SEEDS[how]) as e:
        stitching.load_factor_tables(path)
    assert str(path) in str(e.value)


def test_load_factor_tables_refuses_what_is_no_table(tmp_path):
    path = tmp_path / "table-seeds.json"
    for text, message in (("{not json", "not JSON"), ("[1, 2]", "expected a JSON object")):
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            stitching.load_factor_tables(path)
