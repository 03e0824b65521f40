"""Choosing a checkpoint on validation tracks (relreps.selection, ``relreps select``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import tiny

from relreps import evaluation, selection, training
from relreps.cli import main


def test_validation_tracks_are_disjoint_from_every_other_track_set():
    from relreps.anchors import ANCHOR_TRACK_SEED
    from relreps.latent import LATENT_TRACK_SEED

    val = set(evaluation.VALIDATION_TRACKS)
    assert len(val) == 10 and not val & set(evaluation.EVAL_TRACKS)
    assert min(val) > LATENT_TRACK_SEED + 1_000_000 and min(val) > ANCHOR_TRACK_SEED
    assert evaluation.tracks_of("validation", 3) == evaluation.VALIDATION_TRACKS[:3]
    assert evaluation.tracks_of("held-out", 2) == evaluation.EVAL_TRACKS[:2]
    with pytest.raises(ValueError, match="unknown track set 'test': expected one of held-out, validation"):
        evaluation.tracks_of("test", 2)
    with pytest.raises(ValueError, match="from 1 to 10"):
        evaluation.tracks_of("validation", 11)


def test_select_refuses_bad_candidates_before_playing(tmp_path, monkeypatch):
    played = []
    monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: played.append(1))
    with pytest.raises(ValueError, match="at least two agents"):
        selection.select(["ppo-abs-green"])
    with pytest.raises(ValueError, match="named twice"):
        selection.select(["ppo-abs-green", "ppo-abs-green"])
    with pytest.raises(ValueError, match=r"different colours \(green, red\)"):
        selection.select(["ppo-abs-green", "ppo-abs-red"])
    assert main(["select", "ppo-abs-green", "ppo-abs-red", "--tracks", "1"]) == 2
    assert not played


def test_select_takes_a_run_folder_and_refuses_files_that_are_not_agents_before_playing(tmp_path, monkeypatch):
    import shutil

    from relreps import zoo

    agents = tmp_path / "run" / zoo.AGENTS_DIR
    agents.mkdir(parents=True)
    for steps in (32, 16):  # kept agents: copies of one shipped agent, named by steps
        card = json.loads((zoo.zoo_dir() / "ppo-abs-green.json").read_text())
        shutil.copy(zoo.zoo_dir() / card["weights"], agents / card["weights"])
        (agents / f"{steps:010d}.json").write_text(json.dumps(card))
    # an evaluation stored beside them, as `relreps zoo ship --selected` expects it
    (agents / "0000000016.eval-10-tracks.json").write_text(json.dumps({"agent": "0000000016", "color": "green"}))
    played = []

    def fake_evaluate(agent, *, color, track_seeds, **kw):  # a score that grows with each episode played
        played.extend(track_seeds)
        return evaluation.Evaluation(color, [evaluation.Episode(s, float(len(played)), 0.0, 30, False)
                                             for s in track_seeds])

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    with pytest.raises(zoo.ZooError, match=r"eval-10-tracks.json has format None.*give the run folder"):
        selection.select(sorted(agents.glob("*.json")))
    with pytest.raises(zoo.ZooError, match="has no kept agents"):
        selection.select([tmp_path])
    with pytest.raises(ValueError, match=r"named twice among the candidates: .*0000000016.json \(a run folder"):
        selection.select([tmp_path / "run", agents / "0000000016.json"])
    bad = json.loads((agents / "0000000032.json").read_text())
    (agents / "0000000048.json").write_text(json.dumps({**bad, "algo": "nope"}))
    with pytest.raises(zoo.ZooError, match="nope") as error:  # a real card: no hint about evaluations
        selection.select([tmp_path / "run"])
    assert "not an agent card" not in str(error.value)
    (agents / "0000000048.json").write_text(json.dumps({**bad, "weights": "gone.safetensors"}))
    with pytest.raises(zoo.ZooError, match="missing weights file .*gone.safetensors"):
        selection.select([tmp_path / "run"])
    (agents / "0000000048.json").unlink()
    assert not played
    val = evaluation.VALIDATION_TRACKS
    result = selection.select([agents], tracks=2)  # RUN/agents stands for RUN
    assert [Path(c.path).name for c in result.candidates] == ["0000000016.json", "0000000032.json"]
    assert played == list(val[:2]) * 2 and result.chosen.path.endswith("0000000032.json")
    stored = json.loads(selection.validation_file(agents / "0000000016.json").read_text())
    assert [e["track_seed"] for e in stored["episodes"]] == list(val[:2]) and stored["max_steps"] == 1000
    # more tracks later (or a choice interrupted): only the episodes not yet played are played
    played.clear()
    again = selection.select([tmp_path / "run"], tracks=3)
    assert played == [val[2], val[2]]
    # (each fake episode scores the count played so far in this choice when its call ends)
    assert [c.mean_max_return for c in again.candidates] == [pytest.approx((2 + 2 + 1) / 3),
                                                             pytest.approx((4 + 4 + 2) / 3)]
    # stored episodes of other weights (a resumed run replaced the agent) or length are not reused
    stored["sha256"] = "0" * 64
    selection.validation_file(agents / "0000000016.json").write_text(json.dumps(stored))
    played.clear()
    selection.select([tmp_path / "run"], tracks=1, max_steps=1000)
    assert played == [val[0]]
    played.clear()
    selection.select([tmp_path / "run"], tracks=1, max_steps=999)
    assert played == [val[0], val[0]]
    # agent files given one by one are not written beside
    played.clear()
    selection.select([agents / "0000000016.json", agents / "0000000032.json"], tracks=1)
    assert played == [val[0], val[0]]
    # a zoo name stays a zoo name beside a folder of that name that is no run
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ppo-abs-green").mkdir()
    played.clear()
    names = [c.name for c in selection.select(["ppo-abs-green", "ppo-abs-green-s2"], tracks=1).candidates]
    assert names == ["ppo-abs-green", "ppo-abs-green-s2"] and played == [val[0], val[0]]


def test_the_choice_reports_its_standard_error_and_the_candidates_within_it():
    def cand(name, mean, std):
        return selection.Candidate(name, name, None, "0" * 64, mean, std, 0)

    # spreads 90, 110, 130 on 4 tracks: pooled sample variance (90^2 + 110^2 + 130^2) / 3 * 4 / 3
    result = selection.Selection("red", [1, 2, 3, 4], [cand("a", 700, 90), cand("b", 760, 110), cand("c", 712, 130),
                                                      cand("d", 690, 110)], best=1)
    se = ((90**2 + 110**2 + 130**2 + 110**2) / 4 * 4 / 3 / 4) ** 0.5  # 64.1
    assert result.standard_error == pytest.approx(se)
    assert [c.name for c in result.runners_up()] == ["a", "c"]  # 60 and 48 below; d is 70 below
    summary = result.summary()
    assert summary["runners_up"] == ["a", "c"] and summary["standard_error"] == pytest.approx(se)
    one = selection.Selection("red", [1], [cand("a", 700, 0), cand("b", 760, 0)], best=1)
    assert one.runners_up() == [] and one.standard_error != one.standard_error  # NaN: no spread from one track


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory):
    """A tiny run that kept an agent at 16 and 32 steps (trained once for this module's tests)."""
    run = tmp_path_factory.mktemp("selection") / "run"
    training.train(tiny(total_steps=32, checkpoint_every=16), run, keep_agents=True)
    return run


@pytest.mark.slow
def test_select_scores_each_checkpoint_on_validation_tracks_and_picks_the_best(kept_run, tmp_path, capsys):
    run = kept_run
    cards = [str(p) for p in training.kept_agents(run)]
    out = tmp_path / "selection.json"
    assert main(["select", str(run), "--tracks", "2", "--max-steps", "30", "--processes", "1", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["track_set"] == "validation" and record["tracks"] == list(evaluation.VALIDATION_TRACKS[:2])
    scores = [c["mean_max_return"] for c in record["candidates"]]
    assert [c["steps"] for c in record["candidates"]] == [16, 32]
    assert record["chosen"]["mean_max_return"] == max(scores)
    assert record["chosen"]["path"] == cards[scores.index(max(scores))]
    # each candidate's score is the evaluation protocol's on those tracks
    from relreps import zoo

    again = evaluation.evaluate(zoo.load(cards[0]), color="red", track_seeds=evaluation.VALIDATION_TRACKS[:2],
                                max_steps=30, processes=1)
    assert record["candidates"][0]["mean_max_return"] == pytest.approx(again.mean_max_return)
    stored = json.loads(selection.validation_file(cards[0]).read_text())
    assert [e["max_return"] for e in stored["episodes"]] == [e.max_return for e in again.episodes]
    assert "chosen:" in capsys.readouterr().out
    # the written file is not replaced without --overwrite
    assert main(["select", *cards, "--tracks", "1", "--out", str(out)]) == 2


@pytest.mark.slow
def test_ship_selected_ships_the_chosen_checkpoint_with_its_choice_and_evaluation(kept_run, tmp_path):
    import shutil

    from relreps import zoo

    run, dest = tmp_path / "run", tmp_path / "zoo"
    shutil.copytree(kept_run, run)
    (run / "selection.json").unlink(missing_ok=True)
    with pytest.raises(zoo.ZooError, match="no selection.json: choose a checkpoint first"):
        zoo.ship(run, "x", dest=dest, selected=True)
    cards = [str(p) for p in training.kept_agents(run)]
    assert main(["select", *cards, "--tracks", "1", "--max-steps", "20", "--processes", "1",
                 "--out", str(run / "selection.json")]) == 0
    chosen = json.loads((run / "selection.json").read_text())["chosen"]
    chosen_card = zoo.card(chosen["path"])
    # the chosen agent's evaluation beside it; the final agent's (another sha) would be refused
    ev = f"{chosen['path'][:-5]}.eval-10-tracks.json"
    # a card reports the protocol's greedy score: an evaluation with sampled actions is refused
    assert main(["evaluate", chosen["path"], "--tracks", "1", "--max-steps", "20", "--processes", "1",
                 "--out", ev, "--actions", "sampled"]) == 0
    with pytest.raises(zoo.ZooError, match="drove with sampled actions.*greedy score"):
        zoo.ship(run, "x", dest=dest, selected=True)
    assert main(["evaluate", chosen["path"], "--tracks", "1", "--max-steps", "20", "--processes", "1",
                 "--out", ev, "--overwrite"]) == 0
    assert main(["zoo", "ship", str(run), "ppo-rel-red-x", "--dest", str(dest), "--selected"]) == 0
    shipped = zoo.card(dest / "ppo-rel-red-x.json")
    assert shipped["sha256"] == chosen_card["sha256"]
    assert shipped["selection"]["steps"] == chosen["steps"] and shipped["selection"]["track_set"] == "validation"
    assert set(shipped["selection"]["candidates"]) == {"16", "32"}
    assert shipped["training"]["run_steps"] == 32 and shipped["training"]["steps"] == chosen["steps"]
    assert "hardware" in shipped["training"] and "final_eval" not in shipped["training"]
    assert shipped["evaluation"]["tracks"] == [evaluation.EVAL_TRACKS[0]]
    zoo.load(dest / "ppo-rel-red-x.json")
    # a selection whose agent is not among the run's kept agents (other weights) is refused
    record = json.loads((run / "selection.json").read_text())
    record["chosen"]["sha256"] = "0" * 64  # weights that are not the kept agent's of those steps
    (run / "selection.json").write_text(json.dumps(record))
    with pytest.raises(zoo.ZooError, match="not one of this run's kept agents"):
        zoo.ship(run, "y", dest=dest, selected=True)
