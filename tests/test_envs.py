"""The environment: colours, actions, tracks, the fast renderer's identity, the agent's view."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import relreps  # noqa: F401  (registers the environment id)
from relreps import envs
from relreps.envs import ColorCarRacing

PAPER = ["green", "red", "blue", "yellow"]


# -- colours -----------------------------------------------------------------------------------


def test_paper_colours():
    assert envs.resolve_color("green") == ((102, 204, 102), (102, 230, 102))
    assert envs.resolve_color("red") == ((204, 102, 102), (230, 102, 102))
    assert envs.resolve_color("blue") == ((102, 102, 204), (102, 102, 230))
    assert envs.resolve_color("yellow") == ((230, 230, 102), (255, 255, 102))


@pytest.mark.parametrize("name", PAPER)
def test_triple_rule_gives_paper_grass(name):
    bg, grass = envs.COLORS[name]
    assert envs.resolve_color(bg) == (bg, grass)
    assert envs.color_name(bg) == name


def test_custom_triple():
    assert envs.resolve_color((10, 20, 250)) == ((10, 20, 250), (10, 20, 255))
    assert envs.resolve_color(np.array([40, 40, 7])) == ((40, 40, 7), (66, 66, 7))
    assert envs.color_name((10, 20, 30)) == "10,20,30"
    assert envs.resolve_color("10,20,30") == envs.resolve_color((10, 20, 30))
    assert envs.color_name("204,102,102") == "red"


@pytest.mark.parametrize(
    "bad", ["purple", "", "1,2", "1,2,300", "a,b,c", (1, 2), (1, 2, 3, 4), (256, 0, 0), (-1, 0, 0), (1.5, 2, 3), (True, 0, 0), None, 7]
)
def test_bad_colour_names_the_choices(bad):
    with pytest.raises(ValueError) as e:
        envs.resolve_color(bad)
    msg = str(e.value)
    assert all(name in msg for name in PAPER) and "(R, G, B)" in msg


def test_bad_colour_through_every_entry_point():
    for make in (lambda: ColorCarRacing("purple"), lambda: envs.make_env("purple"),
                 lambda: gym.make(envs.ENV_ID, color=(1, 2))):
        with pytest.raises(ValueError, match="green"):
            make()
    with pytest.raises(ValueError, match="renderer"):
        ColorCarRacing("green", renderer="opengl")


@pytest.mark.parametrize("name", PAPER)
def test_frames_show_the_colour(name):
    env = ColorCarRacing(name)
    env.reset(seed=3)
    for _ in range(60):
        obs, *_ = env.step(envs.NOOP)
    # stock smoothscale's fixed-point filter darkens flat areas by up to 2 (102 -> 100)
    values, counts = np.unique(obs[:80].reshape(-1, 3).astype(int), axis=0, return_counts=True)
    top = values[np.argsort(counts)[::-1][:3]]

    def near(c):
        return any(np.abs(t - np.array(c)).max() <= 2 for t in top)

    assert near(envs.COLORS[name][0]) and near(envs.COLORS[name][1]) and near(envs.ROAD_COLOR)
    assert not any(near(envs.COLORS[c][0]) for c in PAPER if c != name)


# -- spaces, registration, actions, tracks -----------------------------------------------------


def test_registered_env_and_spaces():
    env = gym.make(envs.ENV_ID, color="red")
    assert env.spec.max_episode_steps == 1000
    assert env.action_space == gym.spaces.Discrete(5)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (96, 96, 3) and obs.dtype == np.uint8
    agent = envs.make_env("red")
    obs, _ = agent.reset(seed=0)
    assert agent.observation_space.shape == obs.shape == (84, 84, 3) and obs.dtype == np.uint8
    assert agent.unwrapped.color == "red"


def test_episode_truncates_at_max_steps():
    env = envs.make_env("green", max_episode_steps=30)
    env.reset(seed=1)
    for _ in range(30):
        _, _, terminated, truncated, _ = env.step(envs.BRAKE)
    assert truncated and not terminated


def _after(actions, warmup=60):
    env = ColorCarRacing("green")
    env.reset(seed=0)
    for _ in range(warmup):
        env.step(envs.GAS)
    before = (env.car.hull.angle, math.hypot(*env.car.hull.linearVelocity))
    for a in actions:
        env.step(a)
    return before, (env.car.hull.angle, math.hypot(*env.car.hull.linearVelocity))


def test_actions_do_what_their_names_say():
    (a0, _), (a1, _) = _after([envs.RIGHT] * 20)
    assert a1 < a0  # clockwise: a right turn
    (a0, _), (a1, _) = _after([envs.LEFT] * 20)
    assert a1 > a0
    (_, v0), (_, v1) = _after([envs.GAS] * 20)
    assert v1 > v0
    (_, v0), (_, v1) = _after([envs.BRAKE] * 20)
    assert v1 < v0 * 0.5
    assert envs.ACTIONS[envs.RIGHT] == "right" and len(envs.ACTIONS) == 5


def test_invalid_action_raises():
    env = ColorCarRacing("green")
    env.reset(seed=0)
    with pytest.raises(gym.error.InvalidAction):
        env.step(5)


def test_same_seed_same_track_and_frames():
    a, b, c = ColorCarRacing("blue"), ColorCarRacing("blue"), ColorCarRacing("blue")
    a.reset(seed=42)
    b.reset(seed=42)
    c.reset(seed=43)
    assert np.array_equal(np.array(a.track), np.array(b.track))
    assert len(a.track) != len(c.track) or not np.allclose(np.array(a.track), np.array(c.track))
    rng = np.random.default_rng(0)
    for act in rng.integers(0, 5, size=80):
        oa, ra, *_ = a.step(int(act))
        ob, rb, *_ = b.step(int(act))
        assert ra == rb and np.array_equal(oa, ob)


# -- the fast renderer is the stock renderer ---------------------------------------------------


RASTERIZERS = ["gfxdraw"] + (["numba"] if envs._numba_available() else [])


def _drive_both(color, seed, steps, rng, rasterizer):
    fast, stock = ColorCarRacing(color, renderer="fast"), ColorCarRacing(color, renderer="gymnasium")
    fast.rasterizer = rasterizer
    of, _ = fast.reset(seed=seed)
    os_, _ = stock.reset(seed=seed)
    frames = mismatched = 0
    frames += 1
    mismatched += not np.array_equal(of, os_)
    for t in range(steps):
        # stretches of driving, then random steering/braking that leaves the track
        a = envs.GAS if (t // 60) % 2 == 0 and rng.random() < 0.7 else int(rng.integers(5))
        of, _, done_f, *_ = fast.step(a)
        os_, _, done_s, *_ = stock.step(a)
        frames += 1
        mismatched += not np.array_equal(of, os_)
        assert done_f == done_s
        if done_f:
            break
    return frames, mismatched


@pytest.mark.slow
def test_fast_renderer_identical_while_driving():
    rng = np.random.default_rng(2024)
    colors = PAPER + [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(4)]
    total = bad = 0
    for i, color in enumerate(colors):
        rasterizer = RASTERIZERS[i % len(RASTERIZERS)]
        n, m = _drive_both(color, seed=int(rng.integers(10**6)), steps=220, rng=rng, rasterizer=rasterizer)
        total, bad = total + n, bad + m
    assert total >= 1700 and bad == 0


def test_banded_path_draws_most_frames_identically(monkeypatch):
    # the fast path that the benchmark times (fill, polygons and x-shrink band by band, the car
    # drawn in place) must be the one ordinary driving takes, and stay identical
    pytest.importorskip("numba")
    calls = []
    original = ColorCarRacing._draw_and_shrink_bands

    def counted(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(ColorCarRacing, "_draw_and_shrink_bands", counted)
    n, m = _drive_both("red", seed=4242, steps=200, rng=np.random.default_rng(5), rasterizer="numba")
    assert m == 0 and n == 201
    assert len(calls) >= 150  # zoom-in frames and the HUD beyond its strip take the other path


def test_car_rows_bound_the_pixels_the_car_draws():
    # the banded path draws the car in place only on the bands within _car_rows: every pixel
    # that gymnasium's Car.draw paints must lie inside that bound, whatever the car does
    import pygame

    env = ColorCarRacing("green")
    env.reset(seed=77)
    rng = np.random.default_rng(77)
    surf = pygame.Surface((1000, 800))
    slack = []
    for t in range(400):
        a = envs.GAS if t < 80 or rng.random() < 0.4 else int(rng.integers(5))  # fast, then wild
        env.step(a)
        angle, zoom, trans, c, s = env._view()
        surf.fill((0, 0, 0))
        env.car.draw(surf, zoom, trans, angle, False)
        rows = np.flatnonzero(pygame.surfarray.pixels2d(surf).any(axis=0))
        lo, hi = env._car_rows(c, s, zoom, trans)
        assert lo <= rows.min() and rows.max() <= hi, (t, lo, hi, rows.min(), rows.max())
        slack += [rows.min() - lo, hi - rows.max()]
    assert min(slack) >= 1  # the bound is not off by a hair


def _render_both(env):
    env.renderer = "gymnasium"
    stock = env._render("state_pixels")
    env.renderer = "fast"
    fast = env._render("state_pixels")
    return stock, fast


def test_numba_rasterizer_is_used_when_installed():
    pytest.importorskip("numba")
    assert ColorCarRacing("green").rasterizer == "numba"
    assert ColorCarRacing("green", renderer="gymnasium").rasterizer == "gfxdraw"


@pytest.mark.slow
def test_fast_renderer_identical_in_unusual_states():
    """Same state, both renderers: playfield edges and corners (the background square leaves the
    screen), zoom-in, angles at multiples of 90 degrees, HUD indicators beyond their strip."""
    rng = np.random.default_rng(7)
    env = ColorCarRacing("yellow")
    env.reset(seed=11)
    for _ in range(30):
        env.step(envs.GAS)
    hull = env.car.hull
    checked = 0
    for k in range(400):
        if k % 4 == 0:
            env.set_color(PAPER[k // 4 % 4] if k % 8 else tuple(int(v) for v in rng.integers(0, 256, 3)))
        x, y = rng.uniform(-envs._cr.PLAYFIELD - 60, envs._cr.PLAYFIELD + 60, size=2)
        if k % 3 == 0:  # on the track
            x, y = env.track[int(rng.integers(len(env.track)))][2:4]
        angle = rng.choice([0.0, math.pi / 2, -math.pi, 3 * math.pi / 2, 2 * math.pi]) if k % 5 == 0 \
            else rng.uniform(-10, 10)
        hull.position = (float(x), float(y))
        hull.angle = float(angle)
        env.t = float(rng.choice([0.0, 0.3, 0.99, 1.0, 5.0]))
        hull.linearVelocity = tuple(rng.uniform(-150, 150, size=2))
        for w in env.car.wheels:
            w.omega = float(rng.choice([0.0, rng.uniform(-300, 300), rng.uniform(-900, 900)]))
        env.reward = float(rng.uniform(-200, 1000))
        env.rasterizer = RASTERIZERS[k % len(RASTERIZERS)]
        stock, fast = _render_both(env)
        assert np.array_equal(stock, fast), f"state {k}: x={x:.1f} y={y:.1f} angle={angle:.3f} t={env.t}"
        checked += 1
    assert checked == 400


# -- the agent's view ---------------------------------------------------------------------------


def _area_reference(img: np.ndarray) -> np.ndarray:
    """Area average in exact fractions (slow and obvious)."""
    from fractions import Fraction

    scale = Fraction(96, 84)
    out = np.zeros((84, 84, 3))
    weights = np.zeros((84, 96))
    for i in range(84):
        lo, hi = i * scale, (i + 1) * scale
        for a in range(96):
            overlap: Fraction = min(hi, Fraction(a + 1)) - max(lo, Fraction(a))
            weights[i, a] = float(max(Fraction(0), overlap) / scale)
    for c in range(3):
        out[..., c] = weights @ img[..., c].astype(np.float64) @ weights.T
    return out


def test_preprocess_is_exact_area_average():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    got = envs.preprocess(img)
    ref = _area_reference(img)
    assert got.shape == (84, 84, 3) and got.dtype == np.uint8
    assert np.abs(got - ref).max() <= 0.5 + 1e-9
    assert np.array_equal(got, np.floor(ref + 0.5 + 1e-9).astype(np.uint8))


def test_preprocess_batches_and_constants():
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, size=(2, 5, 96, 96, 3), dtype=np.uint8)
    out = envs.preprocess(batch)
    assert out.shape == (2, 5, 84, 84, 3)
    assert np.array_equal(out[1, 3], envs.preprocess(batch[1, 3]))
    const = np.full((96, 96, 3), 173, np.uint8)
    assert (envs.preprocess(const) == 173).all()


@pytest.mark.parametrize("bad", [np.zeros((84, 84, 3), np.uint8), np.zeros((96, 96, 3), np.float32),
                                 np.zeros((96, 96), np.uint8)])
def test_preprocess_rejects_other_inputs(bad):
    with pytest.raises(ValueError, match="96, 96, 3"):
        envs.preprocess(bad)


# -- vectorised environments --------------------------------------------------------------------


def _run(venv, actions):
    out = [venv.reset()]
    for a in actions:
        obs, rew, done, info = venv.step(a)
        out.append((obs, rew, done, [i.get("terminal_observation") is not None for i in info]))
    return out


@pytest.mark.slow
def test_vec_env_workers_match_in_process():
    rng = np.random.default_rng(3)
    actions = [rng.integers(0, 5, size=5) for _ in range(40)]
    ref = envs.make_vec_env("blue", n_envs=5, seed=5, workers=0)
    par = envs.make_vec_env("blue", n_envs=5, seed=5, workers=2)
    try:
        assert par.num_envs == 5 and len(par.processes) == 2
        a, b = _run(ref, actions), _run(par, actions)
        assert np.array_equal(a[0], b[0]) and a[0].shape == (5, 84, 84, 3)
        for (o1, r1, d1, t1), (o2, r2, d2, t2) in zip(a[1:], b[1:]):
            assert np.array_equal(o1, o2) and np.array_equal(r1, r2) and np.array_equal(d1, d2)
            assert t1 == t2
        assert par.get_attr("color") == ["blue"] * 5
        assert par.env_method("set_color", "red", indices=[3]) == [None]
        assert par.get_attr("color", indices=[2, 3, 4]) == ["blue", "red", "blue"]
        assert par.env_is_wrapped(gym.Wrapper) == [True] * 5
        par.set_attr("lap_complete_percent", 0.5, indices=[0, 4])
        assert par.get_attr("lap_complete_percent") == [0.5, 0.95, 0.95, 0.95, 0.5]
    finally:
        ref.close()
        par.close()


def test_vec_env_seeds_tracks():
    venv = envs.make_vec_env("blue", n_envs=2, seed=5, workers=0)
    first, _ = envs.make_env("blue").reset(seed=6)
    assert np.array_equal(venv.reset()[1], first)  # env i gets seed + i
    venv.close()
    with pytest.raises(ValueError, match="n_envs"):
        envs.make_vec_env("blue", n_envs=0)


def test_bench_cli_reports_identical_frames(capsys):
    """The benchmark runs and checks identity (its timings are not asserted: not a test's job)."""
    from relreps.cli import main

    assert main(["bench", "env", "--tracks", "2", "--steps", "15", "--seed", "99"]) == 0
    out = capsys.readouterr().out
    assert "mismatches: 0" in out and "speed-up" in out


def test_bench_profile_accounts_for_the_whole_step(capsys):
    """The per-part profile adds up to the step it times and puts pygame back as it found it."""
    pytest.importorskip("numba")
    import pygame

    from relreps.bench import profile_fast
    from relreps.cli import main

    smoothscale = pygame.transform.smoothscale
    prof = profile_fast(tracks=1, steps_per_track=80, seed=3)
    assert pygame.transform.smoothscale is smoothscale
    assert prof.steps == 80 and len(prof.parts) == 7
    assert all(ms >= 0 for ms in prof.parts.values()), prof.parts
    assert sum(prof.parts.values()) == pytest.approx(prof.step_ms)
    for part in ("background fill + polygons (bands)", "x-shrink of the bands (smoothscale)",
                 "car (gymnasium's Car.draw)", "physics + env bookkeeping"):
        assert prof.parts[part] > 0, part  # the banded path ran (80 steps: past the zoom-in)
    assert main(["bench", "env", "--tracks", "1", "--steps", "60", "--profile"]) == 0
    assert "where a fast step's" in capsys.readouterr().out
