"""relreps.latent: similarity matrices and their metrics, invariances of the relative representation,
embeddings taken from the extractor that predict() uses, comparisons of agents, the CLI, the plots."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from relreps import anchors, cli, envs, evaluation, latent, plots, stitching, zoo
from relreps.extractors import AbsoluteEncoder, RelativeEncoder
from relreps.projection import relative_projection


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _orthogonal(dim: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(_rng(seed).standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


# ------------------------------------------------------------------------------------------
# similarity and metrics
# ------------------------------------------------------------------------------------------


def test_a_space_compared_with_itself_is_perfect():
    x = _rng(0).standard_normal((50, 32))
    s = latent.similarity(x, x)
    assert s.shape == (50, 50) and s.dtype == np.float64
    np.testing.assert_allclose(np.diag(s), 1.0, atol=1e-12)
    m = latent.metrics(s)
    assert m.n == 50 and m.top1 == 1.0 and m.top1_within == 1.0 and m.mean_rank == 1.0
    assert m.matched == pytest.approx(1.0) and m.unmatched < 0.2 and m.gap > 0.8


def test_similarity_is_the_cosine_row_by_column():
    a, b = _rng(1).standard_normal((5, 7)), _rng(2).standard_normal((3, 7))
    s = latent.similarity(torch.as_tensor(a, dtype=torch.float32), b)
    assert s.shape == (5, 3)
    for i in range(5):
        for j in range(3):
            expected = a[i] @ b[j] / np.linalg.norm(a[i]) / np.linalg.norm(b[j])
            assert s[i, j] == pytest.approx(expected, abs=1e-6)
    # a zero vector is similar to nothing (and no NaN)
    assert np.array_equal(latent.similarity(np.zeros((1, 7)), b), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="one size"):
        latent.similarity(a, _rng(3).standard_normal((3, 6)))


def test_metrics_on_constructed_matrices():
    m = latent.metrics(np.eye(4), tolerance=0)
    assert (m.matched, m.unmatched, m.top1, m.top1_within, m.mean_rank) == (1.0, 0.0, 1.0, 1.0, 1.0)
    # every frame is most similar to the next one: missed exactly, found within one frame
    n = 6
    shifted = np.eye(n, k=1)
    m = latent.metrics(shifted, tolerance=1)
    assert m.matched == 0.0 and m.unmatched == pytest.approx(5 / 30)
    assert m.top1 == 0.0
    assert m.top1_within == pytest.approx(5 / 6)  # the last row is all zeros: a tie is a miss
    # rows 0-4: one column above the diagonal, four tied with it; row 5: five ties
    assert m.mean_rank == pytest.approx((5 * (1 + 1 + 4 / 2) + (1 + 5 / 2)) / 6)
    assert latent.metrics(shifted, tolerance=0).top1_within == 0.0
    # a constant matrix says nothing: no hits, the rank is chance
    m = latent.metrics(np.full((5, 5), 0.7), tolerance=1)
    assert m.top1 == 0.0 and m.top1_within == 0.0 and m.mean_rank == 3.0 and m.gap == pytest.approx(0.0)
    # a tolerance that covers every column cannot be beaten from outside
    assert latent.metrics(np.full((3, 3), 0.5), tolerance=5).top1_within == 1.0
    with pytest.raises(ValueError, match="square"):
        latent.metrics(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="tolerance"):
        latent.metrics(np.eye(3), tolerance=-1)


# ------------------------------------------------------------------------------------------
# invariances (float64): what makes relative spaces comparable and absolute ones not
# ------------------------------------------------------------------------------------------


def test_relative_spaces_of_rotated_latents_match_absolute_ones_do_not():
    rng = _rng(4)
    x = torch.as_tensor(rng.standard_normal((40, 16)), dtype=torch.float64)  # 40 states
    a = torch.as_tensor(rng.standard_normal((12, 16)), dtype=torch.float64)  # 12 anchor states
    q = torch.as_tensor(_orthogonal(16, 5))  # space B = space A rotated
    rel_a = relative_projection(x, anchors=a, standardize=False)
    rel_b = relative_projection(x @ q, anchors=a @ q, standardize=False)
    np.testing.assert_allclose(rel_a.numpy(), rel_b.numpy(), atol=1e-12)
    m_rel = latent.metrics(latent.similarity(rel_a, rel_b))
    assert m_rel.matched == pytest.approx(1.0, abs=1e-12) and m_rel.top1 == 1.0
    m_abs = latent.metrics(latent.similarity(x, x @ q))
    assert m_abs.matched < 0.5 and m_abs.top1 < 0.5
    # the cosine matrix itself only depends on the angles: a common rotation changes nothing
    y = torch.as_tensor(rng.standard_normal((30, 16)), dtype=torch.float64)
    np.testing.assert_allclose(latent.similarity(x @ q, y @ q), latent.similarity(x, y), atol=1e-12)


def test_standardised_relative_spaces_ignore_per_dimension_scale_and_shift():
    rng = _rng(6)
    x = torch.as_tensor(rng.standard_normal((30, 8)), dtype=torch.float64)
    a = torch.as_tensor(rng.standard_normal((20, 8)), dtype=torch.float64)
    scale = torch.as_tensor(rng.uniform(0.1, 10.0, 8))
    shift = torch.as_tensor(rng.standard_normal(8))
    rel_a = relative_projection(x, anchors=a, standardize=True)
    rel_b = relative_projection(x * scale + shift, anchors=a * scale + shift, standardize=True)
    np.testing.assert_allclose(rel_a.numpy(), rel_b.numpy(), atol=1e-7)  # eps in the std: not exact
    assert latent.metrics(latent.similarity(x, x * scale + shift)).matched < 0.99


# ------------------------------------------------------------------------------------------
# encoders on a parallel drive
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drive():
    return latent.parallel_drive(["green", "red"], n_steps=150, stride=2, processes=1)


def test_parallel_drive(drive):
    assert len(drive) == len(drive.recipe.pool()[::2]) == drive.frames("green").shape[0]
    assert drive.colors == ["green", "red"]
    assert drive.recipe.track_seeds == [latent.LATENT_TRACK_SEED]
    # a colour not replayed yet is replayed on demand: the same states as a direct replay
    blue = drive.frames("blue")
    assert np.array_equal(blue, anchors.replay(drive.recipe, "blue").frames[drive.indices])
    assert not np.array_equal(blue, drive.frames("green"))
    with pytest.raises(ValueError, match="stride"):
        latent.parallel_drive(["green"], recipe=drive.recipe, stride=0)
    with pytest.raises(ValueError, match="colour"):
        latent.parallel_drive(["purple"], recipe=drive.recipe)


OBS = zoo.OBS_SPACE


def _permuted_scaled_copy(encoder, seed: int):
    """The same encoder whose latent units are permuted and scaled by positive factors
    (a map that commutes with the final ReLU): same information, different absolute coordinates."""
    other = copy.deepcopy(encoder)
    linear = other.net[-2]
    perm = torch.as_tensor(_rng(seed).permutation(linear.out_features))
    scale = torch.as_tensor(_rng(seed).uniform(0.5, 3.0, linear.out_features), dtype=torch.float32)
    with torch.no_grad():
        linear.weight.copy_(linear.weight[perm] * scale[:, None])
        linear.bias.copy_(linear.bias[perm] * scale)
    return other


def test_relative_encoders_agree_where_absolute_ones_do_not(drive):
    torch.manual_seed(0)
    frames = drive.frames("green")
    anchor_frames = frames[::3][:12]
    # per-dimension standardisation, no latent norm: invariant to the permuted, scaled copy's map
    rel_a = RelativeEncoder(OBS, anchors=anchor_frames, n_anchors=len(anchor_frames), latent_dim=16,
                            standardize=True, latent_norm=None)
    rel_b = _permuted_scaled_copy(rel_a, seed=1)
    abs_a, abs_b = AbsoluteEncoder(OBS, latent_dim=16), AbsoluteEncoder(OBS, latent_dim=16)
    abs_a.net.load_state_dict(rel_a.net.state_dict())
    abs_b.net.load_state_dict(rel_b.net.state_dict())
    np.testing.assert_allclose(latent.embed(rel_a, frames), latent.embed(rel_b, frames), atol=1e-4)  # float32
    c_rel = latent.compare(rel_a, rel_b, drive, colors=("green", "green"), names=("a", "b"))
    c_abs = latent.compare(abs_a, abs_b, drive, colors=("green", "green"), names=("a", "b"))
    assert c_rel.representation == "relative" and c_abs.representation == "absolute"
    assert c_rel.metrics.matched > 0.9999 and c_rel.metrics.top1 == 1.0  # Figure 3b in miniature
    assert c_abs.metrics.matched < 0.99 and c_abs.metrics.top1 < 0.5  # and 3a
    assert c_rel.sim.shape == (len(drive), len(drive))


def test_embed_batches_and_sizes(drive):
    torch.manual_seed(1)
    enc = AbsoluteEncoder(OBS, latent_dim=8)
    frames = drive.frames("red")[:10]
    full = latent.embed(enc, frames)
    assert full.shape == (10, 8) and full.dtype == np.float32
    np.testing.assert_allclose(latent.embed(enc, frames, batch_size=3), full, atol=1e-6)
    assert latent.embed(enc, frames[:0]).shape == (0, 8)
    with pytest.raises(ValueError, match="uint8 frames"):
        latent.embed(enc, frames.astype(np.float32))


# ------------------------------------------------------------------------------------------
# agents: embed follows predict; comparisons that make no sense are refused; the CLI
# ------------------------------------------------------------------------------------------


def _card(representation="relative", color="green", algo="ppo", **kw) -> dict:
    encoder: dict = {"latent_dim": 16}
    if representation == "relative":
        encoder.update(anchors="scripted-3136", color=color, n_anchors=16)
    encoder.update(kw)
    return {"format": zoo.FORMAT_VERSION, "algo": algo, "representation": representation, "color": color,
            "seed": 1, "head_dim": 16, "encoder_kwargs": encoder}


@pytest.fixture(scope="module")
def agents(drive):
    """Untrained agents with cards; their anchors are a few drive frames in the agent's colour (fast)
    while the cards name the shipped set, as saved agents do."""
    torch.manual_seed(2)
    cards = {
        "rel-green": _card(), "rel-red": _card(color="red"), "abs-green": _card("absolute"),
        "rel-red-other-anchors": _card(color="red", anchor_seed=7),
        "rel-red-8": _card(color="red", n_anchors=8, latent_dim=8),
        "ddqn-abs-red": _card("absolute", color="red", algo="ddqn"),
    }
    out = {}
    for name, card in cards.items():
        build = copy.deepcopy(card)
        if card["representation"] == "relative":
            build["encoder_kwargs"]["anchors"] = drive.frames(card["color"])[:: 3][:16]
        out[name] = zoo.Agent(name=name, policy=zoo.build_policy(build), card=card)
    return out


def test_embed_uses_the_extractor_that_predict_uses(agents, drive):
    agent = agents["rel-green"]
    policy = copy.deepcopy(agent.policy)
    # make features_extractor differ from pi_features_extractor: predict() uses the latter
    policy.features_extractor = _permuted_scaled_copy(policy.pi_features_extractor, seed=3)
    with torch.no_grad():
        policy.features_extractor.net[0].weight.mul_(-1.0)
    frames = drive.frames("green")[:8]
    chw = torch.as_tensor(frames.transpose(0, 3, 1, 2))
    with torch.no_grad():
        expected = policy.extract_features(chw, policy.pi_features_extractor)
        feats = torch.as_tensor(latent.embed(policy, frames))
        logits = policy.action_net(policy.mlp_extractor.forward_actor(feats))
    np.testing.assert_allclose(feats.numpy(), expected.numpy(), atol=1e-6)
    actions, _ = policy.predict(frames.transpose(0, 3, 1, 2), deterministic=True)
    assert np.array_equal(logits.argmax(1).numpy(), actions)
    # the head alone, fed those outputs, picks the same actions as the whole agent
    assert np.array_equal(stitching.head_actions(policy, feats.numpy()), stitching.greedy_actions(policy, frames))
    # the Agent, the policy and the extractor give the same embedding
    assert np.array_equal(latent.embed(agent, frames), latent.embed(agent.policy.pi_features_extractor, frames))
    # DQN family: the online network's extractor
    dqn = agents["ddqn-abs-red"].policy
    assert latent.encoder_of(dqn) is dqn.q_net.features_extractor
    with pytest.raises(ValueError, match="no features extractor"):
        latent.encoder_of(torch.nn.Linear(2, 2))


def test_compare_agents_in_their_own_colours(agents, drive):
    c = latent.compare(agents["rel-green"], agents["rel-red"], drive, tolerance=1)
    assert c.colors == ("green", "red") and c.names == ("rel-green", "rel-red")
    expected = latent.similarity(latent.embed(agents["rel-green"], drive.frames("green")),
                                 latent.embed(agents["rel-red"], drive.frames("red")))
    np.testing.assert_allclose(c.sim, expected)
    assert c.metrics == latent.metrics(expected, tolerance=1)
    d = c.to_dict()
    assert d["metrics"]["tolerance"] == 1 and "sim" not in d and json.dumps(d)
    assert c.label == "rel-green (green) vs rel-red (red)"


def test_compare_refuses_what_cannot_be_compared(agents, drive):
    with pytest.raises(ValueError, match="relative encoder with a absolute|relative encoder with an absolute"):
        latent.compare(agents["rel-green"], agents["abs-green"], drive)
    with pytest.raises(ValueError, match="different anchors"):
        latent.compare(agents["rel-green"], agents["rel-red-other-anchors"], drive)
    with pytest.raises(ValueError, match="16 and 8 features"):
        latent.compare(agents["rel-green"], agents["rel-red-8"], drive)
    with pytest.raises(ValueError, match="pass colors"):
        latent.compare(agents["abs-green"].policy, agents["abs-green"].policy, drive)


def test_cli_writes_metrics_and_refuses_to_overwrite(agents, tmp_path, capsys):
    paths = [str(zoo.save(agents[n].policy, tmp_path / n, agents[n].card)) for n in ("rel-green", "rel-red")]
    out = tmp_path / "latent.json"
    args = ["latent", *paths, "--steps", "80", "--stride", "2", "--out", str(out)]
    assert cli.main(args) == 0
    result = json.loads(out.read_text())
    assert result["names"] == ["rel-green", "rel-red"] and result["colors"] == ["green", "red"]
    assert result["metrics"]["n"] == result["drive"]["frames"] == len(result["matched_per_frame"]) == 16
    assert result["metrics"]["matched"] == pytest.approx(np.mean(result["matched_per_frame"]), abs=1e-4)
    assert set(result["stitch_agreement"]["stitched"]) == {"rel-green+rel-red", "rel-red+rel-green"}
    assert set(result["stitch_agreement_anchor_mean"]["stitched"]) == {
        "rel-green+rel-red[anchor-mean]", "rel-red+rel-green[anchor-mean]"}
    assert "picks rel-red's action on" in capsys.readouterr().out
    before = out.read_bytes()
    assert cli.main(args) == 2
    assert "exists" in capsys.readouterr().err and out.read_bytes() == before
    assert cli.main([*args, "--overwrite", "--colors", "red", "red"]) == 0
    assert json.loads(out.read_text())["colors"] == ["red", "red"]


def test_anchor_drift_and_reembedded_copy(agents, drive):
    agent = agents["rel-green"]
    enc = latent.encoder_of(agent)
    enc.update_anchors()  # embedded by the current weights: no drift
    d = latent.anchor_drift(agent)
    assert d["mean_cosine"] == pytest.approx(1.0, abs=1e-5) and d["norm_ratio"] == pytest.approx(1.0, abs=1e-5)
    saved = enc.anchor_embeddings.clone()
    try:  # a moving average that lags: half of it is some other embedding
        with torch.no_grad():
            enc.anchor_embeddings.mul_(0.5).add_(0.5 * torch.randn_like(saved))
        d = latent.anchor_drift(agent)
        assert d["min_cosine"] <= d["mean_cosine"] < 0.99
        copy_ = latent.reembedded(agent)
        assert latent.anchor_drift(copy_)["mean_cosine"] == pytest.approx(1.0, abs=1e-5)
        torch.testing.assert_close(latent.encoder_of(copy_).anchor_embeddings, saved)
        assert not torch.allclose(enc.anchor_embeddings, saved)  # the original is untouched
        frames = drive.frames("green")[:4]
        assert not np.allclose(latent.embed(copy_, frames), latent.embed(agent, frames))
    finally:
        with torch.no_grad():
            enc.anchor_embeddings.copy_(saved)
    with pytest.raises(ValueError, match="absolute encoder: it has no anchors"):
        latent.anchor_drift(agents["abs-green"])


def test_cli_reembed_anchors_writes_its_own_file(agents, tmp_path, capsys, monkeypatch):
    paths = [str(zoo.save(agents[n].policy, tmp_path / n, agents[n].card)) for n in ("rel-green", "rel-red")]
    monkeypatch.chdir(tmp_path)
    assert cli.main(["latent", *paths, "--steps", "80", "--stride", "2", "--reembed-anchors"]) == 0
    out = tmp_path / "results" / "latent-rel-green-rel-red-reembedded.json"
    result = json.loads(out.read_text())
    assert result["reembedded_anchors"] and set(result["anchor_drift"]) == {"rel-green", "rel-red"}
    assert "saved anchor embeddings vs re-embedded" in capsys.readouterr().out


def test_cli_tells_apart_two_agents_of_the_same_name(agents, tmp_path, capsys):
    """Two runs' ``RUN/agent.json``: both agents are named ``agent``; each stitch is still reported."""
    paths = [str(zoo.save(agents[n].policy, tmp_path / n / "agent", agents[n].card)) for n in ("rel-green", "rel-red")]
    out = tmp_path / "same-name.json"
    assert cli.main(["latent", *paths, "--steps", "80", "--stride", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["names"]) == set(paths) and set(result["stitch_agreement"]["own_actions"]) == set(paths)
    assert len(result["stitch_agreement"]["stitched"]) == 2
    with pytest.raises(ValueError, match="both agents are named 'agent'"):
        stitching.stitch_agreement(*(dataclasses.replace(agents[n], name="agent") for n in ("rel-green", "rel-red")),
                                   drive=None)


def test_stitch_agreement_judges_each_frame_against_the_policys_own_agent(agents, drive):
    green, red = agents["rel-green"], agents["rel-red"]
    frames = drive.frames("green")[:5]
    acts = stitching.greedy_actions(green, frames)
    assert acts.dtype == np.int64 and [evaluation.act(green.policy, f) for f in frames] == acts.tolist()
    with pytest.raises(ValueError, match="uint8 frames"):
        stitching.greedy_actions(green, frames.astype(np.float32))

    # an agent and its copy: every stitch is the agent itself
    twin = zoo.Agent(name="rel-green-twin", policy=copy.deepcopy(green.policy), card=green.card)
    same = stitching.stitch_agreement(green, twin, drive)
    assert same["frames"] == len(drive) and same["agents_agree"] == 1.0
    assert {s["with_policy_agent"] for s in same["stitched"].values()} == {1.0}

    r = stitching.stitch_agreement(green, red, drive)
    assert set(r["stitched"]) == {"rel-green+rel-red", "rel-red+rel-green"}
    own_red = stitching.greedy_actions(red, drive.frames("red"))
    own_green = stitching.greedy_actions(green, drive.frames("green"))
    stitched = stitching.greedy_actions(stitching.stitch(green, red), drive.frames("green"))
    s = r["stitched"]["rel-green+rel-red"]
    assert (s["encoder"], s["policy"]) == ("rel-green", "rel-red")
    assert s["with_policy_agent"] == pytest.approx((stitched == own_red).mean())
    assert s["with_encoder_agent"] == pytest.approx((stitched == own_green).mean())
    assert r["agents_agree"] == pytest.approx((own_green == own_red).mean())
    for shares in [s["actions"], *r["own_actions"].values()]:
        assert list(shares) == list(envs.ACTIONS) and sum(shares.values()) == pytest.approx(1.0)
    assert s["actions"]["gas"] == pytest.approx((stitched == envs.ACTIONS.index("gas")).mean())
    for name, recall in s["recall"].items():
        chosen = own_red == envs.ACTIONS.index(name)
        assert chosen.any() and recall == pytest.approx((stitched[chosen] == own_red[chosen]).mean())
    assert set(s["recall"]) == {envs.ACTIONS[i] for i in np.unique(own_red)}
    assert {v["recall"]["gas"] for v in same["stitched"].values() if "gas" in v["recall"]} <= {1.0}
    assert json.dumps(r)
    with pytest.raises(ValueError, match="cannot join"):
        stitching.stitch_agreement(green, agents["abs-green"], drive)
    aligned = stitching.stitch_agreement(green, red, drive, align="anchor-mean")
    s = aligned["stitched"]["rel-green+rel-red[anchor-mean]"]
    acts = stitching.greedy_actions(stitching.stitch(green, red, align="anchor-mean"), drive.frames("green"))
    assert aligned["align"] == "anchor-mean" and s["with_policy_agent"] == pytest.approx((acts == own_red).mean())


# ------------------------------------------------------------------------------------------
# plots
# ------------------------------------------------------------------------------------------


def test_similarity_heatmaps_share_one_scale_and_thin_large_matrices():
    small, large = np.eye(4), _rng(7).uniform(-0.5, 0.8, (650, 650))
    fig = plots.similarity_heatmaps({"absolute": small, "relative": large}, "Fig", max_frames=300)
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    assert fig.layout.coloraxis.cmin == pytest.approx(large.min()) and fig.layout.coloraxis.cmax == 1.0
    assert np.asarray(fig.data[1].z).shape == (217, 217)  # every 3rd of 650 frames
    assert fig.layout.title.text.replace("<br>", " ").endswith("Fig; one frame in 3 shown")
    assert np.asarray(fig.data[0].z).shape == (4, 4) and fig.layout.yaxis.autorange == "reversed"
    fig = plots.similarity_heatmaps({"a": small}, zrange=(-1, 1))
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-1, 1)
    with pytest.raises(ValueError, match="square"):
        plots.similarity_heatmaps({"a": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="at least one"):
        plots.similarity_heatmaps({})


def test_matched_histograms():
    fig = plots.matched_histograms({"absolute": [0.1, 0.2, 0.3], "relative": np.array([0.9, 0.95])})
    assert [t.type for t in fig.data] == ["histogram", "histogram"]
    assert fig.data[0].name == "absolute (mean 0.20)" and fig.data[1].name == "relative (mean 0.93)"
    assert fig.layout.barmode == "overlay"
    with pytest.raises(ValueError, match="empty"):
        plots.matched_histograms({"a": []})


def test_catalogue_and_pairs(agents, tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path))
    assert latent.catalogue() == []
    for name in ("rel-red", "rel-green", "abs-green"):
        zoo.save(agents[name].policy, tmp_path / name, agents[name].card)
    rows = latent.catalogue()
    assert [r["name"] for r in rows] == ["abs-green", "rel-green", "rel-red"]  # green first, then red
    assert rows[1] == {"name": "rel-green", "algo": "ppo", "representation": "relative", "color": "green",
                       "seed": 1, "steps": None}
    assert latent.pairs(rows, same=("algo", "representation", "seed"), differ=("color",)) == [
        ("rel-green", "rel-red")]
    assert latent.pairs(rows, same=("color",), differ=("representation",)) == [("abs-green", "rel-green")]
    assert latent.pairs(rows, same=("algo",), differ=("color", "seed")) == []  # one seed only
    with pytest.raises(ValueError, match="unknown fields"):
        latent.pairs(rows, same=("colour",), differ=())


def test_linear_cka():
    rng = _rng(7)
    x = rng.standard_normal((60, 12))
    q = _orthogonal(12, 3)
    # alike up to a rotation, a scale and a shift: 1; the plain cosine of matched rows is not
    assert latent.linear_cka(x, 3.0 * x @ q + 5.0) == pytest.approx(1.0, abs=1e-12)
    assert latent.metrics(latent.similarity(x, x @ q)).matched < 0.5
    # another size works (a map may bridge sizes); unrelated representations score low
    assert latent.linear_cka(x, np.hstack([x, x])) == pytest.approx(1.0, abs=1e-12)
    assert latent.linear_cka(x, rng.standard_normal((60, 12))) < 0.4
    # by hand, for one-dimensional representations: the squared correlation
    a, b = rng.standard_normal((30, 1)), rng.standard_normal((30, 1))
    assert latent.linear_cka(a, b) == pytest.approx(np.corrcoef(a[:, 0], b[:, 0])[0, 1] ** 2, abs=1e-12)
    for bad in ((x, x[:10]), (x[:1], x[:1]), (np.ones((5, 3)), x[:5])):
        with pytest.raises(ValueError):
            latent.linear_cka(*bad)


def test_load_numbers_reads_what_relreps_latent_writes(tmp_path):
    """The numbers a chapter shows from a saved comparison are those the comparison had."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 8))
    sim = latent.similarity(x, x + 0.1 * rng.standard_normal((12, 8)))
    m = latent.metrics(sim)
    path = tmp_path / "cmp.json"
    path.write_text(json.dumps({"names": ["a", "b"], "metrics": m.to_dict(), "cka": 0.5}))
    got = latent.load_numbers(path)
    assert got == pytest.approx({**m.to_dict(), "cka": 0.5})
    path.write_text(json.dumps({"cells": {}}))
    with pytest.raises(ValueError, match="cmp.json is not a comparison written by `relreps latent`"):
        latent.load_numbers(path)
    path.write_text(json.dumps({"metrics": {"matched": 0.5}}))
    with pytest.raises(ValueError, match=r"lack \['top1', 'unmatched'\]"):
        latent.load_numbers(path)
