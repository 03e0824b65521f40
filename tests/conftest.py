"""Fixtures the test modules share: the tiny trained agents, each trained once per test run.

The fast loop (unit tests without training runs, notebook runs or other long tests)::

    python -m pytest -m "not slow"

``slow`` marks the tests that train (by hand or through ``relreps train``), drive many episodes or
take more than a few seconds; every test that uses a trained-agent fixture below is marked ``slow``
here, and every notebook test (book/*.ipynb, run by nbval) by the root conftest.py. Plain
``pytest`` (``make test``) runs everything; ``pytest tests`` runs the unit tests alone.

The agents are built from the shared tiny config (tests/tiny.py) in a ``tmp_path_factory`` folder.
Tests must not change them in place: copy a policy (``copy.deepcopy``) before editing its weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny import tiny

from relreps import training, zoo
from relreps.training import TrainConfig

#: Fixtures that train agents: a test using one (directly or through another fixture) is ``slow``.
TRAINED_FIXTURES = frozenset({"zoo_agents", "explorer_agents"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if TRAINED_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """One torch thread (restored after): tiny networks on a few frames run several times faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def zoo_config(color: str, representation: str = "relative", algo: str = "ppo", **kw: Any) -> TrainConfig:
    """The agents of agent files and stitching: seed 2, no checkpoints, the DQN family with a small
    replay buffer that starts learning within the 32 steps."""
    if algo != "ppo":
        kw.setdefault("hyperparameters", {"learning_starts": 8, "buffer_size": 32, "batch_size": 4,
                                          "target_update_interval": 8})
    return tiny(algo=algo, representation=representation, color=color, seed=2, eval_tracks=(10_000_001,),
                checkpoint_every=0, **kw)


def explorer_config(color: str, representation: str = "relative") -> TrainConfig:
    """The agents of the stitch explorer and recorded drives: the shared tiny run, no checkpoints."""
    return tiny(representation=representation, color=color, eval_tracks=(10_000_001,), checkpoint_every=0)


@pytest.fixture(scope="session")
def zoo_agents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, zoo.Agent]:
    """Six tiny trained agents (tests/test_zoo_stitching.py): relative PPO on red and green, absolute
    PPO on red, relative PPO on blue with 8 anchors, Double DQN (relative) on red and green."""
    root = tmp_path_factory.mktemp("zoo")
    out = {}
    for key, cfg in {
        "rel-red": zoo_config("red"),
        "rel-green": zoo_config("green"),
        "abs-red": zoo_config("red", "absolute"),
        "rel-blue-8": zoo_config("blue", n_anchors=8),
        "dqn-red": zoo_config("red", algo="ddqn"),
        "dqn-green": zoo_config("green", algo="ddqn"),
    }.items():
        training.train(cfg, root / key)
        out[key] = zoo.load(root / key / "agent")
    return out


@pytest.fixture(scope="session")
def explorer_agents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three tiny trained PPO agents named as the zoo names them (``ppo-rel-red``, ``ppo-rel-green``,
    ``ppo-abs-red``; tests/test_widgets.py), saved in a folder that can serve as the zoo, given as
    ``"_zoo"``. Trained on one torch thread."""
    root = tmp_path_factory.mktemp("widgets")
    out: dict[str, Any] = {}
    with one_torch_thread():
        for rep, color in [("relative", "red"), ("relative", "green"), ("absolute", "red")]:
            name = f"ppo-{rep[:3]}-{color}"
            training.train(explorer_config(color, rep), root / "runs" / name)
            agent = zoo.load(root / "runs" / name / "agent")
            zoo.save(agent.policy, root / "zoo" / name, agent.card)
            out[name] = zoo.load(root / "zoo" / name)
    out["_zoo"] = Path(root / "zoo")
    return out
