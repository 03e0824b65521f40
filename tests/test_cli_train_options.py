"""`relreps train`'s options are generated from TrainConfig: one source for every default."""

from __future__ import annotations

from dataclasses import fields

import pytest

from relreps import cli
from relreps.training import TrainConfig


def _config(*argv: str) -> TrainConfig:
    args = cli.build_parser().parse_args(["train", "--out", "unused", *argv])
    return TrainConfig(**{name: option.value(getattr(args, name)) for name, option in cli._train_options().items()})


def test_every_field_is_an_option_with_its_documentation():
    options = cli._train_options()
    assert set(options) == {f.name for f in fields(TrainConfig)}
    docs = TrainConfig.field_docs()
    assert set(docs) == set(options) and all(docs.values())
    assert "``" not in docs["standardize"] and ":func:" not in docs["std_floor"]


@pytest.mark.parametrize("representation", ["relative", "absolute"])
def test_the_command_line_defaults_are_the_configs(representation):
    assert _config("--representation", representation) == TrainConfig(representation=representation)


def test_options_reach_their_fields():
    c = _config("--steps", "1234", "--envs", "2", "--latent-dim", "none", "--standardize", "per-dimension",
                "--latent-norm", "none", "--eval-tracks", "3", "--set", "n_steps=64", "--set", "n_epochs=2",
                "--precision", "bf16", "--std-floor", "0.01", "--n-anchors", "8")
    assert (c.total_steps, c.n_envs, c.latent_dim, c.standardize, c.latent_norm) == (1234, 2, None, True, None)
    assert len(c.eval_tracks) == 3 and c.hyperparameters == {"n_steps": 64, "n_epochs": 2}
    assert (c.precision, c.std_floor, c.n_anchors) == ("bf16", 0.01, 8)


def test_the_help_shows_the_configs_defaults():
    text = cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert f"(default: {TrainConfig.total_steps})" in text and "--steps STEPS" in text
    assert "(default: center)" in text


def test_the_command_line_records_which_options_were_given():
    args = cli.build_parser().parse_args(["train", "--out", "unused", "--seed", "4", "--set", "n_steps=64",
                                          "--set", "n_epochs=2"])
    assert set(args.given) == {"seed", "hyperparameters"} and args.hyperparameters == ["n_steps=64", "n_epochs=2"]
    assert cli.build_parser().parse_args(["train", "--out", "unused"]).given == ()


@pytest.mark.slow
def test_resume_takes_the_runs_own_settings_and_refuses_others(tmp_path, capsys):
    """``relreps train --out RUN --resume`` needs no other option: the run's config.json gives every
    setting (here all far from the defaults); an option given too must agree with it."""
    import json
    from dataclasses import asdict

    from tiny import tiny

    from relreps import zoo
    from relreps.cli import main
    from relreps.training import saved_config

    config = tiny(color="blue", seed=5, total_steps=48)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(asdict(config)))  # a run stopped before its first checkpoint
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps(asdict(config)))
    assert main(["train", "--out", str(other), "--resume", "--seed", "6", "--color", "blue"]) == 2
    err = capsys.readouterr().err
    assert "seed: 5 -> 6" in err and "color" not in err and not (other / "progress.csv").exists()
    assert main(["train", "--out", str(run), "--resume", "--seed", "5"]) == 0
    assert saved_config(run) == config
    card = zoo.load(run / "agent.json").card
    assert card["config"]["seed"] == 5 and card["config"]["color"] == "blue" and card["training"]["steps"] >= 48
    (run / "config.json").write_text("{not json")
    assert main(["train", "--out", str(run), "--resume"]) == 2
    assert "not a readable run config" in capsys.readouterr().err
