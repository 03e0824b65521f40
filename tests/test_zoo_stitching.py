"""Agent files (save, load, checksums, bad cards), stitching (every extractor swapped, the manual
composition, bad joins) and the stitching table, on tiny trained agents."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from relreps import stitching, zoo
from relreps.extractors import encoder_of


@pytest.fixture
def agents(zoo_agents):
    """The six tiny trained agents of the test run (tests/conftest.py); copy a policy before editing it."""
    return zoo_agents


OBS = np.random.default_rng(0).integers(0, 256, size=(6, 3, 84, 84), dtype=np.uint8)


def test_train_saves_a_loadable_agent(agents, tmp_path):
    a = agents["rel-red"]
    assert (a.algo, a.representation, a.color) == ("ppo", "relative", "red")
    assert a.card["training"]["steps"] == 32 and a.card["anchors"]["set"] == "scripted-3136"
    # save -> load -> identical actions and tensors
    path = zoo.save(a.policy, tmp_path / "copy", a.card)
    b = zoo.load(path)
    assert np.array_equal(a.predict(OBS)[0], b.predict(OBS)[0])
    for (k, v), (k2, v2) in zip(a.policy.state_dict().items(), b.policy.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert b.card["bytes"] < zoo.MAX_BYTES


def test_agent_files_are_checked(agents, tmp_path):
    a = agents["abs-red"]
    path = zoo.save(a.policy, tmp_path / "x", a.card)
    with pytest.raises(FileExistsError, match="already exists"):
        zoo.save(a.policy, tmp_path / "x", a.card)
    weights = tmp_path / "x.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(zoo.ZooError, match="sha256.*corrupted"):
        zoo.load(path)
    # a card that does not match the weights
    path = zoo.save(a.policy, tmp_path / "y", a.card)
    card = json.loads(path.read_text())
    card["head_dim"] = 32
    path.write_text(json.dumps(card))
    with pytest.raises(zoo.ZooError, match="does not match the weights|shapes differ|the card was edited"):
        zoo.load(path)
    with pytest.raises(zoo.ZooError, match="available"):
        zoo.load("no-such-agent")


def test_stitch_swaps_every_extractor(agents):
    enc, pol = agents["rel-green"], agents["rel-red"]
    s = stitching.stitch(enc, pol)
    p = s.policy
    new = p.features_extractor
    assert p.pi_features_extractor is new and p.vf_features_extractor is new
    assert s.color == "green" and s.card["stitched"] == {"encoder": enc.name, "policy": pol.name, "mode": "relative"}
    # equals the manual composition head_red(encoder_green(x))
    obs, _ = pol.policy.obs_to_tensor(OBS)
    with torch.no_grad():
        feats = enc.policy.extract_features(obs, enc.policy.pi_features_extractor)
        logits = pol.policy.action_net(pol.policy.mlp_extractor.forward_actor(feats))
    assert np.array_equal(s.predict(OBS)[0], logits.argmax(1).numpy())
    # the originals are untouched
    assert pol.policy.features_extractor is not new and enc.policy.features_extractor is not new


def _anchor_outputs(agent):
    enc = encoder_of(agent.policy)
    frames = enc.anchor_frames.permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        return enc(frames)


def test_anchor_mean_stitch_moves_the_representation_by_the_anchor_means(agents, tmp_path):
    enc, pol = agents["rel-green"], agents["rel-red"]
    mean_enc, mean_pol = _anchor_outputs(enc).mean(0), _anchor_outputs(pol).mean(0)
    torch.testing.assert_close(stitching.anchor_mean(enc), mean_enc)
    assert not torch.allclose(mean_enc, mean_pol)  # two colours, two trainings: the means differ
    s = stitching.stitch(enc, pol, align="anchor-mean")
    assert s.name == f"{enc.name}+{pol.name}[anchor-mean]" and s.card["stitched"]["align"] == "anchor-mean"
    p = s.policy
    assert p.pi_features_extractor is p.features_extractor is p.vf_features_extractor
    # the policy's head sees r_green(x) - mean_green + mean_red
    obs, _ = pol.policy.obs_to_tensor(OBS)
    with torch.no_grad():
        feats = enc.policy.extract_features(obs, enc.policy.pi_features_extractor) - mean_enc + mean_pol
        logits = pol.policy.action_net(pol.policy.mlp_extractor.forward_actor(feats))
        torch.testing.assert_close(p.extract_features(obs, p.pi_features_extractor), feats)
    assert np.array_equal(s.predict(OBS)[0], logits.argmax(1).numpy())
    # the aligned stitch's own anchors now have the policy agent's mean
    torch.testing.assert_close(stitching.anchor_mean(s), mean_pol, atol=1e-5, rtol=0)
    # an agent aligned with a copy of itself is unchanged
    twin = zoo.Agent(name="twin", policy=copy.deepcopy(enc.policy), card=enc.card)
    assert np.array_equal(stitching.stitch(enc, twin, align="anchor-mean").predict(OBS)[0], enc.predict(OBS)[0])
    # the originals are untouched, and the wrapped stitch is not saved as if it were a plain agent
    torch.testing.assert_close(stitching.anchor_mean(enc), mean_enc)
    with pytest.raises(ValueError, match="cannot be saved"):
        zoo.save(s.policy, tmp_path / "aligned", s.card)
    assert not list(tmp_path.iterdir())
    # a table with the alignment: the diagonal is each agent alone, the card of a cell names it
    encs = {"red": agents["rel-red"], "green": agents["rel-green"]}
    t = stitching.table(encs, encs, track_seeds=[10_000_002], processes=1, max_steps=8, align="anchor-mean")
    assert t["align"] == "anchor-mean" and t["cells"]["green"]["red"]["episodes"][0]["length"] == 8
    plain = stitching.table(encs, encs, track_seeds=[10_000_002], processes=1, max_steps=8)
    assert "align" not in plain and plain["cells"]["red"]["red"] == t["cells"]["red"]["red"]


def test_affine_stitch_feeds_the_head_the_least_squares_map_on_parallel_frames(agents, tmp_path):
    from relreps import anchors, latent

    enc, pol = agents["rel-green"], agents["rel-red"]
    s = stitching.stitch(enc, pol, align="affine")
    assert s.name == f"{enc.name}+{pol.name}[affine]"
    assert s.card["stitched"]["align"] == "affine" and s.card["stitched"]["fit_frames"] == "scripted-3136"
    w, b = encoder_of(s.policy).matrix, encoder_of(s.policy).shift
    # the ridge least-squares map on the set's frames, each agent's in its own colour, solved here
    # another way: ordinary least squares on the centred outputs with sqrt(lam) I rows appended
    aset = anchors.load("scripted-3136")
    x = latent.embed(enc, aset.frames("green")).astype(np.float64)
    y = latent.embed(pol, aset.frames("red")).astype(np.float64)
    assert w.shape == (16, 16) and b.shape == (16,)
    xc, yc = x - x.mean(0), y - y.mean(0)
    lam = stitching.RIDGE * (xc ** 2).sum() / 16
    expected = np.linalg.lstsq(np.vstack([xc, np.sqrt(lam) * np.eye(16)]), np.vstack([yc, np.zeros((16, 16))]),
                               rcond=None)[0]
    np.testing.assert_allclose(w.double().numpy(), expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_allclose(b.double().numpy(), y.mean(0) - x.mean(0) @ expected, atol=1e-4)
    fitted = ((x @ w.double().numpy() + b.double().numpy() - y) ** 2).sum()
    assert fitted < 0.9 * (yc ** 2).sum()  # it explains part of the target's spread
    # stable: outputs moved by float noise (1e-6, as one CPU thread instead of two does) barely move it
    noise = np.random.default_rng(0).normal(scale=1e-6, size=x.shape)
    w2, b2 = stitching.fit_affine(x + noise, y)
    assert (w2 - w).abs().max() < 1e-3 and (b2 - b).abs().max() < 1e-3
    p = s.policy
    assert p.pi_features_extractor is p.features_extractor is p.vf_features_extractor
    obs, _ = pol.policy.obs_to_tensor(OBS)
    with torch.no_grad():
        feats = enc.policy.extract_features(obs, enc.policy.pi_features_extractor) @ w + b
        logits = pol.policy.action_net(pol.policy.mlp_extractor.forward_actor(feats))
        torch.testing.assert_close(p.extract_features(obs, p.pi_features_extractor), feats)
    assert np.array_equal(s.predict(OBS)[0], logits.argmax(1).numpy())
    # an agent mapped onto a copy of itself: nearly the identity on its own outputs
    twin = zoo.Agent(name="twin", policy=copy.deepcopy(enc.policy), card=enc.card)
    same = encoder_of(stitching.stitch(enc, twin, align="affine").policy)
    back = x @ same.matrix.double().numpy() + same.shift.double().numpy()
    assert ((back - x) ** 2).sum() < 0.01 * (xc ** 2).sum()
    # absolute agents too (no anchors of their own: the default set fits the map), and the map
    # bridges output sizes that the paper's stitch refuses (8 features into a 16-feature head)
    a = agents["abs-red"]
    twin = zoo.Agent(name="abs-twin", policy=copy.deepcopy(a.policy), card=a.card)
    assert stitching.stitch(a, twin, align="affine").card["stitched"]["fit_frames"] == "scripted-3136"
    bridged = stitching.stitch(agents["rel-blue-8"], pol, align="affine")
    assert bridged.predict(OBS)[0].shape == (6,) and tuple(encoder_of(bridged.policy).matrix.shape) == (8, 16)
    # the wrapped stitch is not saved as if it were a plain agent
    with pytest.raises(ValueError, match="cannot be saved"):
        zoo.save(s.policy, tmp_path / "affine", s.card)
    assert not list(tmp_path.iterdir())
    # a table fits each pair from one embedding per agent: its cells are the stitches' own
    from relreps.evaluation import evaluate

    encs = {"red": pol, "green": enc}
    t = stitching.table(encs, encs, track_seeds=[10_000_002], processes=1, max_steps=8, align="affine")
    assert t["align"] == "affine" and t["ridge"] == stitching.RIDGE
    assert t["cells"]["green"]["red"] == evaluate(s, color="green", track_seeds=[10_000_002], processes=1,
                                                  max_steps=8).summary()
    # bad fits and a map without its alignment
    with pytest.raises(ValueError, match="3 states are not more than the encoder's 16 outputs"):
        stitching.fit_affine(x[:3], y[:3])
    with pytest.raises(ValueError, match="ridge must be > 0"):
        stitching.fit_affine(x, y, ridge=0)
    with pytest.raises(ValueError, match="outputs are the same for every state"):
        stitching.fit_affine(np.ones_like(x), y)
    with pytest.raises(ValueError, match="relative encoder .* absolute head"):
        stitching.stitch(enc, agents["abs-red"], align="affine")
    with pytest.raises(ValueError, match="same n states"):
        stitching.fit_affine(x, y[:-1])
    with pytest.raises(ValueError, match="affine_map is given but align is 'anchor-mean'"):
        stitching.stitch(enc, pol, align="anchor-mean", affine_map=(w, b))
    with pytest.raises(ValueError, match="the affine map outputs 8 features but .* head takes 16"):
        stitching.stitch(enc, pol, align="affine", affine_map=(w[:, :8], b[:8]))


def test_stitch_dqn_online_and_target(agents):
    enc, pol = agents["dqn-green"], agents["dqn-red"]
    s = stitching.stitch(enc, pol)
    assert s.policy.q_net.features_extractor is s.policy.q_net_target.features_extractor
    obs, _ = pol.policy.obs_to_tensor(OBS)
    with torch.no_grad():
        feats = enc.policy.q_net.extract_features(obs, enc.policy.q_net.features_extractor)
        q = pol.policy.q_net.q_net(feats)
    assert np.array_equal(s.predict(OBS)[0], q.argmax(1).numpy())


def test_bad_stitches(agents):
    with pytest.raises(ValueError, match="relative encoder .* absolute head"):
        stitching.stitch(agents["rel-red"], agents["abs-red"])
    with pytest.raises(ValueError, match="outputs 8 features but .* takes 16"):
        stitching.stitch(agents["rel-blue-8"], agents["rel-red"])
    with pytest.raises(ValueError, match="both agents are relative"):
        stitching.stitch(agents["rel-red"], agents["rel-green"], mode="absolute")
    with pytest.raises(ValueError, match="unknown mode"):
        stitching.stitch(agents["rel-red"], agents["rel-green"], mode="translated")
    with pytest.raises(ValueError, match="unknown align 'mean'.*anchor-mean.*affine"):
        stitching.stitch(agents["rel-red"], agents["rel-green"], align="mean")
    with pytest.raises(ValueError, match="needs relative agents.*no anchors"):
        stitching.stitch(agents["abs-red"], agents["abs-red"], align="anchor-mean")
    with pytest.raises(ValueError, match="unknown align"):
        stitching.table({"red": agents["rel-red"]}, {"red": agents["rel-red"]}, track_seeds=[1], align="x")
    with pytest.raises(ValueError, match="unknown actions 'best'"):
        stitching.table({"red": agents["rel-red"]}, {"red": agents["rel-red"]}, track_seeds=[1], actions="best")
    # a Q head has no action probabilities to sample from: refused before any episode
    with pytest.raises(ValueError, match="needs a policy with action probabilities"):
        stitching.table({"red": agents["rel-red"]}, {"red": agents["dqn-red"]}, track_seeds=[1], actions="sampled")


def test_table(agents):
    encs = {"red": agents["rel-red"], "green": agents["rel-green"]}
    t = stitching.table(encs, encs, track_seeds=[10_000_002], processes=1, max_steps=8)
    assert set(t["cells"]) == {"red", "green"} and set(t["cells"]["red"]) == {"red", "green"}
    cell = t["cells"]["green"]["red"]
    assert cell["color"] == "green" and len(cell["episodes"]) == 1 and cell["episodes"][0]["length"] == 8


def test_table_reuses_known_cells(agents):
    encs = {"red": agents["rel-red"], "green": agents["rel-green"]}
    kw = dict(track_seeds=[10_000_002], processes=1, max_steps=8)
    first = stitching.table(encs, encs, **kw)
    assert first["sha256"]["encoders"]["red"] == agents["rel-red"].card["sha256"]
    # another green agent (other weights): only the cells it enters are driven again
    other = zoo.Agent(name="green-2", policy=copy.deepcopy(agents["rel-green"].policy),
                      card=dict(agents["rel-green"].card, sha256="0" * 64))
    swapped = {"red": agents["rel-red"], "green": other}
    second = stitching.table(swapped, swapped, known=first, **kw)
    assert second["cells"]["red"]["red"] is first["cells"]["red"]["red"]
    for e, p in (("red", "green"), ("green", "red"), ("green", "green")):
        assert second["cells"][e][p] is not first["cells"][e][p]
        assert second["cells"][e][p] == first["cells"][e][p]  # same weights, same episodes
    assert second["encoders"]["green"] == "green-2" and second["sha256"]["policies"]["green"] == "0" * 64
    # measured another way (other tracks, episode length or alignment): nothing is copied
    for change in (dict(track_seeds=[10_000_003]), dict(max_steps=9), dict(align="anchor-mean")):
        t = stitching.table(encs, encs, known=first, **{**kw, **change})
        assert all(t["cells"][e][p] is not first["cells"][e][p] for e in encs for p in encs)
    # an affine table is matched only with the same ridge
    fitted = stitching.table(encs, encs, **kw, align="affine")
    assert stitching.table(encs, encs, known=fitted, **kw, align="affine")["cells"]["red"]["green"] is \
        fitted["cells"]["red"]["green"]
    other_ridge = {**fitted, "ridge": 0.0}
    assert stitching.table(encs, encs, known=other_ridge, **kw, align="affine")["cells"]["red"]["green"] is not \
        fitted["cells"]["red"]["green"]
    # sampled actions: recorded by the table and its cells, matched only with a table that sampled
    sampled = stitching.table(encs, encs, **kw, actions="sampled")
    assert sampled["actions"] == "sampled" and sampled["cells"]["red"]["green"]["actions"] == "sampled"
    assert "actions" not in first and "actions" not in first["cells"]["red"]["green"]
    assert all(stitching.table(encs, encs, known=first, **kw, actions="sampled")["cells"][e][p] is not
               first["cells"][e][p] for e in encs for p in encs)
    assert stitching.table(encs, encs, known=sampled, **kw, actions="sampled")["cells"]["red"]["green"] is \
        sampled["cells"]["red"]["green"]
    # a table without checksums (written before they were recorded) is never matched
    old = {k: v for k, v in first.items() if k != "sha256"}
    assert stitching.table(encs, encs, known=old, **kw)["cells"]["red"]["red"] is not first["cells"]["red"]["red"]


def test_variants(agents, tmp_path, monkeypatch):
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path))
    assert zoo.variants("ppo", "relative", "green") == []
    for name, key in (("ppo-rel-green", "rel-green"), ("ppo-rel-green-s2", "rel-green"),
                      ("ppo-rel-red", "rel-red"), ("ppo-abs-red", "abs-red"), ("other-green", "rel-green")):
        zoo.save(agents[key].policy, tmp_path / name, agents[key].card)
    assert zoo.variants("ppo", "relative", "green") == ["other-green", "ppo-rel-green-s2"]
    assert zoo.variants("ppo", "relative", "red") == [] and zoo.variants("ppo", "absolute", "red") == []
    assert zoo.variants("ddqn", "relative", "green") == []


def test_export_sb3(agents, tmp_path):
    from stable_baselines3 import PPO

    a = agents["rel-red"]
    path = zoo.export_sb3(a, tmp_path / "rel-red")
    assert path == tmp_path / "rel-red.zip" and sorted(p.name for p in tmp_path.iterdir()) == ["rel-red.zip"]
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        zoo.export_sb3(a, path)
    assert path.read_bytes() == before
    assert zoo.export_sb3(a, tmp_path / "rel-red", overwrite=True) == path
    model = PPO.load(path, device="cpu")
    assert np.array_equal(model.predict(OBS, deterministic=True)[0], a.predict(OBS)[0])


def test_export_sb3_double_dqn(agents, tmp_path):
    """A relative Double DQN's zip loads with ``DoubleDQN.load`` and acts as the agent; it does not
    pickle the model's pairs of online and target encoders (rebuilt when the zip is loaded)."""
    import zipfile

    from relreps.algos import DoubleDQN, relative_encoders_in, target_network

    a = agents["dqn-red"]
    path = zoo.export_sb3(a, tmp_path / "dqn-red")
    with zipfile.ZipFile(path) as z:
        assert "_anchor_pairs" not in json.loads(z.read("data"))
    model = DoubleDQN.load(path, device="cpu")
    assert np.array_equal(model.predict(OBS, deterministic=True)[0], a.predict(OBS)[0])
    ((online, target),) = model._anchor_pairs
    assert online is model.q_net.features_extractor
    assert relative_encoders_in(target_network(model)) == [target]


def test_cli_evaluate_and_table(agents, tmp_path, capsys):
    from relreps.cli import main

    for color in ("red", "green"):
        a = agents[f"rel-{color}"]
        zoo.save(a.policy, tmp_path / "zoo" / f"ppo-rel-{color}", a.card)
    ev = ["evaluate", str(tmp_path / "zoo" / "ppo-rel-red"), "--tracks", "1", "--max-steps", "5",
          "--processes", "1", "--out", str(tmp_path / "eval.json")]
    assert main(ev) == 0
    assert "on red: max return" in capsys.readouterr().out
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["agent"] == "ppo-rel-red" and saved["tracks"] == [10_000_000] and saved["max_steps"] == 5
    assert main(ev) == 2 and "--overwrite" in capsys.readouterr().err  # never replaced silently
    args = ["table", "--representations", "relative", "--colors", "red", "green", "--agents-dir",
            str(tmp_path / "zoo"), "--tracks", "1", "--max-steps", "5", "--processes", "1", "--out",
            str(tmp_path / "results")]
    assert main(args) == 0
    t = json.loads((tmp_path / "results" / "table-ppo-relative.json").read_text())
    assert set(t["cells"]) == {"red", "green"} and t["encoders"]["red"] == "ppo-rel-red"
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err  # results are not replaced
    # the aligned table goes to its own file, beside the paper's
    before = (tmp_path / "results" / "table-ppo-relative.json").read_bytes()
    assert main([*args, "--align", "anchor-mean"]) == 0
    assert "aligned by anchor-mean" in capsys.readouterr().out
    aligned = json.loads((tmp_path / "results" / "table-ppo-relative-anchor-mean.json").read_text())
    assert aligned["align"] == "anchor-mean" and (tmp_path / "results" / "table-ppo-relative.json").read_bytes() == before
    assert aligned["cells"]["red"]["red"] == t["cells"]["red"]["red"]  # an agent alone is not stitched
    assert main([*args[:2], "absolute", *args[3:], "--align", "anchor-mean", "--overwrite"]) == 2
    assert "needs relative agents" in capsys.readouterr().err
    # sampled actions: a table of their own, beside the greedy one, which stays as it was
    assert main([*args, "--actions", "sampled", "--align", "anchor-mean"]) == 0
    assert "anchor-mean, sampled actions" in capsys.readouterr().out
    sampled = json.loads((tmp_path / "results" / "table-ppo-relative-anchor-mean-sampled.json").read_text())
    assert sampled["actions"] == "sampled" and sampled["align"] == "anchor-mean"
    assert (tmp_path / "results" / "table-ppo-relative.json").read_bytes() == before
    assert main([*ev[:-1], str(tmp_path / "eval-sampled.json"), "--actions", "sampled"]) == 0
    assert "on red (sampled actions): max return" in capsys.readouterr().out
    assert json.loads((tmp_path / "eval-sampled.json").read_text())["actions"] == "sampled"
    # the affine map: relative tables, and absolute ones too (no anchors needed), each in its own file
    assert main([*args, "--align", "affine"]) == 0
    fitted = json.loads((tmp_path / "results" / "table-ppo-relative-affine.json").read_text())
    assert fitted["align"] == "affine" and fitted["cells"]["red"]["red"] == t["cells"]["red"]["red"]
    zoo.save(agents["abs-red"].policy, tmp_path / "zoo" / "ppo-abs-red", agents["abs-red"].card)
    assert main(["table", "--representations", "absolute", *args[3:5], *args[6:], "--align", "affine"]) == 0
    assert json.loads((tmp_path / "results" / "table-ppo-absolute-affine.json").read_text())["align"] == "affine"
    capsys.readouterr()
    assert main(["table", "--agents-dir", str(tmp_path / "none"), "--out", str(tmp_path / "r2")]) == 2
    # --agent COLOUR=AGENT replaces one colour's agent, into a file of its own
    other = agents["rel-green"]
    zoo.save(other.policy, tmp_path / "elsewhere" / "ppo-rel-green-s2", {**other.card, "seed": 2})
    swap = [*args, "--agent", f"green={tmp_path / 'elsewhere' / 'ppo-rel-green-s2'}"]
    assert main(swap) == 0
    assert "4 of 4 cells copied" in capsys.readouterr().out  # the same weights: every cell is known
    swapped = json.loads((tmp_path / "results" / "table-ppo-relative+ppo-rel-green-s2.json").read_text())
    assert swapped["encoders"] == {"red": "ppo-rel-red", "green": "ppo-rel-green-s2"}
    assert swapped["cells"] == t["cells"]
    # other weights: only the cell it does not enter (red encoder, red policy) is copied
    changed = copy.deepcopy(other.policy)
    with torch.no_grad():
        next(changed.action_net.parameters()).add_(0.5)
    zoo.save(changed, tmp_path / "elsewhere" / "ppo-rel-green-s3", {**other.card, "seed": 3})
    assert main([*args, "--agent", f"green={tmp_path / 'elsewhere' / 'ppo-rel-green-s3'}"]) == 0
    assert "1 of 4 cells copied" in capsys.readouterr().out
    assert (tmp_path / "results" / "table-ppo-relative.json").read_bytes() == before
    assert main(swap) == 2 and "--overwrite" in capsys.readouterr().err
    bad = {"green=" + str(tmp_path / "zoo" / "ppo-rel-red"): "color red (the table needs green)",
           "blue=ppo-rel-blue": "not one of the table's colours (red, green)",
           "green": "expected COLOUR=AGENT",
           "green=" + str(tmp_path / "nothing"): "no agent"}
    for spec, message in bad.items():
        assert main([*args, "--overwrite", "--agent", spec]) == 2
        assert message in capsys.readouterr().err
    assert main([*args[:2], "relative", "absolute", *args[3:], "--agent", "green=ppo-rel-green"]) == 2
    assert "single --representations" in capsys.readouterr().err


def test_half_precision_files(agents, tmp_path):
    a = agents["rel-red"]
    policy = copy.deepcopy(a.policy)
    # anchor embeddings with a nearly dead unit: a spread far below float16's resolution, which the
    # projection's standardisation scales back up (what PPO with the per-gradient-step update makes)
    with torch.no_grad():
        for name, buf in policy.named_buffers():
            if name.endswith("anchor_embeddings"):
                buf[:, 0] = 1e-8 * torch.arange(1, len(buf) + 1)
    full = zoo.load(zoo.save(policy, tmp_path / "f32", a.card))
    half = zoo.load(zoo.save(policy, tmp_path / "f16", a.card, half=True))
    assert half.card["dtype"] == "float16" and half.card["bytes"] < 0.75 * full.card["bytes"]
    n_anchor_tensors = 0
    for (k, v), v16 in zip(full.policy.state_dict().items(), half.policy.state_dict().values()):
        assert v16.dtype == v.dtype  # computes in float32 after loading
        if k.endswith("anchor_embeddings"):  # kept in float32
            n_anchor_tensors += 1
            assert torch.equal(v16, v) and v16[1, 0] == pytest.approx(2e-8)
        elif v.is_floating_point():
            torch.testing.assert_close(v16, v.half().float())
    assert n_anchor_tensors >= 1
    obs = torch.rand(4, 3, 84, 84)
    torch.testing.assert_close(encoder_of(half)(obs), encoder_of(full)(obs), rtol=1e-2, atol=1e-3)


def test_ship_a_run_into_the_zoo(agents, tmp_path, capsys):
    from relreps.cli import main

    a = agents["rel-green"]
    run, dest = tmp_path / "run", tmp_path / "zoo"
    zoo.save(a.policy, run / "agent", a.card, half=True)
    (run / "eval.csv").write_text("timesteps,mean_max_return\n32,1.5\n")
    with pytest.raises(zoo.ZooError, match="not a finished run"):
        zoo.ship(run, "ppo-rel-green", dest=dest)
    (run / "done.json").write_text("{}")
    card = zoo.ship(run, "ppo-rel-green", dest=dest)
    shipped = zoo.load(card)
    assert shipped.name == "ppo-rel-green" and np.array_equal(shipped.predict(OBS)[0], a.predict(OBS)[0])
    assert zoo.logs("ppo-rel-green", root=dest)["eval"].read_text().startswith("timesteps")
    curve = zoo.learning_curve("ppo-rel-green", root=dest)
    assert curve == {"steps": [32], "value": [1.5], "representation": "relative", "color": "green",
                     "seed": a.card["seed"]}
    with pytest.raises(zoo.ZooError, match="no training logs"):
        zoo.logs("ppo-rel-red", root=dest)
    # never replaced silently
    assert main(["zoo", "ship", str(run), "ppo-rel-green", "--dest", str(dest)]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert main(["zoo", "ship", str(run), "ppo-rel-green", "--dest", str(dest), "--overwrite"]) == 0
    assert zoo.card("ppo-rel-green", root=dest)["name"] == "ppo-rel-green"
    with pytest.raises(ValueError, match="invalid agent name"):
        zoo.ship(run, "../elsewhere", dest=dest)
    # the quality-bar evaluation goes into the card, and the listing reports it
    assert "evaluation" not in zoo.card("ppo-rel-green", root=dest)
    result = {"sha256": a.card["sha256"], "color": "green", "max_steps": 30, "tracks": [7, 8],
              "mean_max_return": 12.5, "std_max_return": 2.5, "mean_final_return": 10.0, "laps_finished": 0,
              "episodes": [{"track_seed": 7, "max_return": 10.0}, {"track_seed": 8, "max_return": 15.0}]}
    (run / zoo.EVALUATION_FILE).write_text(json.dumps(dict(result, color="red")))
    with pytest.raises(zoo.ZooError, match="own colour 'green'"):
        zoo.ship(run, "ppo-rel-green", dest=dest, overwrite=True)
    (run / zoo.EVALUATION_FILE).write_text(json.dumps(dict(result, sha256="0" * 64)))
    with pytest.raises(zoo.ZooError, match="evaluates another agent"):
        zoo.ship(run, "ppo-rel-green", dest=dest, overwrite=True)
    (run / zoo.EVALUATION_FILE).write_text(json.dumps(result))
    card = zoo.card(zoo.ship(run, "ppo-rel-green", dest=dest, overwrite=True))
    assert card["evaluation"]["max_returns"] == [10.0, 15.0] and zoo.score(card)["mean_max_return"] == 12.5
    assert zoo.score({"training": {"final_eval": {"mean_max_return": 3.0}}}) == {"mean_max_return": 3.0}
    assert zoo.score({}) is None


def test_training_facts_of_a_run_that_moved_machines():
    """A run resumed on other hardware: each segment's device and CPUs with its steps."""
    segments = [{"from_step": 0, "device": "cuda", "gpu": "NVIDIA H100", "cpu_count": 16},
                {"from_step": 200_000, "device": "cpu", "cpu_count": 2}]
    assert zoo._per_segment(segments, "device", 2_000_000) == "cuda 0-200K, cpu 200-2000K"
    assert zoo._per_segment(segments, "gpu", 2_000_000) == "NVIDIA H100 0-200K, - 200-2000K"
    assert zoo._per_segment(segments[1:], "cpu_count", 2_000_000) == 2


def _seed_variant(agent, seed, *, shift=0.0):
    """``agent`` as if trained with ``seed``: its card names the seed; ``shift`` moves its action
    head's weights (other weights, so another sha256)."""
    policy = copy.deepcopy(agent.policy)
    if shift:
        with torch.no_grad():
            next(policy.action_net.parameters()).add_(shift)
    sha = agent.card["sha256"] if not shift else f"{seed:064d}"
    return zoo.Agent(name=f"{agent.name}-seed{seed}", policy=policy, card={**agent.card, "seed": seed, "sha256": sha})


def test_seed_agent_name():
    assert zoo.seed_agent_name("ppo", "absolute", "red", 1) == "ppo-abs-red"
    assert zoo.seed_agent_name("ppo", "relative", "green", 2) == "ppo-rel-green-s2"
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="seed"):
            zoo.seed_agent_name("ppo", "relative", "green", bad)


def test_seed_summary_groups_by_colour_and_seed():
    def t(cells):
        return {"cells": {e: {p: {"mean_max_return": v} for p, v in row.items()} for e, row in cells.items()}}

    tables = {"1-1": t({"g": {"g": 800, "r": 100}, "r": {"g": 300, "r": 900}}),
              "1-2": t({"g": {"g": 600, "r": 50}, "r": {"g": 10, "r": 700}}),
              "2-1": t({"g": {"g": 400, "r": 0}, "r": {"g": 30, "r": 500}}),
              "2-2": t({"g": {"g": 700, "r": 200}, "r": {"g": 100, "r": 1000}})}
    s = stitching.seed_summary(tables)
    assert s["cells"]["g"]["g"]["values"] == [800, 600, 400, 700] and s["cells"]["g"]["g"]["n"] == 4
    assert s["cells"]["g"]["g"]["mean"] == pytest.approx(625.0)
    assert s["cells"]["g"]["g"]["std"] == pytest.approx(np.std([800, 600, 400, 700]))
    g = s["groups"]
    assert g["alone"]["mean"] == pytest.approx((800 + 900 + 700 + 1000) / 4) and g["alone"]["cells"] == 4
    assert g["seed"]["mean"] == pytest.approx((600 + 700 + 400 + 500) / 4)
    assert g["colour"]["mean"] == pytest.approx((100 + 300 + 200 + 100) / 4)
    assert g["colour+seed"]["mean"] == pytest.approx((50 + 10 + 0 + 30) / 4)
    assert g["colour+seed"]["worst"] == 0 and g["colour+seed"]["worst_cell"] == "g encoder (seed 2) + r policy (seed 1)"
    assert g["seed"]["ratio"] == pytest.approx(550 / 850)
    # one seed: no cell of another seed, so no seed groups
    assert set(stitching.seed_summary({"1-1": tables["1-1"]})["groups"]) == {"alone", "colour"}


def test_seed_tables(agents):
    red, green = agents["rel-red"], agents["rel-green"]
    by_seed = {1: {"red": _seed_variant(red, 1), "green": _seed_variant(green, 1)},
               2: {"red": _seed_variant(red, 2, shift=0.5), "green": _seed_variant(green, 2, shift=-0.5)}}
    kw = dict(track_seeds=[10_000_002], processes=1, max_steps=8)
    own = stitching.table(by_seed[1], by_seed[1], **kw)
    out = stitching.seed_tables(by_seed, known=[own], **kw)
    assert out["seeds"] == [1, 2] and out["colors"] == ["red", "green"]
    assert list(out["tables"]) == ["1-1", "1-2", "2-1", "2-2"]
    assert out["tables"]["1-1"]["cells"]["red"]["green"] is own["cells"]["red"]["green"]  # copied, not driven
    cross = out["tables"]["1-2"]
    # the same colour across seeds is a stitch: seed-1 encoder, seed-2 policy
    assert cross["encoders"]["red"] == by_seed[1]["red"].name and cross["policies"]["red"] == by_seed[2]["red"].name
    assert cross["cells"]["red"]["red"]["color"] == "red"
    means = [out["tables"][k]["cells"]["green"]["red"]["mean_max_return"] for k in out["tables"]]
    assert out["summary"]["cells"]["green"]["red"]["mean"] == pytest.approx(np.mean(means))
    assert out["summary"]["groups"]["seed"]["cells"] == 4
    # refused before any episode: colours that differ between seeds, a card of another seed or colour
    with pytest.raises(ValueError, match="same colours"):
        stitching.seed_tables({1: by_seed[1], 2: {"red": by_seed[2]["red"]}}, **kw)
    with pytest.raises(ValueError, match="trained with seed 2, not 3"):
        stitching.seed_tables({1: by_seed[1], 3: by_seed[2]}, **kw)
    with pytest.raises(ValueError, match="is a red agent, not green"):
        stitching.seed_tables({1: {"red": by_seed[1]["red"], "green": by_seed[1]["red"]}}, **kw)
    with pytest.raises(ValueError, match="no seeds"):
        stitching.seed_tables({}, **kw)
    with pytest.raises(ValueError, match="seed 'a': expected a training seed"):
        stitching.seed_tables({"a": by_seed[1]}, **kw)


def test_cli_table_seeds(agents, tmp_path, capsys):
    from relreps.cli import main

    zoo_dir = tmp_path / "zoo"
    for color in ("red", "green"):
        a = agents[f"rel-{color}"]
        zoo.save(a.policy, zoo_dir / f"ppo-rel-{color}", {**a.card, "seed": 1})
        moved = copy.deepcopy(a.policy)
        with torch.no_grad():
            next(moved.action_net.parameters()).add_(0.5)
        zoo.save(moved, zoo_dir / f"ppo-rel-{color}-s2", {**a.card, "seed": 2})
    out = tmp_path / "results"
    args = ["table", "--representations", "relative", "--colors", "red", "green", "--agents-dir", str(zoo_dir),
            "--tracks", "1", "--max-steps", "5", "--processes", "1", "--out", str(out)]
    assert main([*args, "--seeds", "1", "2"]) == 0
    capsys.readouterr()
    # again: seed 2's cells are copied from its own file, seed 1's table is driven anew
    assert main([*args, "--seeds", "1", "2", "--overwrite"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("cells copied") == 1 and "4 of 4 cells copied" in printed
    one, two = json.loads((out / "table-ppo-relative.json").read_text()), \
        json.loads((out / "table-ppo-relative-s2.json").read_text())
    assert one["encoders"]["red"] == "ppo-rel-red" and two["encoders"]["red"] == "ppo-rel-red-s2"
    capsys.readouterr()
    assert main([*args, "--seeds", "1", "2", "--cross-seed"]) == 0
    printed = capsys.readouterr().out
    # each seed's own table gives its 8 cells; the 8 across seeds are driven
    assert "8 of 16 cells copied" in printed and "seed-1 encoders (rows) x seed-2 policies" in printed
    both = json.loads((out / "table-ppo-relative-seeds-1-2.json").read_text())
    assert list(both["tables"]) == ["1-1", "1-2", "2-1", "2-2"] and both["representation"] == "relative"
    assert both["tables"]["1-1"]["cells"] == one["cells"] and both["tables"]["2-2"]["cells"] == two["cells"]
    assert both["tables"]["2-1"]["policies"]["green"] == "ppo-rel-green"
    assert set(both["summary"]["groups"]) == {"alone", "seed", "colour", "colour+seed"}
    # a table with one agent swapped gives the cells across seeds it holds (seed-1 red encoder with
    # the seed-2 green policy, and the other way round); a file that is not a table is passed over
    assert main([*args, "--agent", f"green={zoo_dir / 'ppo-rel-green-s2.json'}"]) == 0
    swapped = json.loads((out / "table-ppo-relative+ppo-rel-green-s2.json").read_text())
    (out / "table-ppo-relative-seeds-1-2.json").rename(tmp_path / "kept.json")
    (out / "table-junk.json").write_text("not JSON")
    (out / "table-junk-2.json").write_text(json.dumps({"cells": [], "tables": {"1-1": {"cells": 3}}}))
    capsys.readouterr()
    assert main([*args, "--seeds", "1", "2", "--cross-seed"]) == 0
    assert "10 of 16 cells copied" in capsys.readouterr().out
    again = json.loads((out / "table-ppo-relative-seeds-1-2.json").read_text())
    assert again["tables"]["1-2"]["cells"]["red"]["green"] == swapped["cells"]["red"]["green"]
    assert again["tables"] == json.loads((tmp_path / "kept.json").read_text())["tables"]  # same episodes
    # measured again over itself: every cell is copied
    assert main([*args, "--seeds", "1", "2", "--cross-seed", "--overwrite"]) == 0
    assert "16 of 16 cells copied" in capsys.readouterr().out
    # a second Table 1 (seed 2 alone) copies the cells the cross-seed file holds; seed 1's is driven
    (out / "table-ppo-relative-s2.json").rename(tmp_path / "two.json")
    (out / "table-ppo-relative.json").rename(tmp_path / "one.json")
    assert main([*args, "--seeds", "2"]) == 0
    assert "4 of 4 cells copied" in capsys.readouterr().out
    assert json.loads((out / "table-ppo-relative-s2.json").read_text())["cells"] == two["cells"]
    assert main([*args, "--seeds", "1"]) == 0
    assert "copied" not in capsys.readouterr().out
    assert json.loads((out / "table-ppo-relative.json").read_text())["cells"] == one["cells"]  # same episodes
    for junk in ("table-junk.json", "table-junk-2.json", "table-ppo-relative+ppo-rel-green-s2.json"):
        (out / junk).unlink()
    # bad selections: one clear error, nothing written
    before = sorted(p.name for p in out.iterdir())
    bad = {("--seeds", "1", "1"): "distinct training seeds",
           ("--seeds", "0", "2"): "distinct training seeds",
           ("--seeds", "2", "--cross-seed"): "needs two seeds or more",
           ("--seeds", "1", "3", "--cross-seed"): "seed 3, relative red",
           ("--seeds", "1", "2", "--cross-seed"): "exists; pass --overwrite",
           ("--seeds", "2", "--agent", "green=ppo-rel-green"): "--agent replaces one agent of the seed-1 table",
           ("--colors", "green", "green"): "expected distinct colours among green, red, blue, yellow",
           ("--colors", "purple"): "(purple is not one)"}
    for extra, message in bad.items():
        assert main([*args, *extra]) == 2
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before


def test_tables_refuse_a_bad_stitch_before_driving_any_episode(agents, monkeypatch):
    import relreps.evaluation

    def driven(*args, **kwargs):
        raise AssertionError("an episode was driven before the bad stitch was refused")

    monkeypatch.setattr(relreps.evaluation, "evaluate", driven)
    red, blue8 = agents["rel-red"], agents["rel-blue-8"]  # 16 relative features vs a head of 8
    encs = {"red": red, "blue": blue8}
    with pytest.raises(ValueError, match="features"):
        stitching.table(encs, encs, track_seeds=[10_000_002], processes=1, max_steps=8)
    with pytest.raises(ValueError, match="features"):
        stitching.seed_tables({2: encs}, track_seeds=[10_000_002], processes=1, max_steps=8)
    with pytest.raises(ValueError, match="anchor-mean"):
        stitching.check_stitchable(agents["abs-red"], agents["abs-red"], align="anchor-mean")
    stitching.check_stitchable(red, blue8, align="affine")  # a map bridges the sizes: accepted


def test_affine_fit_set_is_one_that_can_be_found(tmp_path):
    from relreps.anchors import DEFAULT_SET

    def agent(anchors=None):
        return zoo.Agent(name="a", policy=None, card={} if anchors is None else {"anchors": anchors})

    custom = tmp_path / "my-set"
    assert stitching._fit_set(agent({"set": "agent-3136"}), agent()) == "agent-3136"  # shipped: by name
    assert stitching._fit_set(agent(), agent({"set": "agent-3136"})) == "agent-3136"  # else the policy's
    assert stitching._fit_set(agent(), agent()) == DEFAULT_SET  # absolute agents: the default set
    # a custom set: from the folder its card records while that folder holds it, else the default set
    lost = {"set": "my-set", "path": str(custom)}
    assert stitching._fit_set(agent(lost), agent()) == DEFAULT_SET
    custom.mkdir()
    (custom / "anchors.json").write_text("{}")
    assert stitching._fit_set(agent(lost), agent()) == str(custom)


def test_stitch_across_algorithms(agents):
    """A PPO encoder with a Double DQN head acts by the argmax of the Q-values of its features; a
    Double DQN encoder with a PPO head by the argmax of PPO's logits."""
    ppo, dqn = agents["rel-red"], agents["dqn-green"]
    obs, _ = ppo.policy.obs_to_tensor(OBS)
    with torch.no_grad():
        ppo_features = ppo.policy.extract_features(obs, ppo.policy.pi_features_extractor)
        dqn_features = dqn.policy.q_net.extract_features(obs, dqn.policy.q_net.features_extractor)
        q = dqn.policy.q_net.q_net(ppo_features)
        logits = ppo.policy.action_net(ppo.policy.mlp_extractor.forward_actor(dqn_features))
    ppo_enc_q_head = stitching.stitch(ppo, dqn)
    assert ppo_enc_q_head.algo == "ddqn" and ppo_enc_q_head.card["stitched"]["encoder"] == ppo.name
    assert ppo_enc_q_head.policy.q_net.features_extractor is ppo_enc_q_head.policy.q_net_target.features_extractor
    assert np.array_equal(ppo_enc_q_head.predict(OBS)[0], q.argmax(1).numpy())
    q_enc_ppo_head = stitching.stitch(dqn, ppo)
    assert q_enc_ppo_head.algo == "ppo"
    assert np.array_equal(q_enc_ppo_head.predict(OBS)[0], logits.argmax(1).numpy())
    # the representations must still match: an absolute PPO encoder cannot feed a relative Q head
    with pytest.raises(ValueError, match="absolute encoder .* relative head"):
        stitching.stitch(agents["abs-red"], dqn)


def test_algorithm_tables(agents, monkeypatch):
    by_algo = {"ppo": {"red": agents["rel-red"], "green": agents["rel-green"]},
               "ddqn": {"red": agents["dqn-red"], "green": agents["dqn-green"]}}
    kw = dict(track_seeds=[10_000_002], processes=1, max_steps=8)
    out = stitching.algorithm_tables(by_algo, **kw)
    assert out["algos"] == ["ppo", "ddqn"] and out["colors"] == ["red", "green"]
    assert list(out["tables"]) == ["ppo-ppo", "ppo-ddqn", "ddqn-ppo", "ddqn-ddqn"]
    cross = out["tables"]["ppo-ddqn"]
    assert cross["encoders"]["red"] == agents["rel-red"].name and cross["policies"]["red"] == agents["dqn-red"].name
    assert set(out["summary"]["groups"]) == {"alone", "algorithm", "colour", "colour+algorithm"}
    assert out["summary"]["groups"]["algorithm"]["cells"] == 4
    import re

    worst = re.fullmatch(r"(\w+) encoder \((\w+)\) \+ (\w+) policy \((\w+)\)",
                         out["summary"]["groups"]["algorithm"]["worst_cell"])
    assert worst and worst[1] == worst[3] and {worst[2], worst[4]} == {"ppo", "ddqn"}  # same colour, two algorithms
    # refused before any episode: an agent of another algorithm than it stands for, or a bad name
    import relreps.evaluation

    def driven(*args, **kwargs):
        raise AssertionError("an episode was driven before the bad input was refused")

    monkeypatch.setattr(relreps.evaluation, "evaluate", driven)
    with pytest.raises(ValueError, match="trained with algorithm ppo, not ddqn"):
        stitching.algorithm_tables({"ppo": by_algo["ppo"], "ddqn": by_algo["ppo"]}, **kw)
    with pytest.raises(ValueError, match="without '-'"):
        stitching.algorithm_tables({"ppo-x": by_algo["ppo"]}, **kw)
    with pytest.raises(ValueError, match="no algorithms"):
        stitching.algorithm_tables({}, **kw)


def test_cli_table_algorithms(agents, tmp_path, capsys, monkeypatch):
    from relreps.cli import main

    zoo_dir = tmp_path / "zoo"
    for key, name in {"rel-red": "ppo-rel-red", "rel-green": "ppo-rel-green",
                      "dqn-red": "ddqn-rel-red", "dqn-green": "ddqn-rel-green"}.items():
        zoo.save(agents[key].policy, zoo_dir / name, agents[key].card)
    out = tmp_path / "results"
    args = ["table", "--representations", "relative", "--colors", "red", "green", "--agents-dir", str(zoo_dir),
            "--tracks", "1", "--max-steps", "5", "--processes", "1", "--out", str(out)]
    assert main([*args, "--algo", "ddqn"]) == 0
    own = json.loads((out / "table-ddqn-relative.json").read_text())
    assert own["algo"] == "ddqn" and own["encoders"]["red"] == "ddqn-rel-red"
    capsys.readouterr()
    import relreps.evaluation

    driven = []
    evaluate = relreps.evaluation.evaluate
    monkeypatch.setattr(relreps.evaluation, "evaluate", lambda agent, **kw: (driven.append(agent.name), evaluate(agent, **kw))[1])
    assert main([*args, "--algos", "ppo", "ddqn"]) == 0
    assert len(driven) == 12  # the 4 cells of the Double DQN table are copied from it, not driven
    monkeypatch.undo()
    printed = capsys.readouterr().out
    assert "ppo encoders (rows) x ddqn policies (columns)" in printed and "colour+algorithm" in printed
    both = json.loads((out / "table-algos-ppo-ddqn-relative.json").read_text())
    assert list(both["tables"]) == ["ppo-ppo", "ppo-ddqn", "ddqn-ppo", "ddqn-ddqn"] and both["seed"] == 1
    assert both["tables"]["ddqn-ddqn"]["cells"] == own["cells"]  # copied from the single table
    assert both["tables"]["ddqn-ppo"]["encoders"]["green"] == "ddqn-rel-green"
    assert both["tables"]["ddqn-ppo"]["policies"]["green"] == "ppo-rel-green"
    # bad selections: one clear error, nothing written
    before = sorted(p.name for p in out.iterdir())
    bad = {("--algos", "ppo"): "expected two distinct algorithms or more",
           ("--algos", "ppo", "ppo"): "expected two distinct algorithms or more",
           ("--algos", "ppo", "ddqn", "--algo", "ppo"): "pass one of the two",
           ("--algos", "ppo", "ddqn", "--seeds", "1", "2", "--cross-seed"): "one factor at a time",
           ("--algos", "ppo", "ddqn", "--seeds", "1", "2"): "--algos takes one training seed",
           ("--algos", "ppo", "ddqn", "--agent", "red=ppo-rel-red"): "--agent replaces one agent",
           ("--algos", "ppo", "qrdqn"): "qrdqn, relative red",
           ("--algos", "ppo", "ddqn"): "exists; pass --overwrite"}
    for extra, message in bad.items():
        assert main([*args, *extra]) == 2
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before


def test_agent_file_without_anchor_embeddings(agents, tmp_path):
    """``anchor_embeddings="reembedded"``: the file leaves the anchor embeddings out, the card says so,
    and loading embeds the anchor frames with the loaded weights; a card and file that disagree are
    refused, as are an absolute agent and an unknown choice."""
    from safetensors.torch import load_file

    a = agents["rel-red"]
    path = zoo.save(a.policy, tmp_path / "fresh", a.card, half=True, anchor_embeddings="reembedded")
    assert not any(k.endswith("anchor_embeddings") for k in load_file(tmp_path / "fresh.safetensors"))
    card = json.loads(path.read_text())
    assert card["anchors"]["embeddings"] == "reembedded"
    b = zoo.load(path)
    enc = encoder_of(b)
    assert torch.equal(enc.anchor_embeddings, enc.embed_anchors())  # what its own weights make of the frames
    assert not torch.equal(enc.anchor_embeddings, encoder_of(a).anchor_embeddings)  # not the average
    assert b.predict(OBS)[0].shape == (len(OBS),)
    # saved again as usual, the card no longer says re-embedded
    again = json.loads(zoo.save(b.policy, tmp_path / "again", b.card).read_text())
    assert "embeddings" not in again["anchors"]
    # the card and the weights must agree
    card["anchors"].pop("embeddings")
    path.write_text(json.dumps(card))
    with pytest.raises(zoo.ZooError, match="anchor embeddings are saved, but the weights lack them"):
        zoo.load(path)
    saved = json.loads(zoo.save(a.policy, tmp_path / "kept", a.card).read_text())
    saved["anchors"]["embeddings"] = "reembedded"  # weights with the average, a card that says otherwise
    (tmp_path / "kept.json").write_text(json.dumps(saved))
    with pytest.raises(zoo.ZooError, match="anchor embeddings are reembedded, but the weights hold them"):
        zoo.load(tmp_path / "kept.json")
    card["anchors"]["embeddings"] = "somewhere"
    path.write_text(json.dumps(card))
    with pytest.raises(zoo.ZooError, match="anchors.embeddings is 'somewhere'"):
        zoo.load(path)
    with pytest.raises(ValueError, match="for relative agents"):
        zoo.save(agents["abs-red"].policy, tmp_path / "abs", agents["abs-red"].card, anchor_embeddings="reembedded")
    with pytest.raises(ValueError, match="needs a relative agent's card with its anchors"):
        zoo.save(a.policy, tmp_path / "cardless", {k: v for k, v in a.card.items() if k != "anchors"},
                 anchor_embeddings="reembedded")
    assert not (tmp_path / "cardless.json").exists()
    with pytest.raises(ValueError, match="unknown anchor_embeddings 'none'"):
        zoo.save(a.policy, tmp_path / "bad", a.card, anchor_embeddings="none")
    assert not (tmp_path / "abs.json").exists() and not (tmp_path / "bad.json").exists()


def test_a_card_takes_only_a_greedy_held_out_evaluation(tmp_path):
    """The score on a card is the protocol's: an evaluation file with sampled actions or on the
    validation tracks is refused, naming what to do."""
    card = {"sha256": "a" * 64, "color": "green"}
    base = {"sha256": "a" * 64, "color": "green", "max_steps": 1000, "tracks": [1], "mean_max_return": 800.0,
            "std_max_return": 0.0, "mean_final_return": 790.0, "laps_finished": 1,
            "episodes": [{"max_return": 800.0}], "track_set": "held-out"}
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(base))
    assert zoo._evaluation_for_card(path, card)["max_returns"] == [800.0]
    for change, message in (({"actions": "sampled"}, "drove with sampled actions.*--overwrite and without --actions"),
                            ({"track_set": "validation"}, "validation tracks.*--overwrite and without --track-set")):
        path.write_text(json.dumps({**base, **change}))
        with pytest.raises(zoo.ZooError, match=message):
            zoo._evaluation_for_card(path, card)


def test_action_probabilities_are_the_policy_the_greedy_action_reads(agents):
    """Sampled actions draw from what SB3's own predict takes the argmax of: on real agents, stitched
    or not, the most probable action is the greedy one."""
    from relreps import evaluation

    joined = stitching.stitch(agents["rel-red"], agents["rel-green"])
    for agent in (agents["rel-red"], agents["abs-red"], joined):
        for frame in OBS.transpose(0, 2, 3, 1):
            probs = evaluation.action_probabilities(agent.policy, frame)
            assert probs.shape == (5,) and abs(probs.sum() - 1) < 1e-6
            assert int(np.argmax(probs)) == evaluation.act(agent.policy, frame)
