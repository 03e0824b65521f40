"""Mixed precision: the setting, where autocast applies, the float32 path, and bench train's refusals."""

from __future__ import annotations

import json
import types
from dataclasses import asdict

import pytest
import torch
from stable_baselines3 import PPO
from tiny import tiny

from relreps import algos, bench, envs, precision, training
from relreps.cli import main
from relreps.extractors import Float32LayerNorm, Float32Linear, RelativeEncoder
from relreps.training import TrainConfig


def model(resolved: str = "fp32", seed: int = 3, **kw):
    venv = envs.make_vec_env("red", n_envs=2, seed=seed, workers=0)
    return algos.make_model("ppo", venv, encoder_class=RelativeEncoder,
                            encoder_kwargs=dict(latent_dim=16, n_anchors=16, latent_norm="layer", standardize="center"),
                            head_dim=16, seed=seed, n_steps=16, device="cpu", precision=resolved, **kw)


def params(m) -> dict:
    return {k: v.detach().clone() for k, v in m.policy.state_dict().items()}


# -- the setting ---------------------------------------------------------------------------------

def test_precision_validated_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown precision 'fp16': expected one of \('fp32', 'bf16', 'auto'\)"):
        tiny(precision="fp16")
    with pytest.raises(ValueError, match="ppo only"):
        tiny(algo="dqn", precision="bf16", hyperparameters={})
    assert TrainConfig().precision == "fp32"  # the default until a bf16 agent meets the quality bar


def test_saved_config_without_precision_loads_as_fp32():
    d = asdict(tiny(precision="auto"))
    del d["precision"]
    assert TrainConfig.from_json(d).precision == "fp32"
    assert TrainConfig.from_json({**d, "precision": "auto"}).precision == "auto"


def test_resolve(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.resolve("fp32", "cpu") == "fp32"
    assert precision.resolve("auto", "cpu") == "fp32"
    with pytest.raises(ValueError, match="native bfloat16.*'auto'.*'fp32'"):
        precision.resolve("bf16", "cpu")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.resolve("auto", "cpu") == precision.resolve("bf16", "cpu") == "bf16"
    monkeypatch.setattr(precision, "cuda_has_bf16", lambda: False)
    assert precision.resolve("auto", "cuda") == "fp16"  # e.g. a T4: float16 with a gradient scaler
    monkeypatch.setattr(precision, "cuda_has_bf16", lambda: True)
    assert precision.resolve("auto", "cuda") == "bf16"
    with pytest.raises(ValueError, match="unknown precision"):
        precision.resolve("half", "cpu")
    with pytest.raises(ValueError, match="unknown resolved precision"):
        model("bf32")


# -- where autocast applies -----------------------------------------------------------------------

def test_float32_layers_match_torch_in_float32_and_stay_float32_under_autocast():
    torch.manual_seed(0)
    x = torch.randn(8, 16)
    ln, ln32 = torch.nn.LayerNorm(16), Float32LayerNorm(16)
    lin, lin32 = torch.nn.Linear(16, 4), Float32Linear(16, 4)
    ln32.load_state_dict(ln.state_dict())
    lin32.load_state_dict(lin.state_dict())
    assert torch.equal(ln(x), ln32(x)) and torch.equal(lin(x), lin32(x))  # float32: unchanged
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ln(x.bfloat16()).dtype == torch.bfloat16  # what autocast does to a plain LayerNorm on a CPU
        assert ln32(x.bfloat16()).dtype == torch.float32
        assert lin32(x).dtype == torch.float32


def test_anchor_embeddings_and_projection_stay_float32_under_autocast():
    m = model()
    enc = m.policy.features_extractor
    obs = torch.rand(4, 3, 84, 84)
    ref = enc(obs)
    anchors = enc.anchor_embeddings.clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        enc.update_anchors()
        out = enc(obs)
    assert enc.anchor_embeddings.dtype == torch.float32
    assert torch.equal(enc.embed_anchors(), anchors)  # embedded in float32 under autocast too
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.1  # the convolutions in bfloat16: close, not equal
    assert not torch.equal(out, ref)


# -- training steps --------------------------------------------------------------------------------

@pytest.mark.slow
def test_fp32_path_is_sb3_ppo_and_the_autocast_loop_is_sb3s():
    a = model()  # each model seeds the global generators when made: make one, train it, then the other
    assert a.precision == "fp32" and a.policy.rollout_precision == "fp32"
    assert type(a).train is not PPO.train and a.train.__func__ is type(a).train
    a.learn(64)  # fp32: PrecisionPPO.train hands over to SB3's PPO.train
    # the copy of SB3's update that the mixed-precision path runs, with a null autocast, gives the
    # same weights as SB3's own update: nothing but the autocast (and the fp16 scaler) differs
    b = model()
    b.train = types.MethodType(type(b)._train_autocast, b)
    b.learn(64)
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    # and the update does change the weights (so the equality above is not of untouched weights)
    c = model()
    before = params(c)
    assert any(not torch.equal(before[k], pa[k]) for k in pa if pa[k].dtype.is_floating_point)


@pytest.mark.slow
@pytest.mark.parametrize("resolved", ["bf16", "fp16"])
def test_mixed_precision_update_runs_and_learns(resolved):
    m = model(resolved)
    assert m.policy.rollout_precision == resolved
    before = params(m)
    m.learn(64)  # two updates; the linear schedule's learning rate is 0 only at the end
    after = params(m)
    changed = [k for k in before if before[k].dtype.is_floating_point and not torch.equal(before[k], after[k])]
    assert any("features_extractor.net" in k for k in changed) and any("action_net" in k for k in changed)
    assert all(torch.isfinite(v).all() for v in after.values() if v.dtype.is_floating_point)
    assert all(v.dtype in (torch.float32, torch.bool) for v in after.values())  # weights stay float32
    logged = m.logger.name_to_value
    assert ("train/grad_scale" in logged) == (resolved == "fp16")
    # the rollout's log-probabilities come from float32 logits
    assert m.rollout_buffer.log_probs.dtype.name == "float32"


def test_rollout_precision_may_differ_from_the_update():
    m = model("bf16", rollout_precision="fp32")
    assert m.precision == "bf16" and m.policy.rollout_precision == "fp32"
    with pytest.raises(ValueError, match="ppo only"):
        algos.make_model("dqn", envs.make_vec_env("red", n_envs=1, workers=0), encoder_class=RelativeEncoder,
                         encoder_kwargs=dict(latent_dim=16, n_anchors=16), precision="bf16")


@pytest.mark.slow
def test_run_and_card_record_the_precision(tmp_path):
    run = tmp_path / "run"
    config = tiny(precision="auto")
    expected = precision.resolve("auto", "cpu")
    training.train(config, run)
    card = json.loads((run / "agent.json").read_text())
    assert card["config"]["precision"] == "auto"
    assert card["training"]["precision"] == expected
    assert json.loads((run / "hardware.json").read_text())[-1]["precision"] == expected
    with pytest.raises(ValueError, match=r"precision: 'auto' -> 'fp32'"):
        training.train(tiny(precision="fp32"), run, resume=True)


def test_cli_train_precision_choices(tmp_path, capsys):
    try:
        rc = main(["train", "--out", str(tmp_path / "r"), "--precision", "fp16"])
    except SystemExit as e:  # argparse's own exit
        rc = e.code
    assert rc == 2 and not (tmp_path / "r").exists()
    assert "invalid choice: 'fp16' (choose from 'fp32', 'bf16', 'auto')" in capsys.readouterr().err


# -- bench train's refusals --------------------------------------------------------------------------

def _no_work(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("work started before the input was checked")

    monkeypatch.setattr(envs, "make_vec_env", refuse)
    monkeypatch.setattr(bench, "_sb3_model", refuse)


@pytest.mark.parametrize("kw, bad", [
    (dict(updates=0), "updates=0"), (dict(n_envs=-2), "n_envs=-2"), (dict(n_steps=0), "n_steps=0"),
    (dict(eval_tracks=0), "eval_tracks=0"), (dict(eval_max_steps=-1), "eval_max_steps=-1"),
])
def test_bench_train_refuses_bad_counts_before_any_work(monkeypatch, kw, bad):
    _no_work(monkeypatch)
    with pytest.raises(ValueError, match=f"counts >= 1; got {bad}"):
        bench.bench_train(**kw)


def test_bench_train_refuses_bad_variants_before_any_work(monkeypatch, capsys):
    _no_work(monkeypatch)
    with pytest.raises(ValueError, match=r"base must be one of \('sb3', 'fp32', 'bf16', 'auto', 'ddqn'\)"):
        bench.bench_train(["fp32", "fp16"])
    with pytest.raises(ValueError, match="threads takes R/U"):
        bench.bench_train(["fp32:threads=0/2"])
    with pytest.raises(ValueError, match="unknown option"):
        bench.bench_train(["sb3:rollout=bf16"])
    with pytest.raises(ValueError, match="unknown option"):
        bench.bench_train(["ddqn:rollout=bf16"])  # Double DQN trains in float32
    with pytest.raises(ValueError, match="repeat"):
        bench.bench_train(["fp32", "fp32"])
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    with pytest.raises(ValueError, match="native bfloat16"):
        bench.bench_train(["fp32", "bf16"])
    with pytest.raises(ValueError, match=r"updates=0.*n_envs=-1"):  # the API names every bad count
        bench.bench_train(["fp32"], updates=0, n_envs=-1)
    with pytest.raises(SystemExit) as stopped:  # the command line refuses when it parses
        main(["bench", "train", "--updates", "0", "--envs", "-1"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("error:") == 1 and "--updates" in err
    for argv, option in ((["--eval-tracks", "11"], "--eval-tracks"), (["--n-steps", "0"], "--n-steps")):
        with pytest.raises(SystemExit):
            main(["bench", "train", *argv])
        assert option in capsys.readouterr().err


def test_bench_train_variant_options():
    v = bench.TrainVariant.parse("bf16:threads=1/2:channels-last:rollout=fp32")
    assert (v.base, v.threads, v.channels_last, v.rollout) == ("bf16", (1, 2), True, "fp32")
    assert bench.TrainVariant.parse("ddqn:replay=128/1").replay == (128, 1)
    assert bench.TrainVariant.parse("fp32:compile").compile
    for bad, message in (("fp32:replay=128/1", "unknown option"), ("ddqn:replay=0/1", "replay takes B/G"),
                         ("ddqn:replay=128", "replay takes B/G"), ("fp32:compile=yes", "unknown option")):
        with pytest.raises(ValueError, match=message):
            bench.TrainVariant.parse(bad)


def test_bench_train_runs_ppo_and_double_dqn_side_by_side():
    """A tiny run of the two algorithms: the same environment steps timed for each, Double DQN
    learning from its first transitions at its final epsilon."""
    out = bench.bench_train(["fp32", "ddqn", "ddqn:replay=8/1"], updates=1, n_envs=2, n_steps=4, workers=0,
                            representation="relative", eval_max_steps=5)
    by = {t.variant: t for t in out.timings}
    assert set(by) == {"fp32", "ddqn", "ddqn:replay=8/1"} and by["fp32"].steps == by["ddqn"].steps == 8
    assert all(t.rollout_s > 0 and t.update_s > 0 and t.eval_steps == 5 for t in out.timings)
    assert "Double DQN" in out.setup and "ddqn" in out.report()


def test_bench_train_default_variants_run_on_any_cpu():
    """The default variants need no native bfloat16 ("auto" falls back to float32), so `relreps bench
    train` runs as given on every CPU; a relreps PPO variant collects rollouts as `relreps train` does."""
    assert set(bench.TRAIN_DEFAULT) <= {"sb3", "fp32", "auto"}
    out = bench.bench_train(["auto"], updates=1, n_envs=2, n_steps=4, workers=0, eval_max_steps=5)
    assert [t.variant for t in out.timings] == ["auto"] and out.timings[0].steps == 8
    assert "auto: update " in out.setup and "1 in rollouts" in out.setup
