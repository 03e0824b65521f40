"""Parallel anchors: recording, replay identity across colours, index choice, storage, the CLI."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest

from relreps import anchors, envs
from relreps.cli import main


@pytest.fixture(scope="module")
def recipe() -> anchors.Recipe:
    return anchors.record(n_steps=260, burst_every=100, burst_length=30, first_track_seed=123_456)


@pytest.fixture(scope="module")
def replays(recipe) -> dict[str, anchors.Replay]:
    return {c: anchors.replay(recipe, c, raw=True) for c in ("green", "red")}


def test_recording_is_reproducible(recipe):
    again = anchors.record(n_steps=260, burst_every=100, burst_length=30, first_track_seed=123_456)
    assert again.track_seeds == recipe.track_seeds and again.actions == recipe.actions
    other = anchors.record(n_steps=260, burst_every=100, burst_length=30, first_track_seed=123_456, seed=1)
    assert other.actions != recipe.actions  # different bursts
    assert recipe.n_steps == 260


def test_bursts_repeat_one_action(recipe):
    acts = recipe.actions[0]
    assert len(set(acts[100:130])) == 1 and len(set(acts[200:230])) == 1
    assert len(set(acts[:100])) > 1  # the driver itself varies its actions


class _PixelAgent:
    """A stand-in for a trained agent: its action depends on the pixels it sees (channels first)."""

    card: ClassVar[dict] = {"sha256": "0" * 64, "training": {"steps": 0}}

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        assert obs.shape == (3, envs.OBS_SIZE, envs.OBS_SIZE) and deterministic
        return np.array(int(obs[0, 40:60, 30:54].astype(np.int64).sum()) % 5), None


def test_agent_driver_acts_on_what_it_sees_in_its_colour():
    agent = _PixelAgent()
    rec = anchors.record(anchors.AgentDriver(agent, name="pixel"), n_steps=120, burst_every=60,
                         burst_length=20, first_track_seed=4242, color="red")
    assert rec.info["driver"] == {"type": "AgentDriver", "agent": "pixel", "agent_sha256": "0" * 64,
                                  "agent_steps": 0}
    assert rec.info["color"] == "red"
    frames = anchors.replay(rec, "red").frames
    acts = rec.actions[0]
    for t, a in enumerate(acts):
        if 60 <= t < 80:
            assert a == acts[60]  # a burst overrides the agent
        else:
            assert a == int(agent.predict(frames[t].transpose(2, 0, 1))[0])
    # the same drive seen in green would have given other actions: the colour reached the agent
    green = anchors.replay(rec, "green").frames
    assert any(int(agent.predict(green[t].transpose(2, 0, 1))[0]) != acts[t] for t in range(60))


def test_scripted_driver_drives_a_lap():
    env = envs.ColorCarRacing("green")
    env.reset(seed=77)
    driver, total = anchors.ScriptedDriver(), 0.0
    for _ in range(1000):
        _, r, terminated, _, info = env.step(driver(env))
        total += r
        if terminated:
            break
    assert info.get("lap_finished") and total > 800


def test_replay_is_byte_identical(recipe, replays):
    again = anchors.replay(recipe, "green", raw=True)
    assert np.array_equal(again.frames, replays["green"].frames)
    assert len(again.frames) == recipe.n_steps + len(recipe.actions)


def test_replay_in_other_colour_is_the_same_state(replays):
    g, r = replays["green"], replays["red"]
    assert np.array_equal(g.poses, r.poses)  # same car poses, frame by frame
    assert not np.array_equal(g.frames, r.frames)
    diff = (g.frames != r.frames).any(axis=-1)
    # only the background and grass change: where the frames differ, green is greenish there
    gf = g.frames.astype(int)
    assert (gf[..., 1] > gf[..., 0] + 20)[diff].mean() > 0.95
    # and road, car and HUD pixels stay: most pixels that are grey in green are unchanged
    grey = (gf[..., 0] == gf[..., 1]) & (gf[..., 1] == gf[..., 2])
    assert (~diff)[grey].mean() > 0.99


def test_choose_indices(recipe):
    pool = set(recipe.pool().tolist())
    idx = anchors.choose_indices(recipe, 100, seed=3)
    assert len(set(idx.tolist())) == 100 and set(idx.tolist()) <= pool
    assert np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, anchors.choose_indices(recipe, 100, seed=3))
    assert not np.array_equal(idx, anchors.choose_indices(recipe, 100, seed=4))
    # no frame from the camera's zoom-in at an episode start
    starts = np.cumsum([0] + [len(a) + 1 for a in recipe.actions[:-1]])
    assert all(not (s <= i < s + anchors.ZOOM_FRAMES) for i in idx for s in starts)
    with pytest.raises(ValueError, match="between 1 and"):
        anchors.choose_indices(recipe, len(pool) + 1)


@pytest.fixture(scope="module")
def small_set(recipe):
    idx = anchors.choose_indices(recipe, 64, seed=0)
    frames = anchors.replay_anchors(recipe, idx, ["green", "blue"], processes=1)
    aset = anchors.AnchorSet(name="tiny", recipe=recipe, indices=idx, checksums={})
    aset._frames.update(frames)
    return aset


@pytest.mark.slow
def test_save_load_roundtrip(small_set, tmp_path):
    path = small_set.save(tmp_path / "tiny")
    loaded = anchors.load(path)
    assert loaded.name == "tiny" and loaded.stored_colors == ["blue", "green"]
    assert np.array_equal(loaded.indices, small_set.indices)
    for c in ("green", "blue"):
        f = loaded.frames(c)
        assert f.shape == (64, 84, 84, 3) and f.dtype == np.uint8
        assert np.array_equal(f, small_set._frames[c])
    assert loaded.frames("red").shape == (64, 84, 84, 3)  # not stored: replayed on demand
    assert anchors.verify(loaded, processes=1) == {"blue": True, "green": True}


def test_no_silent_overwrite(small_set, tmp_path):
    path = small_set.save(tmp_path / "keep")
    before = (path / "anchors.json").read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        small_set.save(path)
    assert (path / "anchors.json").read_bytes() == before


def test_corrupted_file_is_rejected(small_set, tmp_path):
    path = small_set.save(tmp_path / "bad")
    f = path / f"green{anchors.SUFFIX}"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(anchors.AnchorError, match="sha256.*corrupted"):
        anchors.load(path)


def test_tampered_checksum_fails_verification(small_set, tmp_path):
    path = small_set.save(tmp_path / "tampered")
    card = json.loads((path / "anchors.json").read_text())
    card["checksums"]["green"] = "0" * 64
    (path / "anchors.json").write_text(json.dumps(card))
    loaded = anchors.load(path)
    with pytest.raises(anchors.AnchorError, match="do not match their checksum"):
        loaded.frames("green")
    assert anchors.verify(loaded, ["green"], processes=1) == {"green": False}


def test_unknown_set_lists_the_available_ones():
    with pytest.raises(anchors.AnchorError, match="available: .*scripted-3136"):
        anchors.load("no-such-set")


@pytest.mark.slow
def test_shipped_set():
    assert "scripted-3136" in anchors.available()
    aset = anchors.load("scripted-3136")
    assert aset.n_anchors == 3136 and aset.stored_colors == sorted(envs.COLORS)
    frames = {c: aset.frames(c) for c in envs.COLORS}
    assert all(f.shape == (3136, 84, 84, 3) for f in frames.values())
    assert not np.array_equal(frames["green"], frames["red"])


@pytest.mark.slow
def test_shipped_set_replays_identically():
    """The stored frames are what a replay of the stored recipe gives today (~20 s a colour)."""
    aset = anchors.load("scripted-3136")
    assert anchors.verify(aset, ["red"], processes=1) == {"red": True}


# -- the CLI ----------------------------------------------------------------------------------


def test_cli_collect_show_verify(tmp_path, capsys):
    out = tmp_path / "cli-set"
    args = ["anchors", "collect", "cli", "--out", str(out), "--steps", "120", "--n-anchors", "16",
            "--colors", "green", "yellow", "--burst-every", "60", "--burst-length", "10"]
    assert main(args) == 0
    assert main(["anchors", "show", str(out)]) == 0
    assert "16 (from a pool of 71 frames)" in capsys.readouterr().out
    assert main(["anchors", "verify", str(out)]) == 0
    assert capsys.readouterr().out.count("identical") == 2
    png = tmp_path / "grid.png"
    assert main(["anchors", "grid", str(out), "--out", str(png), "--count", "4"]) == 0
    assert png.stat().st_size > 1000
    # a second collect into the same place is refused, and the first set survives
    before = (out / "anchors.json").read_bytes()
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "anchors.json").read_bytes() == before


def test_cli_bad_colour(tmp_path, capsys):
    rc = main(["anchors", "collect", "x", "--out", str(tmp_path / "x"), "--colors", "purple"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown colour 'purple'" in err and "yellow" in err
    assert not (tmp_path / "x").exists()
