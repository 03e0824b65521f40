"""Algorithm presets, the Double DQN target, the anchor update callback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.buffers import ReplayBuffer

from relreps import algos, envs
from relreps.extractors import AbsoluteEncoder, RelativeEncoder


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(16, 84, 84, 3), dtype=np.uint8)


def _venv(n=2):
    return envs.make_vec_env("green", n_envs=n, seed=0, workers=0)


def test_ppo_preset_matches_cleanrl():
    venv = _venv(2)
    model = algos.make_model("ppo", venv, encoder_class=AbsoluteEncoder, encoder_kwargs=dict(latent_dim=32),
                             n_steps=16, seed=1)
    assert (model.n_steps, model.n_epochs, model.batch_size) == (16, 4, 8)
    assert model.gamma == 0.99 and model.gae_lambda == 0.95 and model.ent_coef == 0.01
    assert model.clip_range(1.0) == 0.1 and model.clip_range_vf(1.0) == 0.1 and model.max_grad_norm == 0.5
    assert model.learning_rate(1.0) == pytest.approx(2.5e-4) and model.learning_rate(0.5) == pytest.approx(1.25e-4)
    assert model.policy.optimizer.defaults["eps"] == 1e-5
    venv.close()


def test_bad_settings():
    venv = _venv(1)
    with pytest.raises(ValueError, match="unknown algorithm 'sac'"):
        algos.make_model("sac", venv, encoder_class=AbsoluteEncoder, encoder_kwargs={})
    with pytest.raises(ValueError, match="unknown PPO settings"):
        algos.make_model("ppo", venv, encoder_class=AbsoluteEncoder, encoder_kwargs={}, n_step=3)
    with pytest.raises(ValueError, match="minibatches"):
        algos.make_model("ppo", venv, encoder_class=AbsoluteEncoder, encoder_kwargs={}, n_steps=6)
    venv.close()


def _batch(model, rng, n=16):
    obs_space = model.observation_space
    buf = ReplayBuffer(n, obs_space, model.action_space, device="cpu", n_envs=1)
    for _ in range(n):
        o = rng.integers(0, 256, size=(1, *obs_space.shape), dtype=np.uint8)
        o2 = rng.integers(0, 256, size=(1, *obs_space.shape), dtype=np.uint8)
        buf.add(o, o2, rng.integers(0, 5, size=(1, 1)), rng.normal(size=1), np.zeros(1), [{}])
    return buf.sample(n)


@pytest.mark.parametrize("algo", ["ddqn", "dqn"])
def test_double_dqn_target(algo):
    """Double DQN values the online network's greedy action with the target network.

    The same check fails for SB3's vanilla DQN, which takes the target network's maximum."""
    venv = _venv(1)
    model = algos.make_model("ddqn", venv, encoder_class=AbsoluteEncoder, encoder_kwargs=dict(latent_dim=16),
                             learning_starts=0, buffer_size=100, seed=0)
    with torch.no_grad():  # make online and target networks disagree
        for p in model.q_net_target.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    data = _batch(model, np.random.default_rng(1))
    with torch.no_grad():
        q_online = model.q_net(data.next_observations)
        q_target = model.q_net_target(data.next_observations)
    double = data.rewards + (1 - data.dones) * 0.99 * q_target.gather(1, q_online.argmax(1, keepdim=True))
    vanilla = data.rewards + (1 - data.dones) * 0.99 * q_target.max(1, keepdim=True).values
    assert not torch.allclose(double, vanilla)  # the batch tells the two rules apart
    if algo == "ddqn":
        got = model.td_target(data, 0.99)
    else:  # what SB3's DQN.train computes
        got = vanilla
    assert torch.allclose(got, double) == (algo == "ddqn")
    venv.close()


@pytest.mark.parametrize("algo", ["ddqn", "qrdqn"])
def test_dqn_family_with_relative_encoder_learns_a_few_steps(algo, frames):
    venv = _venv(1)
    model = algos.make_model(algo, venv, encoder_class=RelativeEncoder,
                             encoder_kwargs=dict(anchors=frames, latent_dim=16), head_dim=32,
                             learning_starts=8, buffer_size=64, batch_size=4, train_freq=4,
                             target_update_interval=8, seed=0)
    cb = algos.AnchorUpdateCallback(every_steps=8)
    model.learn(24, callback=cb)
    encs = algos.relative_encoders(model)
    assert len(encs) == 2 and all(bool(e.anchors_ready) for e in encs)
    venv.close()


def _recorded_ppo(frames, monkeypatch):
    """A tiny relative PPO whose anchor updates are recorded as (PPO updates so far, steps)."""
    venv = _venv(2)
    model = algos.make_model("ppo", venv, encoder_class=RelativeEncoder,
                             encoder_kwargs=dict(anchors=frames, latent_dim=16), head_dim=32,
                             n_steps=8, seed=0)
    (enc,) = algos.relative_encoders(model)
    calls = []
    original = enc.update_anchors
    monkeypatch.setattr(enc, "update_anchors",
                        lambda steps=1: (calls.append((model._n_updates, steps)), original(steps))[1])
    return venv, model, calls


def test_ppo_anchor_update_steps_once_per_gradient_step(frames, monkeypatch):
    """The authors' update: one step of the average per gradient step (here 4 epochs x 4
    minibatches = 16 per PPO update), applied together at the next rollout's start."""
    venv, model, calls = _recorded_ppo(frames, monkeypatch)
    cb = algos.AnchorUpdateCallback()
    model.learn(3 * 16, callback=cb)
    # three rollouts: the first embeds lazily (ready flag), then 16 gradient steps' worth after each update
    assert calls == [(0, 1), (4, 16), (8, 16)]
    # every gradient step counts once: a second learn() starts with the 3rd update's steps
    calls.clear()
    model.learn(2 * 16, callback=cb, reset_num_timesteps=False)
    assert calls == [(12, 16), (16, 16)]
    # the optimiser hook goes with the training call
    model.policy.optimizer.step()
    assert cb._gradient_steps == 16
    venv.close()


def test_ppo_anchor_update_once_per_rollout(frames, monkeypatch):
    """The first zoo runs' update (per_gradient_step=False): one step per PPO update."""
    venv, model, calls = _recorded_ppo(frames, monkeypatch)
    model.learn(3 * 16, callback=algos.AnchorUpdateCallback(per_gradient_step=False))
    assert calls == [(0, 1), (4, 1), (8, 1)]
    venv.close()


@pytest.mark.parametrize("gradient_steps", [4, 3])
def test_dqn_anchor_update_gathers_16_gradient_steps(frames, monkeypatch, gradient_steps):
    """The DQN family: one step of the average per gradient step, as PPO, applied in blocks of 16
    (with 4 gradient steps per vectorised step: every 4 of them); after each application, 16 x
    (gradient steps // 16) steps have been applied, in one run or in a run resumed by a new callback."""
    venv = _venv(1)
    model = algos.make_model("ddqn", venv, encoder_class=RelativeEncoder,
                             encoder_kwargs=dict(anchors=frames, latent_dim=16), head_dim=32, seed=0,
                             learning_starts=0, buffer_size=64, batch_size=4, gradient_steps=gradient_steps)
    encoders = algos.relative_encoders(model)
    assert len(encoders) == 2  # online and target networks
    calls = []
    online = encoders[0]
    original = online.update_anchors
    monkeypatch.setattr(online, "update_anchors",
                        lambda steps=1: (calls.append((model._n_updates, steps)), original(steps))[1])
    cb = algos.anchor_update_callback("ddqn", model)
    assert cb.apply_every == algos.DQN_ANCHOR_APPLY_EVERY == 16
    model.learn(10, callback=cb)  # 10 vectorised steps of one environment
    model.learn(7, callback=algos.anchor_update_callback("ddqn", model), reset_num_timesteps=False)  # resumed
    applied = [(n, steps) for n, steps in calls if steps > 1]  # (steps=1: the lazy first embedding)
    assert applied and all(steps % 16 == 0 for _, steps in applied)
    total = 0
    for n, steps in applied:
        total += steps
        assert total == 16 * (n // 16)
    if gradient_steps == 4:
        assert [n for n, _ in applied] == [16, 32, 48, 64]  # every 4 vectorised steps
    with pytest.raises(ValueError, match="unknown anchor_update 'often'"):
        algos.anchor_update_callback("ddqn", model, "often")
    rollout = algos.anchor_update_callback("ddqn", model, "rollout")
    assert rollout.every_steps == model.target_update_interval and not rollout.per_gradient_step
    venv.close()


@pytest.mark.parametrize("algo", ["ddqn", "dqn", "qrdqn"])
def test_dqn_target_network_takes_the_online_anchors(frames, algo):
    """The target network is the online network as it was at the last target update, anchor
    embeddings included: they are copied at each update and do not move in between (the anchor
    callback moves the online encoder's only)."""
    venv = _venv(1)
    model = algos.make_model(algo, venv, encoder_class=RelativeEncoder,
                             encoder_kwargs=dict(anchors=frames, latent_dim=16), head_dim=32, seed=0,
                             learning_starts=0, buffer_size=64, batch_size=4, gradient_steps=4,
                             target_update_interval=8)
    online, target = algos.relative_encoders(model)
    assert algos.trained_relative_encoders(model) == [online]
    assert algos.relative_encoders_in(algos.target_network(model)) == [target]
    model.learn(8, callback=algos.anchor_update_callback(algo, model))  # the 8th step updates the target
    assert bool(target.anchors_ready)
    assert torch.equal(target.anchor_embeddings, online.anchor_embeddings)
    frozen = target.anchor_embeddings.clone()
    model.learn(7, callback=algos.anchor_update_callback(algo, model), reset_num_timesteps=False)
    assert not torch.equal(online.anchor_embeddings, frozen)  # 28 gradient steps: one block of 16 applied
    assert torch.equal(target.anchor_embeddings, frozen)  # no target update in steps 9-15
    model.learn(1, callback=algos.anchor_update_callback(algo, model), reset_num_timesteps=False)
    assert torch.equal(target.anchor_embeddings, online.anchor_embeddings)  # step 16: copied again
    venv.close()
