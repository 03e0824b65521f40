"""Recorded drives (evaluation.record_episode), the stitch explorer (built with given agents and
from a zoo folder; its Drive handler; refused pairs), the GIF for static pages and the return curve,
on tiny trained agents."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from relreps import envs, evaluation, plots, stitching, widgets, zoo

PNG = b"\x89PNG\r\n\x1a\n"
TRACK = evaluation.EVAL_TRACKS[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: tiny networks on single frames run several times faster (restored after)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def agents(explorer_agents):
    """Tiny trained agents named as the zoo names them, and their zoo folder as ``"_zoo"`` (tests/conftest.py)."""
    return explorer_agents


def _given(agents):
    return [a for k, a in agents.items() if not k.startswith("_")]


def test_record_episode_is_run_episode_plus_what_a_person_sees(agents):
    stitched = stitching.stitch(agents["ppo-rel-green"], agents["ppo-rel-red"])
    drive = evaluation.record_episode(stitched, track_seed=TRACK, max_steps=40)
    # on the encoder's colour, with the same scores as the evaluation protocol's episode
    assert drive.color == "green" and drive.track_seed == TRACK and drive.agent == stitched.name
    assert drive.episode == evaluation.run_episode(stitched.policy, "green", TRACK, max_steps=40)
    assert drive.length == 40 and drive.frames.shape == (41, 96, 96, 3) and drive.frames.dtype == np.uint8
    assert drive.actions.shape == drive.rewards.shape == drive.returns.shape == (40,)
    np.testing.assert_allclose(drive.returns, np.cumsum(drive.rewards))
    assert drive.max_return == drive.returns.max() and drive.final_return == drive.returns[-1]
    # each action is the agent's greedy choice on the agent's view of the frame before it
    for t in range(40):
        assert drive.actions[t] == evaluation.act(stitched.policy, envs.preprocess(drive.frames[t]))
    # the frames are the raw frames of the environment, replayed with the same actions
    env = envs.make_env("green", agent_view=False)
    frame, _ = env.reset(seed=TRACK)
    assert np.array_equal(frame, drive.frames[0])
    for t, a in enumerate(drive.actions):
        frame, reward, *_ = env.step(int(a))
        assert np.array_equal(frame, drive.frames[t + 1]) and reward == drive.rewards[t]
    env.close()


def test_record_episode_colour():
    class Gas:
        def predict(self, obs, deterministic=True):
            return np.array(envs.GAS), None

    with pytest.raises(ValueError, match="color is required"):
        evaluation.record_episode(Gas(), track_seed=TRACK, max_steps=5)
    drive = evaluation.record_episode(Gas(), "blue", TRACK, max_steps=5)
    assert drive.color == "blue" and (drive.actions == envs.GAS).all()
    assert drive.episode == evaluation.run_episode(Gas(), "blue", TRACK, max_steps=5)


def test_explorer_offers_only_joinable_pairs_and_drives(agents):
    ex = widgets.explorer(_given(agents), max_steps=20)
    assert ex.mode.options == ("relative", "absolute")
    # relative mode: only relative agents, a policy of another colour by default
    assert [v for _, v in ex.encoder.options] == ["ppo-rel-green", "ppo-rel-red"]
    assert (ex.encoder.value, ex.policy.value) == ("ppo-rel-green", "ppo-rel-red")
    ex.mode.value = "absolute"
    assert [v for _, v in ex.encoder.options] == [v for _, v in ex.policy.options] == ["ppo-abs-red"]
    ex.select(mode="relative", encoder="ppo-rel-red", policy="ppo-rel-green", track_seed=TRACK)
    assert ex.drive is None and bytes(ex.frame.value) == b""
    ex.button.click()  # what a click does: drive, then show frame 0, the curve and the score
    drive = ex.drive
    assert ex.error is None and drive is not None
    assert drive.agent == "ppo-rel-red+ppo-rel-green" and drive.color == "red" and drive.length == 20
    assert drive.track_seed == TRACK
    assert ex.slider.max == ex.play.max == 20 and ex.slider.value == 0
    assert bytes(ex.frame.value).startswith(PNG) and bytes(ex.curve.value).startswith(PNG)
    assert Image.open(io.BytesIO(bytes(ex.frame.value))).size == (96 * ex.scale, 96 * ex.scale)
    assert f"max return <b>{drive.max_return:.1f}</b>" in ex.score.value
    assert f"final return {drive.final_return:.1f}" in ex.score.value
    first, curve0 = bytes(ex.frame.value), bytes(ex.curve.value)
    ex.slider.value = 10  # playing back: the frame, the cursor on the curve and the step's numbers
    assert bytes(ex.frame.value) == widgets.frame_png(drive.frames[10], ex.scale) != first
    assert bytes(ex.curve.value) != curve0
    assert f"return {drive.returns[9]:.1f}" in ex.step_info.value
    assert envs.ACTIONS[drive.actions[9]] in ex.step_info.value
    # run() with arguments: the same pair, one agent with itself
    alone = ex.run(encoder="ppo-rel-red", policy="ppo-rel-red", max_steps=10)
    assert alone.agent == "ppo-rel-red" and alone.episode == evaluation.run_episode(
        agents["ppo-rel-red"].policy, "red", TRACK, max_steps=10)
    # the alignment control: the paper's stitch by default; anchor means in relative mode only
    assert ex.align.value == widgets.NO_ALIGN
    assert [v for _, v in ex.align.options] == [widgets.NO_ALIGN, "anchor-mean", "affine"]
    ex.select(align="anchor-mean")
    aligned = ex.run(encoder="ppo-rel-red", policy="ppo-rel-green", max_steps=10)
    expected = stitching.stitch(agents["ppo-rel-red"], agents["ppo-rel-green"], align="anchor-mean")
    assert aligned.agent == expected.name == "ppo-rel-red+ppo-rel-green[anchor-mean]"
    assert aligned.episode == evaluation.run_episode(expected.policy, "red", TRACK, max_steps=10)
    ex.mode.value = "absolute"
    assert ex.align.value == widgets.NO_ALIGN and [v for _, v in ex.align.options] == [widgets.NO_ALIGN, "affine"]
    with pytest.raises(ValueError, match="'anchor-mean' is not a choice in absolute mode.*'affine'"):
        ex.select(align="anchor-mean")
    # the affine map is a choice in both modes, kept when the mode changes
    ex.select(align="affine")
    ex.mode.value = "relative"
    assert ex.align.value == "affine"
    translated = ex.run(encoder="ppo-rel-green", policy="ppo-rel-red", max_steps=10)
    expected = stitching.stitch(agents["ppo-rel-green"], agents["ppo-rel-red"], align="affine")
    assert translated.agent == expected.name == "ppo-rel-green+ppo-rel-red[affine]"
    assert translated.episode == evaluation.run_episode(expected.policy, "green", TRACK, max_steps=10)
    # one agent with itself drives alone (no map fitted and thrown away)
    alone = ex.run(encoder="ppo-rel-red", policy="ppo-rel-red", max_steps=10)
    assert alone.agent == "ppo-rel-red"
    assert ex.run(encoder="ppo-rel-red", policy="ppo-rel-green", align="sideways") is None
    assert "unknown align 'sideways'" in ex.error and "'affine'" in ex.error


def test_refused_pairs_show_stitchings_error(agents):
    ex = widgets.explorer(_given(agents), max_steps=10)
    assert ex.run(encoder="ppo-rel-red", policy="ppo-abs-red") is None
    assert "cannot join a relative encoder" in ex.error and "absolute head" in ex.error
    assert "cannot join a relative encoder" in ex.status.value and ex.drive is None
    assert ex.run(encoder="ppo-rel-red", policy="ppo-rel-green", mode="absolute") is None
    assert "both agents are relative" in ex.error
    ex.select(mode="absolute")  # the controls' mode applies when the controls choose the agents
    ex.encoder.options = ex.policy.options = [("ppo-rel-red", "ppo-rel-red")]  # as if a bug offered it
    assert ex.run() is None and "both agents are relative" in ex.error
    assert ex.run(encoder="nobody", policy="ppo-rel-red") is None and "unknown agent" in ex.error
    # a good run clears the error
    assert ex.run(encoder="ppo-abs-red", policy="ppo-abs-red") is not None  # mode: the agents' own
    assert ex.error is None
    with pytest.raises(ValueError, match="relative encoder"):
        widgets.make_agent(agents["ppo-rel-green"], agents["ppo-abs-red"])


def test_explorer_and_choice_from_the_zoo(agents, monkeypatch, tmp_path):
    monkeypatch.setenv(zoo.ZOO_ENV, str(agents["_zoo"]))
    assert widgets.choose_stitch() == ("ppo-rel-green", "ppo-rel-red")  # across colours, relative
    ex = widgets.explorer(max_steps=10)  # names only: agents are loaded when first driven
    assert all(e["agent"] is None for e in ex._entries.values())
    drive = ex.run(track_seed=TRACK)
    assert drive.agent == "ppo-rel-green+ppo-rel-red" and drive.length == 10
    # fallbacks: a relative agent with itself, any agent with itself, nothing
    assert widgets.choose_stitch(["ppo-abs-red", "ppo-rel-red"]) == ("ppo-rel-red", "ppo-rel-red")
    assert widgets.choose_stitch(["ppo-abs-red"]) == ("ppo-abs-red", "ppo-abs-red")
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path))  # an empty zoo
    assert widgets.choose_stitch() is None
    empty = widgets.explorer()
    assert empty.button.disabled and "No agents" in empty.status.value
    assert empty.run() is None and "choose an encoder" in empty.error


def _fake_drive(n_steps: int, noise: bool) -> evaluation.Drive:
    rng = np.random.default_rng(0)
    if noise:  # incompressible frames: the size limit must drop frames
        frames = rng.integers(0, 256, (n_steps + 1, 96, 96, 3), dtype=np.uint8)
    else:
        frames = np.zeros((n_steps + 1, 96, 96, 3), np.uint8)
        frames[np.arange(n_steps + 1), :, np.arange(n_steps + 1) % 96] = (230, 50, 50)  # a moving line
    rewards = rng.normal(size=n_steps)
    ep = evaluation.Episode(0, float(np.cumsum(rewards).max()), float(rewards.sum()), n_steps, False)
    return evaluation.Drive("fake", "green", 0, frames, np.zeros(n_steps, np.int64), rewards,
                            np.cumsum(rewards), ep)


def _gif_frames(data: bytes) -> int:
    im = Image.open(io.BytesIO(data))
    assert im.format == "GIF" and getattr(im, "is_animated", False)
    return int(getattr(im, "n_frames", 1))


def test_gif_is_small_and_animated():
    drive = _fake_drive(999, noise=False)
    data = widgets.drive_gif(drive, max_frames=50)
    assert data.startswith(b"GIF89a") and len(data) < widgets.GIF_MAX_BYTES
    assert 2 < _gif_frames(data) <= 51  # every k-th frame, plus the last
    last = Image.open(io.BytesIO(data))
    last.seek(last.n_frames - 1)
    assert last.size == (192, 192)
    assert np.array_equal(np.asarray(last.convert("RGB"))[::2, ::2], drive.frames[-1])  # flat colours kept
    noisy = _fake_drive(200, noise=True)
    small = widgets.drive_gif(noisy, max_frames=100, max_bytes=300_000)
    assert len(small) <= 300_000 and 2 <= _gif_frames(small) < 100
    with pytest.raises(ValueError, match="under 1000 bytes"):
        widgets.drive_gif(noisy, max_bytes=1000)
    shown = widgets.show_gif(drive, max_frames=10, width=200)
    assert shown.format == "gif" and shown.data.startswith(b"GIF89a") and shown.width == 200


def test_return_curve():
    a, b = _fake_drive(30, noise=False), _fake_drive(20, noise=False)
    fig = plots.return_curve({"stitched": a, "alone": b}, title="t")
    lines = [t for t in fig.data if t.mode == "lines"]
    marks = [t for t in fig.data if t.mode == "markers+text"]
    assert [t.name for t in lines] == ["stitched", "alone"] and len(marks) == 2
    assert list(lines[0].y) == list(a.returns) and list(lines[0].x) == list(range(1, 31))
    assert marks[0].y[0] == a.returns.max() and marks[0].x[0] == int(np.argmax(a.returns)) + 1
    assert len(plots.return_curve(a).data) == 2
    with pytest.raises(ValueError, match="labels"):
        plots.return_curve([a, b], labels=["one"])


def test_recorded_frames_are_what_training_sees():
    """record_episode/run_episode preprocess raw frames themselves: the same observations as the
    agent-view environment that training and SB3 use."""
    view, raw = envs.make_env("red"), envs.make_env("red", agent_view=False)
    try:
        a, _ = view.reset(seed=321)
        b, _ = raw.reset(seed=321)
        for t in range(12):
            assert np.array_equal(a, envs.preprocess(b))
            action = (envs.GAS, envs.LEFT, envs.RIGHT)[t % 3]
            a, *_ = view.step(action)
            b, *_ = raw.step(action)
    finally:
        view.close()
        raw.close()
