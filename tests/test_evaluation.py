"""The evaluation protocol: scores, determinism across processes, held-out tracks, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from relreps import anchors, envs, evaluation


class Gas:
    """A stand-in policy with SB3's predict(): always accelerate (checks the observation it gets)."""

    def predict(self, obs, deterministic=True):
        assert obs.shape == (3, 84, 84) and obs.dtype == np.uint8 and deterministic
        return np.array(envs.GAS), None


def test_scores_of_one_episode():
    ep = evaluation.run_episode(Gas(), "red", 5, max_steps=120)
    # replay the same actions by hand: the running return's maximum and the final return
    env = envs.make_env("red", max_episode_steps=120)
    env.reset(seed=5)
    rewards = []
    for _ in range(120):
        _, r, terminated, truncated, _ = env.step(envs.GAS)
        rewards.append(r)
        if terminated or truncated:
            break
    running = np.cumsum(rewards)
    assert ep.length == len(rewards) == 120
    assert ep.final_return == pytest.approx(running[-1])
    assert ep.max_return == pytest.approx(running.max()) and ep.max_return >= ep.final_return
    assert not ep.lap_finished


def test_same_scores_in_any_number_of_processes():
    seeds = evaluation.EVAL_TRACKS[:3]
    one = evaluation.evaluate(Gas(), color="blue", track_seeds=seeds, processes=1, max_steps=60)
    two = evaluation.evaluate(Gas(), color="blue", track_seeds=seeds, processes=2, max_steps=60)
    assert one.episodes == two.episodes
    assert [e.track_seed for e in one.episodes] == list(seeds)
    s = one.summary()
    assert s["color"] == "blue" and len(s["episodes"]) == 3
    assert s["mean_max_return"] == pytest.approx(np.mean([e.max_return for e in one.episodes]))


def test_episodes_played_in_process_use_one_torch_thread():
    import torch

    seen: list[int] = []

    class Threads(Gas):
        def predict(self, obs, deterministic=True):
            seen.append(torch.get_num_threads())
            return super().predict(obs, deterministic)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        evaluation.evaluate(Threads(), color="red", track_seeds=evaluation.EVAL_TRACKS[:1], processes=1, max_steps=5)
        assert seen == [1] * 5 and torch.get_num_threads() == 2  # restored afterwards
    finally:
        torch.set_num_threads(before)


def test_evaluation_tracks_are_held_out():
    assert len(set(evaluation.EVAL_TRACKS)) == 10
    assert min(evaluation.EVAL_TRACKS) > anchors.ANCHOR_TRACK_SEED + 10_000


def test_bad_input():
    with pytest.raises(ValueError, match="unknown colour"):
        evaluation.evaluate(Gas(), color="pink", track_seeds=[1])
    with pytest.raises(ValueError, match="empty"):
        evaluation.evaluate(Gas(), color="green", track_seeds=[])


def test_sb3_policy_in_worker_processes():
    """A real torch policy, used in this process first, then in forked workers (no hang, same)."""
    from relreps import algos
    from relreps.extractors import AbsoluteEncoder

    venv = envs.make_vec_env("yellow", n_envs=1, seed=0, workers=0)
    model = algos.make_model("ppo", venv, encoder_class=AbsoluteEncoder,
                             encoder_kwargs=dict(latent_dim=16), head_dim=16, n_steps=8, seed=0)
    venv.close()
    seeds = evaluation.EVAL_TRACKS[:2]
    here = evaluation.evaluate(model, color="yellow", track_seeds=seeds, processes=1, max_steps=40)
    forked = evaluation.evaluate(model, color="yellow", track_seeds=seeds, processes=2, max_steps=40)
    assert here.episodes == forked.episodes


def test_forked_workers_get_a_cpu_policy():
    """Forked workers cannot use CUDA: only a torch policy off the CPU is copied (without its
    optimiser); a CPU one, or anything with predict(), is passed as is."""
    import torch

    from relreps.evaluation import _cpu_copy_if_on_gpu

    class Scripted:
        def predict(self, obs, deterministic=True):
            return np.zeros(len(obs), dtype=np.int64), None

    s = Scripted()
    assert _cpu_copy_if_on_gpu(s) is s
    m = torch.nn.Linear(2, 2)
    assert _cpu_copy_if_on_gpu(m) is m
    if torch.cuda.is_available():
        g = torch.nn.Linear(2, 2).cuda()
        g.optimizer = torch.optim.Adam(g.parameters())
        c = _cpu_copy_if_on_gpu(g)
        assert c is not g and c.weight.device.type == "cpu" and c.optimizer is None
        torch.testing.assert_close(c.weight, g.weight.cpu())


class Probabilities(Gas):
    """A stand-in actor-critic: SB3's predict() (greedy: gas) and get_distribution() with fixed
    action probabilities, gas most probable."""

    PROBS = (0.1, 0.15, 0.15, 0.55, 0.05)

    def set_training_mode(self, mode):
        assert mode is False

    def obs_to_tensor(self, obs):
        import torch

        return torch.as_tensor(obs)[None], True

    def get_distribution(self, tensor):
        import torch

        assert tensor.shape == (1, 3, 84, 84)
        return type("D", (), {"distribution": torch.distributions.Categorical(torch.tensor([self.PROBS]))})()


def test_sampled_actions_are_drawn_from_the_probabilities_and_repeat_by_track():
    seeds = evaluation.EVAL_TRACKS[:2]
    one = evaluation.evaluate(Probabilities(), color="green", track_seeds=seeds, processes=1, max_steps=50,
                              actions="sampled")
    two = evaluation.evaluate(Probabilities(), color="green", track_seeds=seeds, processes=2, max_steps=50,
                              actions="sampled")
    assert one.episodes == two.episodes and one.actions == "sampled"
    assert one.summary()["actions"] == "sampled"
    greedy = evaluation.evaluate(Probabilities(), color="green", track_seeds=seeds, processes=1, max_steps=50)
    assert "actions" not in greedy.summary()  # greedy, the protocol: files as before
    # the drive's actions follow the probabilities (each action by one uniform draw, seeded by the track)
    short = evaluation.record_episode(Probabilities(), "green", seeds[0], max_steps=50, actions="sampled")
    assert short.episode == one.episodes[0]  # the recorded drive is the evaluated episode
    drive = evaluation.record_episode(Probabilities(), "green", seeds[0], max_steps=400, actions="sampled")
    assert len(drive.actions) == 400 and np.array_equal(drive.actions[:50], short.actions)
    shares = np.bincount(drive.actions, minlength=5) / len(drive.actions)
    assert np.allclose(shares, Probabilities.PROBS, atol=0.07) and len(set(drive.actions.tolist())) == 5
    greedy_drive = evaluation.record_episode(Probabilities(), "green", seeds[0], max_steps=400)
    assert set(greedy_drive.actions.tolist()) == {envs.GAS}  # greedy: the most probable action every time
    rng = evaluation.sampling_generator(seeds[0])
    expected = [int(np.searchsorted(np.cumsum(Probabilities.PROBS), rng.random(), side="right")) for _ in range(50)]
    assert drive.actions[:50].tolist() == expected


def test_the_sampling_generator_is_not_the_tracks():
    """The environment builds a track from ``default_rng(track_seed)``'s numbers; the actions' come
    from another stream of the same seed."""
    track_rng = np.random.default_rng(evaluation.EVAL_TRACKS[0]).random(50)
    actions_rng = evaluation.sampling_generator(evaluation.EVAL_TRACKS[0]).random(50)
    assert not np.isin(actions_rng, track_rng).any()
    assert np.array_equal(actions_rng, evaluation.sampling_generator(evaluation.EVAL_TRACKS[0]).random(50))


def test_sampled_actions_need_action_probabilities():
    with pytest.raises(ValueError, match="unknown actions 'random': expected one of greedy, sampled"):
        evaluation.evaluate(Probabilities(), color="green", track_seeds=[1], actions="random")
    with pytest.raises(ValueError, match="needs a policy with action probabilities.*Gas has none"):
        evaluation.evaluate(Gas(), color="green", track_seeds=[1], actions="sampled")
    with pytest.raises(ValueError, match="needs a policy with action probabilities"):
        evaluation.record_episode(Gas(), "green", actions="sampled")
