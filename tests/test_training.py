"""Training end to end with tiny budgets: run folder, learning curve, checkpoints, resume."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import tiny as shared_tiny

from relreps import training
from relreps.cli import main
from relreps.training import TrainConfig


def tiny(**kw) -> TrainConfig:
    """The shared tiny run (tests/tiny.py), longer and evaluated during training."""
    return shared_tiny(**{"total_steps": 64, "eval_every": 32, "eval_max_steps": 20, **kw})


def _rows(run):
    with (run / "eval.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_train_writes_a_run_folder(tmp_path):
    run = tmp_path / "run"
    model = training.train(tiny(), run)
    assert model.num_timesteps == 64
    for name in ("config.json", "progress.csv", "eval.csv", "checkpoint.pt", "done.json", "agent.json",
                 "agent.safetensors"):
        assert (run / name).exists(), name
    assert list(run.glob("events.out.tfevents.*")), "TensorBoard log (tensorboard is in requirements.txt)"
    assert [int(r["timesteps"]) for r in _rows(run)] == [32, 64]
    done = json.loads((run / "done.json").read_text())
    assert done["steps"] == 64 and "hardware" in done and done["final_eval"]["color"] == "red"
    # the agent file: float16, small, its card carrying the evaluation of the file itself
    from relreps import zoo

    agent = zoo.load(run / "agent")
    assert agent.card["dtype"] == "float16" and agent.card["bytes"] < zoo.MAX_BYTES
    assert agent.card["training"]["final_eval"] == done["final_eval"]
    assert float(_rows(run)[-1]["mean_max_return"]) == pytest.approx(done["final_eval"]["mean_max_return"], abs=0.01)
    # the checkpoint holds plain tensors only
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["num_timesteps"] == 64


@pytest.mark.slow
def test_no_silent_overwrite_and_resume(tmp_path):
    run = tmp_path / "run"
    training.train(tiny(total_steps=32), run)
    with pytest.raises(FileExistsError, match="resume"):
        training.train(tiny(total_steps=32), run)
    with pytest.raises(ValueError, match=r"different config \(seed: 3 -> 4; total_steps: 32 -> 64\)"):
        training.train(tiny(total_steps=64, seed=4), run, resume=True)
    with pytest.raises(FileExistsError, match="already finished"):
        training.train(tiny(total_steps=32), run, resume=True)
    # "killed" after 32 steps: continue to 64 from the checkpoint
    (run / "done.json").unlink()
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    cfg = json.loads((run / "config.json").read_text())
    cfg["total_steps"] = 64
    (run / "config.json").write_text(json.dumps(cfg))
    # where it runs (device, environment processes) may change on resume: it learns the same
    model = training.train(tiny(total_steps=64, device="cpu"), run, resume=True)
    assert model.num_timesteps == 64
    assert json.loads((run / "config.json").read_text())["device"] == "cpu"
    # each segment's hardware is kept, from the step it started at
    done = json.loads((run / "done.json").read_text())
    assert [s["from_step"] for s in done["hardware_segments"]] == [0, 32]
    assert done["hardware"] == done["hardware_segments"][-1]
    assert model._n_updates == ckpt["n_updates"] + 4  # one more PPO update of 4 epochs
    assert [int(r["timesteps"]) for r in _rows(run)] == [32, 64]
    # SB3 truncates progress.csv when it opens it: the first segment's rows must survive
    steps = [int(r["time/total_timesteps"]) for r in csv.DictReader((run / "progress.csv").open())]
    assert steps == [32, 64]
    assert not list(run.glob("progress.part*")) and not (run / "segments.json").exists()


def test_one_process_per_run_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    held = training._lock(run)
    try:
        with pytest.raises(training.RunInUseError, match="in use by another training process"):
            training.train(tiny(total_steps=32), run)
    finally:
        held.close()
    assert not (run / "config.json").exists()


@pytest.mark.slow
def test_resume_drops_log_rows_past_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    training.train(tiny(total_steps=64, checkpoint_every=32, eval_every=16), run)
    # pretend the run died at 64 steps, after its checkpoint at 32: roll the checkpoint back
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save(dict(ckpt, num_timesteps=32, elapsed_s=5.0), run / "checkpoint.pt")
    (run / "done.json").unlink()
    training.train(tiny(total_steps=64, checkpoint_every=32, eval_every=16), run, resume=True)
    assert [int(r["timesteps"]) for r in _rows(run)] == [16, 32, 48, 64]
    rows = list(csv.DictReader((run / "progress.csv").open()))
    assert [int(r["time/total_timesteps"]) for r in rows] == [32, 64]
    assert float(rows[-1]["time/time_elapsed"]) >= 5
    assert json.loads((run / "done.json").read_text())["wall_s"] >= 5


@pytest.mark.slow
def test_same_seed_same_run(tmp_path):
    a = training.train(tiny(algo="ppo", representation="absolute", total_steps=32, eval_every=0), tmp_path / "a")
    b = training.train(tiny(algo="ppo", representation="absolute", total_steps=32, eval_every=0), tmp_path / "b")
    for pa, pb in zip(a.policy.parameters(), b.policy.parameters()):
        assert torch.equal(pa, pb)
    obs = np.random.default_rng(0).integers(0, 256, size=(4, 3, 84, 84), dtype=np.uint8)
    assert np.array_equal(a.predict(obs, deterministic=True)[0], b.predict(obs, deterministic=True)[0])


@pytest.mark.slow
def test_double_dqn_trains_relative(tmp_path):
    cfg = tiny(algo="ddqn", total_steps=40, eval_every=0, checkpoint_every=0,
               hyperparameters={"learning_starts": 16, "buffer_size": 64, "batch_size": 4,
                                "target_update_interval": 8})
    model = training.train(cfg, tmp_path / "dqn")
    assert model.num_timesteps == 40 and (tmp_path / "dqn" / "done.json").exists()
    card = training.export_checkpoint(tmp_path / "dqn", tmp_path / "dqn-ckpt")  # without a replay buffer
    assert json.loads(card.read_text())["algo"] == "ddqn"


DQN_TINY = {"learning_starts": 8, "buffer_size": 200, "batch_size": 4, "target_update_interval": 8,
            "train_freq": 2, "exploration_fraction": 0.5}


class _Killed(Exception):
    pass


@pytest.mark.slow
def test_double_dqn_resumes_with_its_replay_buffer_as_if_uninterrupted(tmp_path, monkeypatch):
    """A value-based run killed after a checkpoint resumes with its replay buffer, exploration
    schedule, target-update count and step counter: everything before the checkpoint is what an
    uninterrupted run has, and the schedule ends where the uninterrupted run's ends."""
    cfg = tiny(algo="ddqn", total_steps=64, eval_every=0, checkpoint_every=32, hyperparameters=DQN_TINY)
    saved: dict[str, dict] = {}
    real_save = training.save_checkpoint

    def save(model, path, elapsed_s=0.0, **kw):
        real_save(model, path, elapsed_s, **kw)
        key = str(path.parent.name)
        if key not in saved:  # the first checkpoint of each run, as written
            with np.load(path.parent / training.REPLAY_FILE) as z:
                saved[key] = {"replay": {k: z[k] for k in z.files}, "ckpt": torch.load(path, weights_only=True)}
            if key == "killed":
                raise _Killed

    monkeypatch.setattr(training, "save_checkpoint", save)
    whole = training.train(cfg, tmp_path / "whole")
    with pytest.raises(_Killed):
        training.train(cfg, tmp_path / "killed")
    assert (tmp_path / "killed" / training.REPLAY_FILE).exists() and not (tmp_path / "killed" / "done.json").exists()
    a, b = saved["whole"], saved["killed"]
    step = int(b["ckpt"]["num_timesteps"])
    assert 32 <= step < 64 and int(a["ckpt"]["num_timesteps"]) == step
    assert int(b["ckpt"]["n_calls"]) == step // cfg.n_envs  # taken between rollouts: nothing half done
    for name, array in a["replay"].items():  # same seed, same steps: the same transitions
        assert np.array_equal(array, b["replay"][name]), name
    assert int(b["replay"]["pos"]) == step // cfg.n_envs

    resumed = training.train(cfg, tmp_path / "killed", resume=True)
    assert resumed.num_timesteps == whole.num_timesteps == 64
    assert resumed._n_calls == whole._n_calls and resumed._n_updates == whole._n_updates
    assert resumed.exploration_rate == pytest.approx(whole.exploration_rate)
    rb, wb = resumed.replay_buffer, whole.replay_buffer
    assert rb.pos == wb.pos == 64 // cfg.n_envs
    kept = step // cfg.n_envs  # the transitions before the checkpoint are the uninterrupted run's
    assert np.array_equal(rb.observations[:kept], wb.observations[:kept])
    assert np.array_equal(rb.actions[:kept], wb.actions[:kept]) and np.array_equal(rb.rewards[:kept], wb.rewards[:kept])
    assert not (tmp_path / "killed" / training.REPLAY_FILE).exists()  # a finished run drops its buffer


def test_replay_file_errors(tmp_path):
    from gymnasium import spaces
    from stable_baselines3.common.buffers import ReplayBuffer

    obs = spaces.Box(0, 255, (3, 4, 4), np.uint8)
    buffer = ReplayBuffer(8, obs, spaces.Discrete(5), device="cpu", n_envs=2)
    buffer.pos = 3
    buffer.observations[:3] = 7
    training.save_replay(buffer, tmp_path / "r.npz", 6)
    fresh = ReplayBuffer(8, obs, spaces.Discrete(5), device="cpu", n_envs=2)
    training.load_replay(fresh, tmp_path / "r.npz", 6)
    assert fresh.pos == 3 and not fresh.full and (fresh.observations[:3] == 7).all()
    with pytest.raises(ValueError, match="step 6, not of the checkpoint's step 8"):
        training.load_replay(fresh, tmp_path / "r.npz", 8)
    other = ReplayBuffer(8, obs, spaces.Discrete(5), device="cpu", n_envs=1)
    with pytest.raises(ValueError, match="another buffer_size, number of environments"):
        training.load_replay(other, tmp_path / "r.npz", 6)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="truncated or corrupted"):
        training.load_replay(fresh, tmp_path / "bad.npz", 6)


def test_bad_config():
    with pytest.raises(ValueError, match="unknown algorithm"):
        tiny(algo="a2c")
    with pytest.raises(ValueError, match="unknown representation"):
        tiny(representation="both")
    with pytest.raises(ValueError, match="unknown colour"):
        tiny(color="teal")
    with pytest.raises(ValueError, match="unknown config fields"):
        TrainConfig.from_json({"algo": "ppo", "lr": 1})
    with pytest.raises(ValueError, match=r"unknown anchor_update 'epoch': expected one of \('gradient-step', 'rollout'\)"):
        tiny(anchor_update="epoch")
    with pytest.raises(ValueError, match=r"unknown anchor_embeddings 'none': expected one of \('saved', 'reembedded'\)"):
        tiny(anchor_embeddings="none")
    with pytest.raises(ValueError, match="anchor_embeddings='reembedded' is for relative encoders"):
        tiny(representation="absolute", anchor_embeddings="reembedded")


def test_run_whose_agent_file_leaves_the_anchor_embeddings_out(tmp_path):
    """``anchor_embeddings="reembedded"``: the run's agent and its exported checkpoint hold no anchor
    embeddings; the final evaluation is of the agent as loaded, its anchors embedded again."""
    from safetensors.torch import load_file

    from relreps import zoo

    run = tmp_path / "run"
    training.train(tiny(total_steps=32, eval_every=0, anchor_embeddings="reembedded"), run)
    card = json.loads((run / "agent.json").read_text())
    assert card["anchors"]["embeddings"] == "reembedded" and "final_eval" in card["training"]
    exported = training.export_checkpoint(run, tmp_path / "ckpt")
    for weights in (run / "agent.safetensors", tmp_path / "ckpt.safetensors"):
        assert not any(k.endswith("anchor_embeddings") for k in load_file(weights))
    enc = zoo.load(exported).policy.features_extractor
    assert torch.equal(enc.anchor_embeddings, enc.embed_anchors())
    # the moving average the policy trained with can be kept, to look at the agent as training saw it
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)["policy"]["features_extractor.anchor_embeddings"]
    assert main(["export", str(run), "--out", str(tmp_path / "ema"), "--anchor-embeddings", "saved"]) == 0
    saved = load_file(tmp_path / "ema.safetensors")["features_extractor.anchor_embeddings"]
    assert saved.dtype == torch.float32 and torch.equal(saved, ckpt)
    assert zoo.load(tmp_path / "ema").card["anchors"].get("embeddings", "saved") == "saved"
    with pytest.raises(ValueError, match=r"unknown anchor_embeddings 'ema': expected one of"):
        training.export_checkpoint(run, tmp_path / "bad", anchor_embeddings="ema")
    assert not (tmp_path / "bad.json").exists()


@pytest.mark.slow
def test_anchor_update_setting_is_kept_on_resume(tmp_path):
    """New runs move the anchors per gradient step; a run folder saved before the setting existed
    trained once per rollout and resumes so; asking to change it is refused."""
    assert TrainConfig().anchor_update == "gradient-step"
    run = tmp_path / "run"
    training.train(tiny(total_steps=32), run)
    (run / "done.json").unlink()
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["anchor_update"] == "gradient-step"
    del cfg["anchor_update"]  # as the first zoo runs wrote it
    (run / "config.json").write_text(json.dumps(cfg))
    assert TrainConfig.from_json(cfg).anchor_update == "rollout"
    with pytest.raises(ValueError, match="anchor_update: 'rollout' -> 'gradient-step'"):
        training.train(tiny(total_steps=32), run, resume=True)
    # an absolute run ignores it, as the other relative-only settings
    assert training._config_diff(tiny(representation="absolute"),
                                 tiny(representation="absolute", anchor_update="rollout")) == []


@pytest.mark.slow
def test_cli_train(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["train", "--out", str(out), "--representation", "absolute", "--color", "blue", "--steps", "32",
            "--envs", "2", "--workers", "0", "--latent-dim", "16", "--head-dim", "16", "--eval-every", "0", "--eval-tracks", "1",
            "--eval-max-steps", "10",
            "--eval-tracks", "1", "--eval-max-steps", "10", "--set", "n_steps=16"]
    assert main(args) == 0
    assert json.loads((out / "config.json").read_text())["hyperparameters"] == {"n_steps": 16}
    assert main(args) == 2 and "resume" in capsys.readouterr().err


@pytest.mark.slow
def test_export_checkpoint(tmp_path, capsys):
    from safetensors.torch import load_file

    from relreps import zoo

    run = tmp_path / "run"
    training.train(tiny(total_steps=32, eval_every=0), run)
    card = training.export_checkpoint(run, tmp_path / "ckpt")
    info = json.loads(card.read_text())
    assert info["training"]["checkpoint"] is True and info["training"]["steps"] == 32
    assert info["representation"] == "relative" and info["color"] == "red"
    # the last checkpoint is the finished model: same float16 tensors as the run's own agent
    a, b = load_file(tmp_path / "ckpt.safetensors"), load_file(run / "agent.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    agent = zoo.load(card)
    obs = np.random.default_rng(0).integers(0, 256, (1, *agent.policy.observation_space.shape), dtype=np.uint8)
    own = zoo.load(run / "agent")
    np.testing.assert_array_equal(agent.policy.predict(obs, deterministic=True)[0],
                                  own.policy.predict(obs, deterministic=True)[0])
    # nothing is overwritten; a folder without a checkpoint is named in the error
    with pytest.raises(FileExistsError):
        training.export_checkpoint(run, tmp_path / "ckpt")
    assert main(["export", str(run), "--out", str(tmp_path / "ckpt"), "--overwrite"]) == 0
    assert "at 32 steps" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), "--out", str(tmp_path / "x")]) == 2
    assert "config.json not found" in capsys.readouterr().err


def test_trained_config_reads_old_cards_as_they_trained():

    config = asdict(tiny())
    assert training.trained_config({"config": config}).anchor_update == "gradient-step"
    for key in training.LEGACY_DEFAULTS:  # a card saved before these fields existed
        del config[key]
    old = training.trained_config({"config": config})
    assert (old.anchor_update, old.latent_norm, old.std_floor, old.standardize) == ("rollout", None, None, True)
    assert training.trained_config({}) is None


@pytest.mark.slow
def test_cli_train_relative_defaults_centred_and_layer_normalised(tmp_path, capsys):
    from relreps import zoo
    from relreps.extractors import encoder_of

    out = tmp_path / "centred"
    args = ["train", "--out", str(out), "--color", "red", "--steps", "32", "--envs", "2", "--workers", "0",
            "--latent-dim", "16", "--n-anchors", "8", "--head-dim", "16", "--eval-every", "0", "--eval-tracks", "1",
            "--eval-max-steps", "10", "--set", "n_steps=16"]
    assert main(args) == 0
    saved = json.loads((out / "config.json").read_text())
    assert (saved["standardize"], saved["latent_norm"]) == ("center", "layer")  # the choice, not "auto"
    agent = zoo.load(out / "agent.json")
    assert training.trained_config(agent.card).standardize == "center"
    assert (encoder_of(agent.policy).standardize, encoder_of(agent.policy).latent_norm) == ("center", "layer")
    # resuming with the first zoo runs' settings is refused and names both differences
    assert main(args + ["--resume", "--latent-norm", "none", "--standardize", "per-dimension"]) == 2
    assert re.search(r"latent_norm: 'layer' -> None.*standardize: 'center' -> True", capsys.readouterr().err)


def _checkpoint_steps(monkeypatch) -> list[int]:
    """The steps of every checkpoint the runs of this test write, in order."""
    steps: list[int] = []
    real_save = training.save_checkpoint

    def save(model, path, elapsed_s=0.0, **kw):
        real_save(model, path, elapsed_s, **kw)
        steps.append(int(model.num_timesteps))

    monkeypatch.setattr(training, "save_checkpoint", save)
    return steps


def test_checkpoints_by_wall_time(tmp_path, monkeypatch):
    """``checkpoint_minutes`` saves between the step-counted checkpoints (here: at every step, the
    interval being tiny); 0 saves only at ``checkpoint_every`` and at the end."""
    steps = _checkpoint_steps(monkeypatch)
    monkeypatch.setattr(training, "TIMED_CHECKPOINT_SHARE", 0.0)  # not delayed by the write's own time
    training.train(tiny(total_steps=32, eval_every=0, checkpoint_every=0), tmp_path / "timed",
                   checkpoint_minutes=1e-9)
    assert steps == [*range(2, 33, 2), 32]  # every vectorised step of 2 environments, then the finished run's
    steps.clear()
    training.train(tiny(total_steps=32, eval_every=0, checkpoint_every=16), tmp_path / "counted", checkpoint_minutes=0)
    assert steps == [16, 32, 32]  # at 16 and 32 steps, then the finished run's


def test_a_slow_checkpoint_is_written_less_often():
    """The timed checkpoint waits the longer of ``checkpoint_minutes`` and 20 times the last write."""
    import time

    periodic = training._Periodic(tiny(), Path("unused"), 0.0, checkpoint_s=60.0)
    periodic.num_timesteps, periodic.next_ckpt = 10, float("inf")
    periodic.last_ckpt = time.monotonic() - 100
    assert periodic._checkpoint_due()  # 100 s since a quick one (gap 60 s)
    periodic.last_write_s = 10.0  # a buffer of gigabytes: gap 200 s
    assert not periodic._checkpoint_due()
    periodic.last_ckpt = time.monotonic() - 201
    assert periodic._checkpoint_due()
    periodic.last_ckpt, periodic.next_ckpt = time.monotonic(), 10  # the step-counted one is never delayed
    assert periodic._checkpoint_due()


@pytest.mark.parametrize("minutes", [-1, float("nan"), float("inf"), "10", True])
def test_bad_checkpoint_minutes_are_refused_before_anything_is_written(tmp_path, minutes):
    with pytest.raises(ValueError, match="checkpoint_minutes must be a number of minutes >= 0"):
        training.train(tiny(), tmp_path / "run", checkpoint_minutes=minutes)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "ddqn"])
def test_a_signal_saves_a_checkpoint_and_stops_then_the_run_resumes(tmp_path, monkeypatch, algo):
    """SIGTERM mid-run: a checkpoint at the next step (for the DQN family, between two rollouts, with
    its replay buffer), :class:`TrainingStopped`, no finished agent; ``resume=True`` finishes the run.
    The handlers are the process's own again afterwards."""
    import signal

    steps = _checkpoint_steps(monkeypatch)
    hp = DQN_TINY if algo == "ddqn" else {"n_steps": 16}
    cfg = tiny(algo=algo, total_steps=96, eval_every=0, checkpoint_every=0, hyperparameters=hp)
    sent: list[int] = []
    real_on_step = training._FirstStep._on_step

    def on_step(self):
        if self.num_timesteps >= 40 and not sent:
            sent.append(self.num_timesteps)
            signal.raise_signal(signal.SIGTERM)
        return real_on_step(self)

    monkeypatch.setattr(training._FirstStep, "_on_step", on_step)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    run = tmp_path / "run"
    with pytest.raises(training.TrainingStopped, match=r"SIGTERM: stopped; checkpoint of \d+ of 96 steps") as e:
        training.train(cfg, run, checkpoint_minutes=0)
    assert e.value.signal == signal.SIGTERM
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    assert len(steps) == 1 and sent[0] <= steps[0] <= sent[0] + 2 * cfg.n_envs
    assert int(torch.load(run / "checkpoint.pt", weights_only=True)["num_timesteps"]) == steps[0]
    assert not (run / "done.json").exists() and not (run / "agent.json").exists()
    if algo == "ddqn":
        assert (run / training.REPLAY_FILE).exists()
    model = training.train(cfg, run, resume=True, checkpoint_minutes=0)
    # PPO resumes with whole rollouts from the checkpoint's step, so it may end a little past 96
    assert 96 <= model.num_timesteps < 96 + 16 * cfg.n_envs and (run / "done.json").exists()


def test_processes_forked_during_training_still_stop_on_sigterm():
    """An evaluation during training forks a worker pool, which inherits the stop handlers; closing
    the pool stops its workers by SIGTERM (they may be blocked on a lock the pool holds), which
    must still end them: a run used to hang there. The parent keeps its graceful stop."""
    import subprocess
    import sys

    script = (
        "import os, signal, time\n"
        "from relreps.training import _StopRequest\n"
        "with _StopRequest() as stop:\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        time.sleep(20)\n"
        "        os._exit(0)\n"
        "    time.sleep(0.5)\n"
        "    os.kill(pid, signal.SIGTERM)\n"
        "    _, status = os.waitpid(pid, 0)\n"
        "    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status\n"
        "    assert stop.signal is None\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    assert stop.signal == signal.SIGTERM\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr


@pytest.mark.slow
def test_relreps_train_stops_on_sigterm_to_its_process_group_and_resumes(tmp_path):
    """The command line, with environment worker processes: SIGTERM to the whole process group (as a
    scheduler or a closing machine sends it) reaches the workers too; they leave it to the training
    process, which saves a checkpoint, exits with status 143, and continues with ``--resume``."""
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    args = [sys.executable, "-m", "relreps", "train", "--out", str(run), "--representation", "absolute",
            "--color", "red", "--seed", "3", "--steps", "1024", "--envs", "2", "--workers", "1",
            "--latent-dim", "16", "--head-dim", "16", "--eval-every", "0", "--eval-tracks", "1",
            "--eval-max-steps", "10", "--checkpoint-every", "0",
            "--set", "n_steps=16", "--checkpoint-minutes", "0"]
    proc = subprocess.Popen(args, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        def trained() -> bool:  # a row of the log: the first rollout and update are done
            log = run / "progress.csv"
            return log.exists() and len(log.read_text().splitlines()) >= 2

        while not trained() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1]
        os.killpg(proc.pid, signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM: stopped; checkpoint of" in err and "--resume" in err
    steps = int(torch.load(run / "checkpoint.pt", weights_only=True)["num_timesteps"])
    assert 0 < steps < 1024 and not (run / "done.json").exists()
    resumed = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "done.json").read_text())["steps"] >= 1024


@pytest.mark.slow
def test_ppo_collects_rollouts_on_one_thread_and_updates_on_all(tmp_path, monkeypatch):
    """PPO's rollouts run on one torch thread, its updates on the process's threads (the measured
    lever of results/bench-train-avx2.txt); hardware.json records both."""
    real, before = torch.set_num_threads, torch.get_num_threads()
    calls: list[int] = []

    def spy(n: int) -> None:
        calls.append(n)
        real(n)

    real(2)
    monkeypatch.setattr(torch, "set_num_threads", spy)
    try:
        training.train(tiny(total_steps=64, device="cpu"), tmp_path / "run")  # 2 rollouts of 32 steps
    finally:
        real(before)
    assert calls[:4] == [1, 2, 1, 2], calls
    hw = json.loads((tmp_path / "run" / "hardware.json").read_text())[-1]
    assert (hw["torch_threads"], hw["rollout_threads"]) == (2, 1)


def test_rollout_threads_only_where_they_pay():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert training.rollout_threads(tiny(), "cpu") == 1
        assert training.rollout_threads(tiny(), "cuda") is None  # the GPU does the forward pass
        assert training.rollout_threads(tiny(algo="ddqn", hyperparameters={}), "cpu") is None  # rollout and update interleave
        torch.set_num_threads(1)
        assert training.rollout_threads(tiny(), "cpu") is None
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_keep_agents_saves_one_agent_per_checkpoint_and_resume_drops_later_ones(tmp_path):
    from relreps import zoo

    run = tmp_path / "run"
    cfg = tiny(total_steps=64, checkpoint_every=16, eval_every=0)
    model = training.train(cfg, run, keep_agents=True)
    kept = training.kept_agents(run)
    assert [p.name for p in kept] == ["0000000016.json", "0000000032.json", "0000000048.json", "0000000064.json"]
    for path in kept:
        card = json.loads(path.read_text())
        assert card["training"]["checkpoint"] is True and card["training"]["steps"] == int(path.stem)
    # the last kept agent is the final agent's weights: same actions on the same frames
    last, final = zoo.load(kept[-1]), zoo.load(run / "agent.json")
    obs = np.random.default_rng(0).integers(0, 256, size=(6, 3, 84, 84), dtype=np.uint8)
    assert np.array_equal(last.predict(obs)[0], final.predict(obs)[0])
    assert model.num_timesteps == 64
    # a resume from the checkpoint at 32 removes the agents of the steps it trains again
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save(dict(ckpt, num_timesteps=32), run / "checkpoint.pt")
    (run / "done.json").unlink()
    training._keep_logs_for_resume(run, 32, 0.0)
    assert [p.name for p in training.kept_agents(run)] == ["0000000016.json", "0000000032.json"]
    assert sorted(p.name for p in (run / "agents").iterdir()) == [
        "0000000016.json", "0000000016.safetensors", "0000000032.json", "0000000032.safetensors"]


def test_without_keep_agents_there_is_no_agents_folder(tmp_path):
    assert training.kept_agents(tmp_path) == []


def _fake_origin(folder: Path, config: TrainConfig, steps: int) -> Path:
    """A run folder with a config and a checkpoint at ``steps`` (enough for check_origin)."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(asdict(config)))
    torch.save({"num_timesteps": steps, "elapsed_s": 1.0}, folder / "checkpoint.pt")
    return folder


def test_a_continued_run_may_change_how_it_trains_not_the_network(tmp_path):
    origin = _fake_origin(tmp_path / "origin", tiny(total_steps=64), 64)
    record = training.check_origin(tiny(total_steps=96, alpha=0.0, device="cpu"), origin, out=tmp_path / "new")
    assert record["run"] == "origin" and record["steps"] == 64 and len(record["checkpoint_sha256"]) == 64
    # where it runs is not a change of the agent: not recorded
    assert record["changed"] == {"total_steps": [64, 96], "alpha": [0.999, 0.0]}
    with pytest.raises(ValueError, match=r"color: 'red' -> 'green'; latent_dim: 16 -> 32\. What may change: "
                                         r"total_steps, alpha"):
        training.check_origin(tiny(total_steps=96, color="green", latent_dim=32), origin)
    with pytest.raises(ValueError, match=r"not past the checkpoint .* \(64 steps\).* e\.g\. 200064\)"):
        training.check_origin(tiny(total_steps=64), origin)
    with pytest.raises(ValueError, match="is the run it continues"):
        training.check_origin(tiny(total_steps=96), origin, out=origin)
    (origin / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="truncated or corrupted"):
        training.check_origin(tiny(total_steps=96), origin)
    (origin / "checkpoint.pt").unlink()
    with pytest.raises(FileNotFoundError, match="needs a run folder with a checkpoint"):
        training.check_origin(tiny(total_steps=96), origin)
    # nothing was made for the refused starts
    assert not (tmp_path / "new").exists()
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        training.train(tiny(total_steps=96), tmp_path / "new", start_from=origin)
    assert not (tmp_path / "new").exists()


def _files(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != ".lock"}


@pytest.mark.slow
def test_a_run_continues_another_runs_checkpoint_as_a_resume_would(tmp_path, capsys):
    origin = tmp_path / "origin"
    training.train(tiny(total_steps=32, eval_every=32), origin)
    before = _files(origin)
    # --from: a new folder, re-embedded anchors from here on, 32 more steps
    rc = main(["train", "--out", str(tmp_path / "new"), "--from", str(origin), "--alpha", "0", "--steps", "64"])
    assert rc == 0
    assert _files(origin) == before  # the origin is only read
    new = tmp_path / "new"
    cfg = json.loads((new / "config.json").read_text())
    assert cfg["alpha"] == 0.0 and cfg["total_steps"] == 64 and cfg["color"] == "red" and cfg["latent_dim"] == 16
    card = json.loads((new / "agent.json").read_text())
    assert card["training"]["origin"]["steps"] == 32
    assert card["training"]["origin"]["changed"] == {"total_steps": [32, 64], "alpha": [0.999, 0.0]}
    assert card["training"]["steps"] == 64 and card["encoder_kwargs"]["alpha"] == 0.0
    # the learning curve and SB3's log go on from the origin's
    assert [int(r["timesteps"]) for r in _rows(new)] == [32, 64]
    assert _rows(new)[0] == _rows(origin)[0]
    steps = [int(r["time/total_timesteps"]) for r in csv.DictReader((new / "progress.csv").open())]
    assert steps == [32, 64]
    # the same weights as the origin resumed in place with the same settings
    same = tmp_path / "same"
    same.mkdir()
    for name in ("checkpoint.pt", "eval.csv", "progress.csv", "hardware.json"):
        (same / name).write_bytes((origin / name).read_bytes())
    (same / "config.json").write_text(json.dumps(cfg))
    resumed = training.train(TrainConfig.from_json(cfg), same, resume=True)
    continued = torch.load(new / "checkpoint.pt", weights_only=True)["policy"]
    for k, v in resumed.policy.state_dict().items():
        assert torch.equal(v, continued[k]), k
    # the same command again: the folder is a run now, continued with --resume only
    again = ["train", "--out", str(new), "--from", str(origin), "--alpha", "0", "--steps", "64"]
    capsys.readouterr()
    for argv, message in [(again, "exists; continue it with --resume"), ([*again, "--resume"], "already finished"),
                          (["train", "--out", str(new), "--from", str(same), "--resume"], "was not started from")]:
        assert main(argv) == 2
        assert message in capsys.readouterr().err


def test_what_a_continued_run_keeps_and_records(tmp_path, monkeypatch, capsys):
    origin = _fake_origin(tmp_path / "origin", tiny(total_steps=64), 64)
    # the optimiser's epsilon is in the checkpoint's optimiser state: refused, not silently kept
    with pytest.raises(ValueError, match=r"keeps adam_eps .*adam_eps: 1e-05 -> 0\.001"):
        training.check_origin(tiny(total_steps=96, hyperparameters={"n_steps": 16, "adam_eps": 1e-3}), origin)
    with pytest.raises(ValueError, match="or inside it"):
        training.check_origin(tiny(total_steps=96), origin, out=origin / "sub")
    # an absolute origin: settings that only relative encoders have are not changes
    absolute = _fake_origin(tmp_path / "abs", tiny(representation="absolute", total_steps=64), 64)
    record = training.check_origin(tiny(representation="absolute", total_steps=96, alpha=0.0), absolute)
    assert record["changed"] == {"total_steps": [64, 96]}
    # a continued run continued again keeps the chain; the card drops the local paths
    second = _fake_origin(tmp_path / "second", tiny(total_steps=96, alpha=0.0), 96)
    (second / training.ORIGIN_FILE).write_text(json.dumps(training.check_origin(tiny(total_steps=96, alpha=0.0),
                                                                                origin)))
    record = training.check_origin(tiny(total_steps=128, alpha=0.0), second)
    assert record["origin"]["run"] == "origin" and record["path"] == str(second.resolve())
    card = training.card_origin(record)
    assert "path" not in card and "path" not in card["origin"] and card["origin"]["steps"] == 64
    # the DQN family: a longer schedule must not raise epsilon again (it decays over 10% of the run)
    dqn = _fake_origin(tmp_path / "dqn", tiny(algo="ddqn", total_steps=1000, hyperparameters={}), 1000)
    training.check_origin(tiny(algo="ddqn", total_steps=10_000, hyperparameters={}), dqn)
    with pytest.raises(ValueError, match=r"raise the exploration rate from 0\.01 back to 0\.0101 .* at most 10000 steps"):
        training.check_origin(tiny(algo="ddqn", total_steps=10_001, hyperparameters={}), dqn)
    with pytest.raises(ValueError, match="keeps buffer_size"):
        training.check_origin(tiny(algo="ddqn", total_steps=2000, hyperparameters={"buffer_size": 64}), dqn)
    # on the command line, --set adds to the origin's overrides
    seen = {}

    def fake_train(config, out, **kw):
        seen.update(config=config, **kw)
        raise FileNotFoundError("stop here")

    monkeypatch.setattr(training, "train", fake_train)
    assert main(["train", "--out", str(tmp_path / "new"), "--from", str(origin), "--set", "learning_rate=1e-4",
                 "--steps", "96"]) == 2
    assert seen["config"].hyperparameters == {"n_steps": 16, "learning_rate": 1e-4}
    assert seen["start_from"] == str(origin) and seen["config"].latent_dim == 16
    assert "stop here" in capsys.readouterr().err


def test_a_start_killed_while_copying_its_origin_starts_again(tmp_path):
    origin = _fake_origin(tmp_path / "origin", tiny(total_steps=64), 64)
    sha = training.check_origin(tiny(total_steps=96), origin)["checkpoint_sha256"]
    new = tmp_path / "new"
    new.mkdir()
    (new / "checkpoint.pt").write_bytes((origin / "checkpoint.pt").read_bytes())
    (new / "eval.csv").write_text("timesteps\n")
    (new / ".lock").write_text("")
    training._clear_interrupted_copy(new, origin, sha)
    assert [p.name for p in new.iterdir()] == [".lock"]
    # killed in the first copy: only its temporary file
    (new / ".checkpoint.pt.abc123.tmp.pt").write_bytes(b"half")
    training._clear_interrupted_copy(new, origin, sha)
    assert [p.name for p in new.iterdir()] == [".lock"]
    # another process starting in the folder holds its lock: nothing is touched
    (new / "checkpoint.pt").write_bytes((origin / "checkpoint.pt").read_bytes())
    held = training._lock(new)
    try:
        with pytest.raises(training.RunInUseError):
            training._clear_interrupted_copy(new, origin, sha)
    finally:
        held.close()
    assert (new / "checkpoint.pt").exists()
    # files of the same names that are not the origin's copies are the user's: left alone
    (new / "checkpoint.pt").write_bytes(b"my own")
    (new / "eval.csv").write_text("mine")
    training._clear_interrupted_copy(new, origin, sha)
    assert (new / "checkpoint.pt").read_bytes() == b"my own" and (new / "eval.csv").read_text() == "mine"
    # and so is a folder with anything else in it (a hidden file too)
    (new / "checkpoint.pt").write_bytes((origin / "checkpoint.pt").read_bytes())
    (new / ".hidden").write_text("mine")
    training._clear_interrupted_copy(new, origin, sha)
    assert (new / ".hidden").exists() and (new / "checkpoint.pt").exists() and (new / "eval.csv").exists()


def test_a_dqn_run_without_its_buffer_gathers_learning_starts_again():
    from types import SimpleNamespace

    def model(steps, rows, full=False):
        buffer = SimpleNamespace(buffer_size=100, pos=rows, full=full, n_envs=2)
        return SimpleNamespace(replay_buffer=buffer, learning_starts=50, num_timesteps=steps)

    empty = model(1000, 0)
    training._refill_before_learning(empty)
    assert empty.learning_starts == 1050  # as a new run: 50 transitions before the first update
    for m in (model(1000, 100, full=True), model(1000, 30), model(20, 10)):  # enough, or a run before its start
        training._refill_before_learning(m)
        assert m.learning_starts == 50


@pytest.mark.slow
def test_a_frozen_encoder_ends_with_anchors_its_own_encoder_makes(tmp_path):
    # two updates each (the last one of an annealed schedule has a learning rate of 0)
    origin = tmp_path / "origin"
    training.train(tiny(total_steps=64), origin)
    model = training.train(tiny(total_steps=128, alpha=0.0, freeze_encoder=True), tmp_path / "new", start_from=origin)
    before = torch.load(origin / "checkpoint.pt", weights_only=True)["policy"]
    after = model.policy.state_dict()
    encoder = [k for k in after if k.startswith("features_extractor.") and "anchor" not in k]
    head = [k for k in after if k.startswith("mlp_extractor.")]
    assert encoder and head
    assert all(torch.equal(before[k], after[k]) for k in encoder)  # the encoder did not move
    assert not all(torch.equal(before[k], after[k]) for k in head)  # the head learnt
    # the saved anchors are the frozen encoder's own: the saved and re-embedded agents are one
    enc = model.policy.features_extractor
    assert not torch.equal(before["features_extractor.anchor_embeddings"], enc.anchor_embeddings)
    assert torch.allclose(enc.anchor_embeddings, enc.embed_anchors())
    card = json.loads((tmp_path / "new" / "agent.json").read_text())
    assert card["config"]["freeze_encoder"] is True
    assert card["training"]["origin"]["changed"]["freeze_encoder"] == [False, True]
