"""Encoders and heads: sizes, anchors' state and update rule, SB3's initialisation and sharing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from relreps.extractors import (
    CONV_DIM,
    AbsoluteEncoder,
    HeadActorCriticPolicy,
    HeadDQNPolicy,
    RelativeEncoder,
    frames_to_tensor,
)

OBS = spaces.Box(0, 255, (3, 84, 84), np.uint8)
ACT = spaces.Discrete(5)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(32, 84, 84, 3), dtype=np.uint8)


def _policy(cls=HeadActorCriticPolicy, seed=0, **extractor_kwargs):
    torch.manual_seed(seed)
    kwargs = dict(features_extractor_class=extractor_kwargs.pop("extractor", RelativeEncoder))
    if "head_dim" in extractor_kwargs:
        kwargs["head_dim"] = extractor_kwargs.pop("head_dim")
    kwargs["features_extractor_kwargs"] = extractor_kwargs
    return cls(OBS, ACT, lambda _: 2.5e-4, **kwargs)


def _obs(frames: np.ndarray) -> np.ndarray:
    return frames.transpose(0, 3, 1, 2)  # what VecTransposeImage hands the policy


def test_sizes():
    assert AbsoluteEncoder(OBS).features_dim == CONV_DIM == 3136
    assert AbsoluteEncoder(OBS, latent_dim=256).features_dim == 256
    assert AbsoluteEncoder(spaces.Box(0, 255, (84, 84, 3), np.uint8)).features_dim == 3136
    x = torch.rand(2, 3, 84, 84)
    assert AbsoluteEncoder(OBS, latent_dim=64)(x).shape == (2, 64)


def test_relative_sizes(frames):
    # the paper's rule by default: one anchor per encoder dimension
    enc = RelativeEncoder(OBS, anchors=frames, latent_dim=16)
    assert enc.features_dim == 16 and enc.anchor_embeddings.shape == (16, 16)
    with pytest.raises(ValueError, match="one anchor per encoder dimension .32.*24 anchor frames"):
        RelativeEncoder(OBS, anchors=frames[:24], latent_dim=32)
    enc = RelativeEncoder(OBS, anchors=frames, latent_dim=32, n_anchors=24)
    assert enc.features_dim == 24 and enc.anchor_embeddings.shape == (24, 32)
    enc = RelativeEncoder(OBS, anchors=frames, n_anchors=10, latent_dim=32)
    assert enc.features_dim == 10
    out = enc(torch.rand(3, 3, 84, 84))
    assert out.shape == (3, 10) and out.abs().max() <= 1 + 1e-5


@pytest.mark.parametrize("space", [spaces.Box(0, 255, (3, 64, 64), np.uint8),
                                   spaces.Box(0.0, 1.0, (3, 84, 84), np.float32),
                                   spaces.Discrete(3)])
def test_bad_observation_space(space):
    with pytest.raises(ValueError, match="84x84 RGB uint8"):
        AbsoluteEncoder(space)


def test_bad_anchor_inputs(frames):
    with pytest.raises(ValueError, match="n_anchors"):
        RelativeEncoder(OBS, anchors=frames, n_anchors=33)
    with pytest.raises(ValueError, match="alpha"):
        RelativeEncoder(OBS, anchors=frames, latent_dim=16, alpha=1.0)
    with pytest.raises(ValueError, match="uint8 frames"):
        RelativeEncoder(OBS, anchors=frames.astype(np.float32), latent_dim=16)


def test_anchors_embedded_after_sb3_initialisation(frames):
    """SB3's ortho_init re-initialises the extractor after __init__: anchors must follow it."""
    policy = _policy(anchors=frames, latent_dim=32)
    enc = policy.features_extractor
    assert not bool(enc.anchors_ready)
    policy.predict(_obs(frames[:2]), deterministic=True)
    assert bool(enc.anchors_ready)
    torch.testing.assert_close(enc.anchor_embeddings, enc.embed_anchors())


def test_forward_does_not_re_embed_anchors(frames, monkeypatch):
    policy = _policy(anchors=frames, latent_dim=32)
    policy.predict(_obs(frames[:1]))
    calls = []
    enc = policy.features_extractor
    monkeypatch.setattr(enc, "embed_anchors", lambda *a, **k: calls.append(1))
    for _ in range(5):
        policy.predict(_obs(frames[:4]))
        policy.evaluate_actions(torch.as_tensor(_obs(frames[:4])).float(), torch.zeros(4))
    assert calls == []


@pytest.mark.parametrize("alpha", [0.0, 0.9])
def test_anchor_update_rule(frames, alpha):
    enc = RelativeEncoder(OBS, anchors=frames, latent_dim=16, alpha=alpha)
    enc.update_anchors()
    before = enc.anchor_embeddings.clone()
    with torch.no_grad():
        for p in enc.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    new = enc.embed_anchors()
    enc.update_anchors()
    torch.testing.assert_close(enc.anchor_embeddings, alpha * before + (1 - alpha) * new)


def test_folded_anchor_update_equals_successive_updates(frames):
    """update_anchors(steps=k) is k updates with the same encoder: alpha**k of the old average."""
    a = RelativeEncoder(OBS, anchors=frames, latent_dim=16, alpha=0.9)
    a.update_anchors()
    b = RelativeEncoder(OBS, anchors=frames, latent_dim=16, alpha=0.9)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        for pa, pb in zip(a.net.parameters(), b.net.parameters()):
            noise = 0.05 * torch.randn_like(pa)
            pa.add_(noise)
            pb.add_(noise)
    for _ in range(16):
        a.update_anchors()
    b.update_anchors(steps=16)
    torch.testing.assert_close(b.anchor_embeddings, a.anchor_embeddings)
    assert not torch.allclose(b.anchor_embeddings, b.embed_anchors())  # 0.9**16 = 18.5% is still the old one
    with pytest.raises(ValueError, match="steps must be >= 1"):
        b.update_anchors(steps=0)


def test_anchor_embeddings_carry_no_gradient(frames):
    enc = RelativeEncoder(OBS, anchors=frames, latent_dim=16)
    out = enc(torch.rand(2, 3, 84, 84))
    out.sum().backward()
    assert not enc.anchor_embeddings.requires_grad
    assert all(p.grad is not None for p in enc.net.parameters())


def test_saved_state(frames):
    enc = RelativeEncoder(OBS, anchors=frames, latent_dim=16)
    state = enc.state_dict()
    assert "anchor_embeddings" in state and "anchors_ready" in state
    assert "anchor_frames" not in state  # inputs, named by the agent's card, not weights
    enc.update_anchors()
    other = RelativeEncoder(OBS, anchors=frames, latent_dim=16)
    other.load_state_dict(enc.state_dict())
    x = torch.rand(2, 3, 84, 84)
    torch.testing.assert_close(other(x), enc(x))


def test_anchor_frames_take_the_observations_path(frames):
    """An anchor frame fed as an observation (SB3's preprocessing) is its own anchor: cosine 1."""
    policy = _policy(anchors=frames, latent_dim=32, alpha=0.0, standardize=False)
    obs, _ = policy.obs_to_tensor(_obs(frames[[3, 7]]))
    feats = policy.extract_features(obs, policy.features_extractor)
    torch.testing.assert_close(feats[0, 3], torch.tensor(1.0), rtol=0, atol=1e-5)
    torch.testing.assert_close(feats[1, 7], torch.tensor(1.0), rtol=0, atol=1e-5)


def test_ppo_policy_shares_one_extractor(frames):
    policy = _policy(anchors=frames, latent_dim=32)
    assert policy.features_extractor is policy.pi_features_extractor is policy.vf_features_extractor
    assert policy.mlp_extractor.latent_dim_pi == 512
    ln = policy.mlp_extractor.net[0]
    assert isinstance(ln, torch.nn.LayerNorm) and ln.normalized_shape == (32,)


def test_dqn_policy_head(frames):
    policy = _policy(HeadDQNPolicy, anchors=frames, latent_dim=32, head_dim=64)
    assert policy.q_net.features_extractor is not policy.q_net_target.features_extractor
    q = policy.q_net(torch.rand(3, 3, 84, 84))
    assert q.shape == (3, 5)
    assert isinstance(policy.q_net.q_net[0], torch.nn.LayerNorm)


def test_absolute_policy_and_seeded_determinism(frames):
    a = _policy(extractor=AbsoluteEncoder, latent_dim=64, seed=3)
    b = _policy(extractor=AbsoluteEncoder, latent_dim=64, seed=3)
    obs = _obs(frames[:6])
    assert np.array_equal(a.predict(obs, deterministic=True)[0], b.predict(obs, deterministic=True)[0])
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_relative_encoder_from_shipped_set():
    enc = RelativeEncoder(OBS, anchors="scripted-3136", color="red", n_anchors=16, latent_dim=8)
    assert enc.features_dim == 16 and enc.anchor_frames.shape == (16, 84, 84, 3)


def test_prepared_anchors_cached_until_the_anchors_change(frames):
    from relreps.projection import relative_projection

    enc = RelativeEncoder(OBS, anchors=frames, latent_dim=16)
    x = torch.rand(3, 3, 84, 84)
    out = enc(x)
    torch.testing.assert_close(out, relative_projection(enc.embed(x), anchors=enc.anchor_embeddings))
    prep = enc._prepared()
    assert enc._prepared() is prep  # cached
    with torch.no_grad():
        for p in enc.net.parameters():
            p.add_(0.1)
    enc.update_anchors()  # in place: a new version of the buffer
    assert enc._prepared() is not prep
    torch.testing.assert_close(enc(x), relative_projection(enc.embed(x), anchors=enc.anchor_embeddings))
    other = RelativeEncoder(OBS, anchors=frames, latent_dim=16)
    other.load_state_dict(enc.state_dict())
    torch.testing.assert_close(other(x), enc(x))


def test_cli_latent_dim_defaults_to_the_config():
    from relreps.cli import build_parser
    from relreps.training import TrainConfig

    args = build_parser().parse_args(["train", "--out", "x"])
    assert args.latent_dim == TrainConfig.latent_dim == 256
    assert build_parser().parse_args(["train", "--out", "x", "--latent-dim", "none"]).latent_dim is None


def test_moving_the_encoder_drops_its_prepared_anchors(frames):
    """.to() / .cpu() clear the cache of prepared anchors (a CPU copy for forked evaluation
    workers must not keep CUDA tensors); the projection is unchanged."""
    enc = RelativeEncoder(OBS, anchors=frames, latent_dim=16)
    obs = torch.as_tensor(_obs(frames[:3])).float()
    with torch.no_grad():
        before = enc(obs)
    assert enc._prep is not None
    enc.to("cpu")
    assert enc._prep is None
    with torch.no_grad():
        torch.testing.assert_close(enc(obs), before)


def test_std_floor_reaches_the_projection_and_the_config(frames):
    from relreps.projection import prepare_anchors, project
    from relreps.training import TrainConfig

    enc = RelativeEncoder(OBS, anchors=frames, latent_dim=16, standardize=True, std_floor=0.5)
    x = torch.rand(3, 3, 84, 84)
    out = enc(x)
    expected = project(enc.embed(x), prepare_anchors(enc.anchor_embeddings, standardize=True, std_floor=0.5))
    torch.testing.assert_close(out, expected)
    plain = project(enc.embed(x), prepare_anchors(enc.anchor_embeddings, standardize=True))
    assert not torch.allclose(out, plain)
    with pytest.raises(ValueError, match="std_floor"):
        RelativeEncoder(OBS, anchors=frames, latent_dim=16, standardize=True, std_floor=-1)
    with pytest.raises(ValueError, match="std_floor applies"):  # the default projection only centres
        RelativeEncoder(OBS, anchors=frames, latent_dim=16, std_floor=0.5)
    # the config passes it to the encoder (and so to the card) only when set
    assert "std_floor" not in TrainConfig().encoder()[1]
    assert TrainConfig(standardize=True, std_floor=1e-3).encoder()[1]["std_floor"] == 1e-3
    with pytest.raises(ValueError, match="std_floor"):
        TrainConfig(standardize=True, std_floor=2.0)
    with pytest.raises(ValueError, match="std_floor applies"):  # the default projection only centres
        TrainConfig(std_floor=1e-3)


def test_centring_reaches_the_projection_and_the_config(frames):
    from relreps.projection import prepare_anchors, project
    from relreps.training import TrainConfig

    enc = RelativeEncoder(OBS, anchors=frames, latent_dim=16, standardize="center")
    x = torch.rand(3, 3, 84, 84)
    out = enc(x)
    torch.testing.assert_close(out, project(enc.embed(x), prepare_anchors(enc.anchor_embeddings, standardize="center")))
    assert not torch.allclose(out, project(enc.embed(x), prepare_anchors(enc.anchor_embeddings, standardize=True)))
    # centring is the default of the encoder and of the projection, as of TrainConfig
    default = RelativeEncoder(OBS, anchors=frames, latent_dim=16, latent_norm=None)
    assert default.standardize == "center" == TrainConfig().standardize
    with pytest.raises(ValueError, match="unknown standardize"):
        RelativeEncoder(OBS, anchors=frames, latent_dim=16, standardize="mean")
    with pytest.raises(ValueError, match="std_floor applies"):
        RelativeEncoder(OBS, anchors=frames, latent_dim=16, standardize="center", std_floor=1e-3)
    # the config passes its choice to the encoder (and so to the card) explicitly, whatever it is
    assert TrainConfig().encoder()[1]["standardize"] == "center"
    assert TrainConfig(standardize=True).encoder()[1]["standardize"] is True
    assert TrainConfig.from_json({"standardize": "center"}).standardize == "center"
    assert TrainConfig.from_json({}).standardize is True  # a saved config without it
    with pytest.raises(ValueError, match="unknown standardize"):
        TrainConfig(standardize="centre")


def test_latent_norm_fixes_the_encoders_scale(frames):
    from relreps.training import TrainConfig

    x = torch.rand(3, 3, 84, 84)
    enc = RelativeEncoder(OBS, anchors=frames, latent_dim=16, latent_norm="layer", standardize="center")
    z = enc.embed(x)
    torch.testing.assert_close(z.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    # scaling the last layer's weights and bias scales a plain latent but not a normalised one
    # (once the latent's variance is well above LayerNorm's eps, 1e-5)
    plain = RelativeEncoder(OBS, anchors=frames, latent_dim=16, latent_norm=None)
    plain.load_state_dict(enc.state_dict())
    with torch.no_grad():
        for m in (enc.net[-2], plain.net[-2]):
            m.weight.mul_(100.0), m.bias.mul_(100.0)
        before, before_plain = enc.embed(x), plain.embed(x)
        for m in (enc.net[-2], plain.net[-2]):
            m.weight.mul_(10.0), m.bias.mul_(10.0)
        torch.testing.assert_close(enc.embed(x), before, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(plain.embed(x), 10.0 * before_plain, atol=1e-4, rtol=1e-4)
    # the anchors are embedded the same way, and the state is that of a plain encoder (no parameters)
    torch.testing.assert_close(enc.embed_anchors(), enc.embed(frames_to_tensor(enc.anchor_frames)))
    assert set(enc.state_dict()) == set(plain.state_dict())
    with pytest.raises(ValueError, match="unknown latent_norm 'l2'"):
        AbsoluteEncoder(OBS, latent_dim=16, latent_norm="l2")

    # default "auto": layer-normalised relative encoders, plain absolute ones (as shipped)
    assert TrainConfig().latent_norm == "layer"
    assert TrainConfig().encoder()[1]["latent_norm"] == "layer"
    assert TrainConfig(representation="absolute").latent_norm is None
    assert "latent_norm" not in TrainConfig(representation="absolute").encoder()[1]
    assert TrainConfig(latent_norm=None).encoder()[1]["latent_norm"] is None  # explicit for a relative one
    assert RelativeEncoder(OBS, anchors=frames, latent_dim=16).latent_norm == "layer"  # the encoders' defaults
    assert AbsoluteEncoder(OBS, latent_dim=16).latent_norm is None
    assert TrainConfig(representation="absolute", latent_norm="layer").encoder()[1]["latent_norm"] == "layer"
    assert TrainConfig.from_json({}).latent_norm is None  # a saved config without it
    with pytest.raises(ValueError, match="unknown latent_norm"):
        TrainConfig(latent_norm="batch")


def test_rms_latent_norm_fixes_the_scale_and_keeps_units_at_zero(frames):
    """``latent_norm="rms"``: unit mean square per latent, the scale of the last layer does not
    matter, and a ReLU unit that is off stays exactly 0 (a LayerNorm moves it to -mean/std)."""
    x = torch.rand(4, 3, 84, 84)
    enc = RelativeEncoder(OBS, anchors=frames, n_anchors=len(frames), latent_dim=None, latent_norm="rms")
    plain = AbsoluteEncoder(OBS, latent_dim=None)
    plain.load_state_dict({k: v for k, v in enc.state_dict().items() if k.startswith("net.")})
    z, raw = enc.embed(x), plain.embed(x)
    torch.testing.assert_close(z.pow(2).mean(1), torch.ones(4), atol=1e-5, rtol=0)
    assert (raw == 0).any() and torch.equal(z == 0, raw == 0)
    torch.testing.assert_close(z, raw / raw.pow(2).mean(1, keepdim=True).sqrt())
    with torch.no_grad():
        enc.net[-3].weight.mul_(7.0), enc.net[-3].bias.mul_(7.0)
    torch.testing.assert_close(enc.embed(x), z, atol=1e-5, rtol=1e-4)
    layer = AbsoluteEncoder(OBS, latent_dim=None, latent_norm="layer")
    layer.load_state_dict(plain.state_dict())
    assert (layer.embed(x)[raw == 0] != 0).all()


def test_a_card_without_the_settings_builds_the_encoder_it_was_saved_with():
    from relreps import zoo
    from relreps.extractors import encoder_of

    base: zoo.Card = {"format": zoo.FORMAT_VERSION, "algo": "ppo", "representation": "relative", "color": "green",
                      "head_dim": 16, "encoder_kwargs": {"anchors": "scripted-3136", "color": "green", "n_anchors": 8,
                                                         "latent_dim": 8}}
    old = encoder_of(zoo.build_policy(base))  # saved before the settings were choices: the defaults then
    assert (old.standardize, old.latent_norm) == (True, None)
    now = dict(base, encoder_kwargs={**base["encoder_kwargs"], "standardize": "center", "latent_norm": "layer"})
    new = encoder_of(zoo.build_policy(now))
    assert (new.standardize, new.latent_norm) == ("center", "layer")
    absolute = encoder_of(zoo.build_policy(dict(base, representation="absolute", encoder_kwargs={"latent_dim": 8})))
    assert absolute.latent_norm is None


def test_a_saved_card_records_the_settings_its_encoder_has(tmp_path, frames):
    from relreps import algos, zoo
    from relreps.envs import make_vec_env
    from relreps.extractors import encoder_of

    venv = make_vec_env("green", n_envs=1, workers=0)
    try:
        kwargs = {"anchors": frames, "n_anchors": len(frames), "latent_dim": 16}  # centred, layer-normalised: the defaults
        model = algos.make_model("ppo", venv, encoder_class=RelativeEncoder, encoder_kwargs=kwargs, head_dim=16, seed=0,
                                 device="cpu", n_steps=8)
    finally:
        venv.close()
    card: zoo.Card = {"format": zoo.FORMAT_VERSION, "algo": "ppo", "representation": "relative", "color": "green",
                      "head_dim": 16, "encoder_kwargs": {"anchors": "scripted-3136", "color": "green",
                                                         "n_anchors": len(frames), "latent_dim": 16}}
    path = zoo.save(model, tmp_path / "agent", card)
    saved = zoo.card(path)["encoder_kwargs"]
    assert (saved["standardize"], saved["latent_norm"]) == ("center", "layer")
    enc = encoder_of(zoo.build_policy(zoo.card(path), anchor_frames=frames))
    assert (enc.standardize, enc.latent_norm) == ("center", "layer")
