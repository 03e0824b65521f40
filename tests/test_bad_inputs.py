"""Bad and unusual inputs: each is refused with one clear error before any work or file is written,
nothing a user made is lost, and an agent trained with a custom anchor set loads from anywhere.

Also property-based tests (Hypothesis) of the parsers of colours, held-out track counts and
``--set`` values."""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny import tiny

from relreps import anchors, envs, evaluation, stitching, training, zoo
from relreps.cli import main
from relreps.training import TrainConfig

OBS = np.random.default_rng(0).integers(0, 256, size=(4, 3, 84, 84), dtype=np.uint8)


#: A tiny relative run on the custom anchor set ``anchors/my-set``, in ``runs/x``, from the command line.
CUSTOM_RUN = ["train", "--out", "runs/x", "--anchors", "anchors/my-set", "--color", "red", "--seed", "3",
              "--steps", "32", "--envs", "2", "--workers", "0", "--n-anchors", "16", "--latent-dim", "16",
              "--head-dim", "16", "--eval-every", "0", "--eval-tracks", "1", "--eval-max-steps", "10",
              "--checkpoint-every", "32", "--set", "n_steps=16"]




def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes: what a test compares before/after."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert "error:" in err
    return err


# ------------------------------------------------------------------------------------------
# A run trained with a custom anchor set, end to end through the command line
# ------------------------------------------------------------------------------------------


def _main_in(folder, argv) -> int:
    """``relreps argv`` run from ``folder`` (relative paths resolve there); the working folder is restored."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return main(argv)
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    """``relreps anchors``-style custom set in ``work/anchors/my-set`` and a tiny ``relreps train
    --anchors anchors/my-set`` run in ``work/runs/x``, made from ``work`` (a relative path)."""
    work = tmp_path_factory.mktemp("work")
    aset = anchors.create("my-set", colors=["red"], n_anchors=24, n_steps=120, seed=5, processes=1,
                          burst_every=60, burst_length=20)
    aset.save(work / "anchors" / "my-set")
    code = _main_in(work, CUSTOM_RUN)
    assert code == 0
    return work


@pytest.mark.slow
def test_custom_anchor_set_run_loads_anywhere(custom_run, tmp_path, monkeypatch, capsys):
    run = custom_run / "runs" / "x"
    assert (run / "done.json").is_file()
    card = json.loads((run / "agent.json").read_text())
    info = card["anchors"]
    assert info["set"] == "my-set" and info["copy"] == "agent.anchors.npy.xz"
    assert info["path"] == str((run / training.RUN_ANCHORS).resolve())  # the run's own copy of the set
    assert info["set_id"] == anchors.load(custom_run / "anchors" / "my-set").identity
    here = zoo.load(run / "agent")
    # the copy beside the card holds exactly the frames the encoder uses
    copy = anchors.read_frames(run / info["copy"])
    assert copy.shape == (16, 84, 84, 3) and anchors.frames_checksum(copy) == info["used_checksum"]
    assert np.array_equal(here.policy.pi_features_extractor.anchor_frames.numpy(), copy)
    # another working folder, the set moved away, the run moved: it loads and acts the same
    moved_set = tmp_path / "elsewhere-set"
    shutil.move(custom_run / "anchors" / "my-set", moved_set)
    try:
        moved_run = tmp_path / "moved-run"
        shutil.copytree(run, moved_run)
        monkeypatch.chdir(tmp_path)
        there = zoo.load(moved_run / "agent")
        assert np.array_equal(here.predict(OBS)[0], there.predict(OBS)[0])
        # the command line too: evaluate, export
        assert main(["evaluate", str(moved_run / "agent"), "--tracks", "1", "--max-steps", "5",
                     "--processes", "1"]) == 0
        assert main(["export", str(moved_run), "--out", str(tmp_path / "exported")]) == 0
        exported = zoo.load(tmp_path / "exported")
        assert exported.card["anchors"]["copy"] == "exported.anchors.npy.xz"
        # shipped into a zoo: the copy travels under the new name
        dest = tmp_path / "zoo"
        zoo.ship(moved_run, "ppo-rel-red-custom", dest=dest)
        shipped = zoo.load(dest / "ppo-rel-red-custom")
        assert (dest / "ppo-rel-red-custom.anchors.npy.xz").is_file()
        assert np.array_equal(here.predict(OBS)[0], shipped.predict(OBS)[0])
        # without the copy, the set is found again at the path the card recorded ...
        (moved_run / info["copy"]).unlink()
        assert np.array_equal(here.predict(OBS)[0], zoo.load(moved_run / "agent").predict(OBS)[0])
        # ... and with neither, the error says what was tried
        shutil.move(run / training.RUN_ANCHORS, tmp_path / "run-set")
        with pytest.raises(zoo.ZooError, match="cannot find the anchor frames.*my-set.*tried:.*agent.anchors.npy.xz"):
            zoo.load(moved_run / "agent")
        capsys.readouterr()
        assert main(["evaluate", str(moved_run / "agent"), "--tracks", "1"]) == 2
        assert "cannot find the anchor frames" in one_line_error(capsys)
        # a copy holding other frames is not used
        frames = copy.copy()
        frames[0] ^= 1
        (moved_run / info["copy"]).write_bytes(anchors.frames_bytes(frames))
        with pytest.raises(zoo.ZooError, match="other frames"):
            zoo.load(moved_run / "agent")
    finally:
        if moved_set.exists():
            shutil.move(moved_set, custom_run / "anchors" / "my-set")
        if (tmp_path / "run-set").exists():
            shutil.move(tmp_path / "run-set", run / training.RUN_ANCHORS)


@pytest.mark.slow
def test_a_run_on_a_custom_set_continues_from_its_own_copy_after_the_set_moved(custom_run, tmp_path):
    run = custom_run / "runs" / "x"
    moved_set = tmp_path / "elsewhere-set"
    shutil.move(custom_run / "anchors" / "my-set", moved_set)
    try:  # from another working folder, where "anchors/my-set" names nothing
        new = tmp_path / "new"
        assert _main_in(tmp_path, ["train", "--out", str(new), "--from", str(run), "--steps", "64"]) == 0
        assert (new / training.RUN_ANCHORS / "anchors.json").is_file()
        card = json.loads((new / "agent.json").read_text())
        assert card["anchors"]["set_id"] == json.loads((run / "agent.json").read_text())["anchors"]["set_id"]
        assert card["training"]["origin"]["changed"] == {"total_steps": [32, 64]}
    finally:
        shutil.move(moved_set, custom_run / "anchors" / "my-set")


def test_agents_trained_on_shipped_sets_carry_no_copy(tmp_path):
    # a relative agent of the shipped set: no frames beside it, the card names the set's identity
    card = training.card_for(tiny())
    assert card["anchors"]["set"] == "scripted-3136" and "path" not in card["anchors"]
    policy = zoo.build_policy(card)
    path = zoo.save(policy, tmp_path / "a", card)
    saved = json.loads(path.read_text())
    assert "copy" not in saved["anchors"] and not list(tmp_path.glob("*.npy.xz"))
    assert saved["anchors"]["used_checksum"] == anchors.frames_checksum(
        policy.pi_features_extractor.anchor_frames.numpy())
    zoo.load(path)


def test_shipped_agents_load_and_are_self_consistent():
    for name in zoo.available():
        info = zoo.card(name)
        zoo.check_card(info, name)
        if info["representation"] == "relative":
            assert zoo.anchor_key(info)[0] == anchors.load(anchors.SHIPPED_DIR / info["anchors"]["set"]).identity


# ------------------------------------------------------------------------------------------
# train: the run folder, settings checked at the start, a failed start leaves nothing behind
# ------------------------------------------------------------------------------------------


def test_train_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    (folder / "progress.csv").write_text("my own csv")
    before = tree(folder)
    with pytest.raises(FileExistsError, match="not a run folder"):
        training.train(tiny(), folder)
    assert tree(folder) == before
    assert main(["train", "--out", str(folder), "--steps", "32"]) == 2
    assert "not a run folder" in one_line_error(capsys)
    assert tree(folder) == before
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        training.train(tiny(), a_file)
    assert a_file.read_text() == "x"


def test_train_refuses_an_empty_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="run folder is empty"):
        training.train(tiny(), "")
    assert main(["train", "--out", "", "--steps", "32"]) == 2
    assert "run folder is empty" in one_line_error(capsys)
    assert tree(tmp_path) == {}


@pytest.mark.parametrize("bad, match", [
    (dict(eval_tracks=()), "eval_tracks is empty"),
    (dict(eval_tracks=(10_000_000, 10_000_000)), "track twice"),
    (dict(eval_max_steps=0), "eval_max_steps must be an integer >= 1"),
    (dict(eval_every=-5), "eval_every must be an integer >= 0"),
    (dict(checkpoint_every=-1), "checkpoint_every must be an integer >= 0"),
    (dict(total_steps=0), "total_steps"),
    (dict(n_envs=0), "n_envs"),
    (dict(workers=-1), "workers must be"),
    (dict(head_dim=0), "head_dim must be"),
    (dict(latent_dim=0), "latent_dim must be"),
    (dict(n_anchors=0), "n_anchors must be"),
    (dict(seed=-1), "seed must be"),
    (dict(alpha=1.0), r"alpha must be in \[0, 1\)"),
    (dict(device="tpu"), "unknown device 'tpu'.*auto, cpu, cuda"),
    (dict(anchors=""), "anchors must name an anchor set"),
    (dict(color="purple"), "unknown colour 'purple'"),
    (dict(hyperparameters={"n_step": 16}), r"unknown ppo hyper-parameter\(s\) \['n_step'\]; known: .*n_steps"),
    (dict(hyperparameters={"n_steps": "16"}), "n_steps='16': expected an integer >= 1"),
    (dict(hyperparameters={"n_steps": 0}), "n_steps=0: expected an integer >= 1"),
    (dict(hyperparameters={"anneal_lr": 1}), "anneal_lr=1: expected true or false"),
    (dict(hyperparameters={"learning_rate": float("nan")}), "learning_rate=nan: expected a finite number"),
    (dict(hyperparameters={"n_steps": 15}), "must divide into 4 minibatches"),
    (dict(algo="ddqn", hyperparameters={"n_steps": 16}), r"unknown ddqn hyper-parameter\(s\)"),
])
def test_settings_are_checked_when_made(bad, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        tiny(**bad)
    assert tree(tmp_path) == {}


@pytest.mark.parametrize("argv, match", [
    (["--anchors", "no-such-set"], "no anchor set 'no-such-set'.*available: agent-3136, scripted-3136"),
    (["--set", "n_steps"], "--set takes KEY=VALUE"),
    (["--set", "n_steps=16", "--set", "n_steps=32"], "gives n_steps twice"),
    (["--set", "=3"], "is not a setting name"),
    (["--set", "gamma=fast"], "gamma='fast': expected a finite number"),
    (["--device", "gpu0"], "unknown device 'gpu0'"),
    (["--n-anchors", "5000", "--latent-dim", "none"], "5000 anchors asked for.*has 3136"),
    (["--color", "0,0,300"], "invalid colour .*0, 0, 300"),
])
def test_a_failed_start_writes_nothing_and_can_be_retried(argv, match, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--out", str(run), "--steps", "32", "--envs", "2", "--workers", "0", "--n-anchors", "16",
            "--latent-dim", "16", "--head-dim", "16", "--eval-every", "0", "--eval-tracks", "1",
            "--eval-max-steps", "10"]
    assert main(base + argv) == 2
    err = one_line_error(capsys)
    assert re.search(match, err), err
    assert not run.exists()


def test_a_start_that_fails_before_its_first_step_is_removed(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no environments today")

    monkeypatch.setattr(training.envs, "make_vec_env", broken)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="no environments"):
        training.train(tiny(), run)
    assert not run.exists()  # so the same command can be run again
    empty = tmp_path / "empty"  # a folder the user made: kept, and left as it was
    empty.mkdir()
    with pytest.raises(RuntimeError, match="no environments"):
        training.train(tiny(), empty)
    assert empty.is_dir() and tree(empty) == {}


def test_train_checks_the_device_is_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        training.check_device("cuda")
    training.check_device("cpu")


@pytest.mark.slow
def test_a_truncated_checkpoint_is_a_clear_error(custom_run, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    shutil.copytree(custom_run / "runs" / "x", run)
    (run / "done.json").unlink()
    ckpt = run / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    before = tree(run)
    config = TrainConfig.from_json(json.loads((run / "config.json").read_text()))
    monkeypatch.chdir(custom_run)  # the config names anchors/my-set relative to where it was trained
    with pytest.raises(ValueError, match="checkpoint.pt cannot be read as a checkpoint.*truncated or corrupted"):
        training.train(config, run, resume=True)
    after = tree(run)
    for name in ("checkpoint.pt", "agent.json", "agent.safetensors", "eval.csv", "config.json"):
        assert after[name] == before[name], name


@pytest.mark.slow
def test_a_finished_run_is_not_resumed_and_keeps_its_files(custom_run, capsys):
    run = custom_run / "runs" / "x"
    before = tree(run)
    code = _main_in(custom_run, CUSTOM_RUN)
    assert code == 2 and "exists; pass resume=True (--resume)" in one_line_error(capsys)
    assert tree(run) == before


# ------------------------------------------------------------------------------------------
# anchor sets: atomic saves, checked metadata, shipped names not shadowed silently
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_set():
    recipe = anchors.record(n_steps=80, burst_every=40, burst_length=10, first_track_seed=123_457)
    idx = anchors.choose_indices(recipe, 8, seed=0)
    aset = anchors.AnchorSet(name="tiny", recipe=recipe, indices=idx, checksums={})
    aset._frames.update(anchors.replay_anchors(recipe, idx, ["green", "red"], processes=1))
    return aset


def test_an_interrupted_overwrite_keeps_the_old_set(small_set, tmp_path, monkeypatch):
    path = small_set.save(tmp_path / "tiny")
    before = tree(tmp_path)
    calls = []

    def interrupted(file, frames):
        calls.append(file)
        if len(calls) == 2:
            raise KeyboardInterrupt
        file.write_bytes(anchors.frames_bytes(frames))

    monkeypatch.setattr(anchors, "_write_frames", interrupted)
    with pytest.raises(KeyboardInterrupt):
        small_set.save(path, overwrite=True)
    assert tree(tmp_path) == before  # no half-written set, no temporary folder left
    assert anchors.load(path).identity == small_set.identity


def test_anchor_sets_are_not_written_over_other_files(small_set, tmp_path, capsys):
    with pytest.raises(FileExistsError, match="already exists"):
        small_set.save(small_set.save(tmp_path / "a"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "photo.png").write_bytes(b"mine")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not an anchor set"):
            small_set.save(mine, overwrite=overwrite)
    assert tree(mine) == {"photo.png": b"mine"}
    # the command line refuses before recording anything
    assert main(["anchors", "collect", "x", "--out", str(mine), "--steps", "50", "--n-anchors", "4"]) == 2
    assert "not an anchor set" in one_line_error(capsys)
    for argv, match in ((["--steps", "10", "--n-anchors", "20"], "cannot exceed the recorded steps"),
                        (["--burst-every", "10", "--burst-length", "10"], "must be shorter than burst_every"),
                        (["--colors", "red", "red"], "colour twice"),
                        (["--colors", "pink"], "unknown colour 'pink'")):
        assert main(["anchors", "collect", "y", "--out", str(tmp_path / "y")] + argv) == 2
        assert match in one_line_error(capsys)
        assert not (tmp_path / "y").exists()
    with pytest.raises(ValueError, match="n_steps"):
        anchors.create("z", n_steps=0)


@pytest.mark.parametrize("edit, match", [
    (lambda c: c.pop("recipe"), "lacks the field 'recipe'"),
    (lambda c: c.pop("indices"), "lacks the field 'indices'"),
    (lambda c: c.update(indices=[]), "non-empty list"),
    (lambda c: c.update(indices=[10 ** 9]), "outside the recording"),
    (lambda c: c["files"]["green"].update(file="../green.npy.xz"), "not a plain file name"),
    (lambda c: c["recipe"].update(actions=["12x"]), "malformed field"),
    (lambda c: c.update(format=7), "has format 7"),
])
def test_anchor_metadata_is_checked(small_set, tmp_path, edit, match, capsys):
    path = small_set.save(tmp_path / "tiny")
    card = json.loads((path / "anchors.json").read_text())
    edit(card)
    (path / "anchors.json").write_text(json.dumps(card))
    with pytest.raises(anchors.AnchorError, match=match):
        anchors.load(path)
    assert main(["anchors", "show", str(path)]) == 2
    assert match.split("'")[0] in one_line_error(capsys)


def test_a_shipped_name_is_not_shadowed_silently(small_set, tmp_path, monkeypatch):
    small_set.save(tmp_path / "scripted-3136")
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match=r"using the shipped set.*pass \./scripted-3136"):
        found = anchors.load("scripted-3136")
    assert found.path == anchors.SHIPPED_DIR / "scripted-3136"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert anchors.load("./scripted-3136").name == "tiny"
    with pytest.raises(anchors.AnchorError, match="no anchor set given"):
        anchors.load("")


# ------------------------------------------------------------------------------------------
# agent cards: checked against themselves and the weights
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """An untrained relative and absolute agent, saved (the shipped set's anchors)."""
    root = tmp_path_factory.mktemp("agents")
    out = {}
    for rep in ("relative", "absolute"):
        card = training.card_for(tiny(representation=rep))
        out[rep] = zoo.save(zoo.build_policy(card), root / rep, card)
    return out


@pytest.mark.parametrize("rep, edit, match", [
    ("relative", lambda c: c.update(color="green"), "says color 'green', but its training config says color 'red'"),
    ("absolute", lambda c: c.update(color="blue"), "says color 'blue', but its training config says color 'red'"),
    ("relative", lambda c: c.update(representation="absolute"), "representation 'absolute', but its training config"),
    ("absolute", lambda c: c.update(representation="relative"), "representation 'relative', but its training config"),
    ("relative", lambda c: (c.update(representation="absolute"), c.pop("config")),
     "says absolute, but it names anchors"),
    ("absolute", lambda c: (c.update(representation="relative"), c.pop("config")),
     "says relative, but the weights are those of an absolute encoder"),
    ("absolute", lambda c: c.update(algo="ddqn"), "algo 'ddqn', but its training config says algo 'ppo'"),
    ("absolute", lambda c: (c.update(algo="ddqn"), c.pop("config")), "does not match the weights"),
    ("absolute", lambda c: c.update(head_dim=32), "head_dim 32"),
    ("relative", lambda c: c["anchors"].update(color="blue"), "its anchors says color 'blue'"),
    ("relative", lambda c: c["encoder_kwargs"].update(color="blue"), "its encoder_kwargs says color 'blue'"),
    ("relative", lambda c: c["anchors"].update(used_checksum="0" * 64), "other anchor frames"),
    ("relative", lambda c: c["anchors"].update(frames_checksum="0" * 64), "cannot find the anchor frames"),
    ("absolute", lambda c: c.pop("weights"), "lacks the field 'weights'"),
    ("absolute", lambda c: c.pop("encoder_kwargs"), "lacks the field 'encoder_kwargs'"),
    ("absolute", lambda c: c.update(head_dim="16"), "'head_dim' is '16', not a int"),
    ("absolute", lambda c: c.update(weights="../x.safetensors"), "not a plain file name"),
    ("absolute", lambda c: c.update(color="Red"), "not written as relreps writes it"),
    ("absolute", lambda c: c.update(color="mauve"), "unknown colour 'mauve'"),
    ("absolute", lambda c: c["encoder_kwargs"].update(depth=3), "encoder_kwargs do not fit"),
])
def test_cards_are_checked(saved, tmp_path, rep, edit, match, capsys):
    folder = tmp_path / "agent"
    folder.mkdir()
    for f in saved[rep].parent.glob(f"{rep}.*"):
        shutil.copy(f, folder / f.name)
    path = folder / f"{rep}.json"
    card = json.loads(path.read_text())
    edit(card)
    path.write_text(json.dumps(card))
    with pytest.raises(zoo.ZooError, match=match):
        zoo.load(path)
    assert main(["evaluate", str(path), "--tracks", "1"]) == 2
    one_line_error(capsys)


def test_a_card_that_is_not_json_or_an_object(tmp_path, capsys):
    for text, match in (("{", "not valid JSON"), ("[1, 2]", "not an agent card"), ("\udcff", "not valid JSON")):
        path = tmp_path / "x.json"
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        with pytest.raises(zoo.ZooError, match=match):
            zoo.load(path)
        assert main(["evaluate", str(path)]) == 2
        assert match in one_line_error(capsys)


def test_ship_refuses_bad_names_before_reading_anything(tmp_path):
    for name in ("", "a/b", ".hidden", ".."):
        with pytest.raises(ValueError, match="invalid agent name"):
            zoo.ship(tmp_path / "no-run", name, dest=tmp_path / "zoo")
    assert not (tmp_path / "zoo").exists()


# ------------------------------------------------------------------------------------------
# stitching across anchor sets
# ------------------------------------------------------------------------------------------


def _relative(color, set_id, name):
    card = {"format": zoo.FORMAT_VERSION, "algo": "ppo", "representation": "relative", "color": color, "seed": 1,
            "head_dim": 16, "encoder_kwargs": {"anchors": "my-set", "color": color, "n_anchors": 8, "latent_dim": 16},
            "anchors": {"set": "my-set", "color": color, "frames_checksum": "-", "set_id": set_id}}
    frames = np.random.default_rng(len(name)).integers(0, 256, (8, 84, 84, 3), dtype=np.uint8)
    return zoo.Agent(name=name, policy=zoo.build_policy(card, anchor_frames=frames), card=card)


def test_a_relative_stitch_across_anchor_sets_needs_an_affine_alignment():
    a, b = _relative("red", "set-one", "a"), _relative("green", "set-two", "bb")
    for align in (None, "anchor-mean"):
        with pytest.raises(ValueError, match="different anchors.*align='affine'"):
            stitching.stitch(a, b, align=align)
    # an affine map is fitted between the two spaces on parallel frames: meaningful, accepted
    s = stitching.stitch(a, b, align="affine", affine_map=(torch.eye(8), torch.zeros(8)))
    assert s.card["stitched"]["align"] == "affine"
    # the same set (the same identity): the paper's stitch
    stitching.stitch(a, _relative("green", "set-one", "cc"))


# ------------------------------------------------------------------------------------------
# counts on the command line
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["evaluate", "ppo-abs-red", "--tracks", "-2"],
    ["evaluate", "ppo-abs-red", "--tracks", "11"],
    ["evaluate", "ppo-abs-red", "--tracks", "ten"],
    ["evaluate", "ppo-abs-red", "--max-steps", "0"],
    ["evaluate", "ppo-abs-red", "--processes", "0"],
    ["table", "--tracks", "0"],
    ["bench", "env", "--tracks", "0"],
    ["bench", "update", "--steps", "0"],
    ["bench", "update", "--repeats", "0"],
    ["latent", "ppo-rel-red", "ppo-rel-green", "--stride", "0"],
    ["anchors", "grid", "scripted-3136", "--out", "x.png", "--count", "0"],
    ["train", "--out", "x", "--eval-tracks", "0"],
    ["train", "--out", "x", "--eval-every", "-1"],
    ["train", "--out", "x", "--checkpoint-every", "-100"],
    ["train", "--out", "x", "--steps", "0"],
    ["no-such-command"],
])
def test_bad_counts_are_refused_when_parsed(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = one_line_error(capsys)
    assert "see relreps" in err
    assert tree(tmp_path) == {}


def test_evaluate_refuses_bad_settings_before_driving(capsys):
    agent = zoo.load("ppo-abs-red")
    for kw, match in ((dict(max_steps=0), "max_steps"), (dict(processes=0), "processes"),
                      (dict(track_seeds=[]), "track_seeds is empty"), (dict(color="teal"), "unknown colour")):
        with pytest.raises(ValueError, match=match):
            evaluation.evaluate(agent, **{"color": "red", **kw})


def test_an_unknown_agent_is_one_line(capsys):
    assert main(["evaluate", "no-such-agent"]) == 2
    assert "available:" in one_line_error(capsys)


# ------------------------------------------------------------------------------------------
# property-based tests of the parsers
# ------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20))
def test_colour_parser_accepts_or_refuses_cleanly(text):
    try:
        name = envs.color_name(text)
    except ValueError as e:
        assert "expected" in str(e)  # the message lists the valid choices
        return
    assert envs.color_name(name) == name  # a name reads back as itself
    background, _ = envs.resolve_color(name)
    assert envs.resolve_color(text)[0] == background


@settings(max_examples=200, deadline=None)
@given(st.tuples(*[st.integers(0, 255)] * 3), st.sampled_from(["{},{},{}", " {} , {} ,{} ", "{:03d},{},{}"]))
def test_colour_triples_round_trip(rgb, form):
    name = envs.color_name(form.format(*rgb))
    assert envs.resolve_color(name)[0] == rgb and envs.color_name(rgb) == name


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.integers(-1000, 1000), st.text(max_size=6)))
def test_track_count_parser(value):
    from relreps.cli import _track_count

    n = len(evaluation.EVAL_TRACKS)
    if isinstance(value, int):
        if 1 <= value <= n:
            assert evaluation.held_out_tracks(value) == evaluation.EVAL_TRACKS[:value]
        else:
            with pytest.raises(ValueError, match=f"from 1 to {n}"):
                evaluation.held_out_tracks(value)
        value = str(value)
    try:
        count = _track_count(value)
    except Exception as e:
        import argparse

        assert isinstance(e, argparse.ArgumentTypeError), repr(e)
        return
    assert 1 <= count <= n and count == int(value)


_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=10))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=4))
def test_set_values_round_trip(values):
    items = [f"{k}={json.dumps(v)}" for k, v in values.items()]
    assert training.parse_overrides(items) == values


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=15), max_size=3))
def test_set_parser_accepts_or_refuses_cleanly(items):
    try:
        out = training.parse_overrides(items)
    except ValueError as e:
        assert "--set" in str(e)
        return
    assert len(out) == len(items)
    for item in items:
        key, _, value = item.partition("=")
        assert key.strip() in out
        if not isinstance(out[key.strip()], str):  # read as JSON
            assert json.loads(value) == out[key.strip()] or out[key.strip()] != out[key.strip()]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(training.algos.PPO_DEFAULTS)), _values, max_size=3))
def test_hyperparameter_checks_refuse_with_a_value_error_only(overrides):
    try:
        training.check_hyperparameters("ppo", overrides, n_envs=16)
    except ValueError as e:
        assert "hyper-parameter" in str(e) or "minibatches" in str(e)
