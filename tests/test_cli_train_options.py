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
