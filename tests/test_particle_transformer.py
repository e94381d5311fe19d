"""ParticleTransformer: weaver-core's parameter layout (so the published JetClass checkpoints
ParT_{kin,kinpid,full}.pt can be imported), the pair features from four-vectors as
weaver-core defines them, and padding that no output sees."""

import math

import numpy as np
import pytest
import torch

from servable.data import particles
from servable.models.particle_transformer import (
    PUBLISHED_JETCLASS,
    ParticleTransformer,
    kinematics_from_vectors,
    pair_features,
)
from servable.models.taggers import ConfigError, ParTTagger
from tests.test_particlenet import FIXTURES


def upstream_state_dict_shapes(input_dim: int, n_classes: int = 10) -> dict[str, tuple]:
    """The state dict (keys without the `mod.` of the upstream wrapper, shapes) of weaver-core's
    ParticleTransformer in the published JetClass configuration (particle_transformer's
    networks/example_ParticleTransformer.py: embed_dims [128, 512, 128], pair_embed_dims
    [64, 64, 64], 8 heads, 8 particle and 2 class-attention blocks, fc_params [],
    use_pre_activation_pair False), written from reading weaver/nn/model/
    ParticleTransformer.py (v0.4.0): Embed = BatchNorm1d, then LayerNorm + Linear + GELU per
    layer; PairEmbed = BatchNorm1d(4), then Conv1d(k=1) + BatchNorm1d + GELU per layer, the
    last to the heads; Block = pre_attn_norm, nn.MultiheadAttention (in_proj_weight,
    in_proj_bias, out_proj), post_attn_norm, pre_fc_norm, fc1, post_fc_norm, fc2, c_attn,
    w_resid; then norm and fc = Sequential(Linear)."""
    dims, pair, heads, d_model = (128, 512, 128), (64, 64, 64), 8, 128
    keys: dict[str, tuple] = {"cls_token": (1, 1, d_model)}

    def batch_norm(prefix, c):
        return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}

    def norm(prefix, c):
        return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)}

    keys.update(batch_norm("embed.input_bn", input_dim))
    d = input_dim
    for i, width in enumerate(dims):
        keys.update(norm(f"embed.embed.{3 * i}", d))
        keys.update({f"embed.embed.{3 * i + 1}.weight": (width, d),
                     f"embed.embed.{3 * i + 1}.bias": (width,)})
        d = width
    keys.update(batch_norm("pair_embed.embed.0", 4))
    d = 4
    for i, width in enumerate((*pair, heads)):
        keys.update({f"pair_embed.embed.{3 * i + 1}.weight": (width, d, 1),
                     f"pair_embed.embed.{3 * i + 1}.bias": (width,)})
        keys.update(batch_norm(f"pair_embed.embed.{3 * i + 2}", width))
        d = width
    for block in [f"blocks.{i}" for i in range(8)] + [f"cls_blocks.{i}" for i in range(2)]:
        for name in ("pre_attn_norm", "post_attn_norm", "pre_fc_norm"):
            keys.update(norm(f"{block}.{name}", d_model))
        keys.update(norm(f"{block}.post_fc_norm", 4 * d_model))
        keys.update({
            f"{block}.attn.in_proj_weight": (3 * d_model, d_model),
            f"{block}.attn.in_proj_bias": (3 * d_model,),
            f"{block}.attn.out_proj.weight": (d_model, d_model),
            f"{block}.attn.out_proj.bias": (d_model,),
            f"{block}.fc1.weight": (4 * d_model, d_model), f"{block}.fc1.bias": (4 * d_model,),
            f"{block}.fc2.weight": (d_model, 4 * d_model), f"{block}.fc2.bias": (d_model,),
            f"{block}.c_attn": (heads,), f"{block}.w_resid": (d_model,)})
    keys.update(norm("norm", d_model))
    keys.update({"fc.0.weight": (n_classes, d_model), "fc.0.bias": (n_classes,)})
    return keys


@pytest.mark.parametrize("feature_set", ["kin", "kinpid", "full"])
def test_the_published_configuration_has_weaver_cores_state_dict(feature_set):
    names = ParTTagger.jetclass_particles(list(particles.FEATURE_SETS[feature_set]))
    tagger = ParTTagger({"particle_features": names, "n_classes": 10,
                         "class_names": [f"c{i}" for i in range(10)],
                         "hyperparameters": {**PUBLISHED_JETCLASS, "n_tracks": 128}})
    ours = {k: tuple(v.shape) for k, v in tagger.net.core.state_dict().items()}
    expected = upstream_state_dict_shapes(len(particles.FEATURE_SETS[feature_set]))
    assert sorted(set(ours) ^ set(expected)) == []
    assert ours == expected
    # a checkpoint with upstream's names loads as it is (strict)
    state = {k: torch.zeros(s) for k, s in expected.items()}
    tagger.net.core.load_state_dict(state, strict=True)


@pytest.fixture(scope="module")
def oracle_vectors():
    raw = dict(np.load(FIXTURES / "pseudo_jets_raw.npz"))
    v = np.stack([raw[k][:24] for k in particles.VECTORS], axis=1)  # (24, 4, 128)
    return v, raw["n_particles"][:24]


def _weaver_pair_features(v: np.ndarray) -> np.ndarray:
    """weaver-core's pairwise_lv_fts (four outputs) in float64 numpy, from its definitions:
    pT, rapidity 0.5 ln(1 + 2 pz / (E - pz)), atan2 azimuth; Delta = hypot(dy, wrapped dphi);
    ln max(min pT * Delta, 1e-8), ln max(min pT / (pT_i + pT_j), 1e-8), ln max(Delta, 1e-8),
    ln max((E_i + E_j)^2 - |p_i + p_j|^2, 1e-8)."""
    px, py, pz, e = (v[:, i].astype(np.float64) for i in range(4))
    pt = np.hypot(px, py)
    y = 0.5 * np.log(1 + 2 * pz / np.maximum(e - pz, 1e-20))
    phi = np.arctan2(py, px)
    dy = y[:, :, None] - y[:, None, :]
    dphi = (phi[:, :, None] - phi[:, None, :] + math.pi) % (2 * math.pi) - math.pi
    delta = np.hypot(dy, dphi)
    ptmin = np.minimum(pt[:, :, None], pt[:, None, :])
    ptsum = pt[:, :, None] + pt[:, None, :]
    s = {k: a[:, :, None] + a[:, None, :] for k, a in zip("xyze", (px, py, pz, e), strict=True)}
    m2 = s["e"] ** 2 - s["x"] ** 2 - s["y"] ** 2 - s["z"] ** 2
    clamp = np.maximum
    return np.stack([np.log(clamp(ptmin * delta, 1e-8)),
                     np.log(clamp(ptmin / clamp(ptsum, 1e-8), 1e-8)),
                     np.log(clamp(delta, 1e-8)), np.log(clamp(m2, 1e-8))], axis=1)


def test_pair_features_are_weaver_cores_from_the_four_vectors(oracle_vectors):
    v, counts = oracle_vectors
    ours = pair_features(kinematics_from_vectors(torch.from_numpy(v).float())).numpy()
    reference = _weaver_pair_features(v)
    real = np.arange(128)[None, :] < counts[:, None]
    # 3 of the 428 particles are float32 round-off below the light cone (E^2 - p^2 ~ -1e-7
    # E^2): here they count as massless, upstream lets their negative m^2 into the pair mass
    v64 = v.astype(np.float64)
    real &= v64[:, 3] ** 2 - (v64[:, :3] ** 2).sum(1) >= 0
    pairs = np.broadcast_to((real[:, :, None] & real[:, None, :])[:, None], ours.shape)
    # measured: 9e-6 (ln kT, ln Delta), 4e-7 (ln z), 8e-6 (ln m^2); weaver-core's own float32
    # ln m^2 is 0.34 away for collinear pairs, where E^2 - p^2 cancels
    np.testing.assert_allclose(ours[pairs], reference[pairs], atol=5e-5, rtol=0)


def test_massless_track_kinematics_give_the_pair_features_of_their_four_vectors(oracle_vectors):
    """CMS tracks enter as (pT, eta, phi) of massless particles: the same pair features as
    the four-vectors built from them."""
    v, _ = oracle_vectors
    pt, eta = np.hypot(v[:, 0], v[:, 1]), np.arcsinh(v[:, 2] / np.maximum(np.hypot(v[:, 0],
                                                                                    v[:, 1]), 1e-9))
    phi = np.arctan2(v[:, 1], v[:, 0])
    filled = pt > 0
    v64 = v.astype(np.float64)  # float64: a float32 four-vector has a round-off mass
    pt, eta = np.hypot(v64[:, 0], v64[:, 1]), np.arcsinh(v64[:, 2] / np.maximum(
        np.hypot(v64[:, 0], v64[:, 1]), 1e-9))
    phi = np.arctan2(v64[:, 1], v64[:, 0])
    massless = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta),
                         pt * np.cosh(eta)], axis=1) * filled[:, None]
    track = torch.from_numpy(np.stack([pt, eta, phi, np.zeros_like(pt)], axis=1))
    a = pair_features(track).numpy()
    b = pair_features(kinematics_from_vectors(torch.from_numpy(massless))).numpy()
    pairs = np.broadcast_to((filled[:, :, None] & filled[:, None, :])[:, None], a.shape)
    np.testing.assert_allclose(a[pairs], b[pairs], atol=1e-6, rtol=0)


def test_no_output_depends_on_padded_slots(oracle_vectors):
    v, counts = (a[:8] for a in oracle_vectors)
    torch.manual_seed(0)
    net = ParticleTransformer(5, 10, (16, 16), (8, 8), num_heads=4, num_layers=2,
                              num_cls_layers=1).eval()
    feats = torch.randn(8, 5, 128)
    mask = torch.from_numpy(np.arange(128)[None, :] < counts[:, None])
    kin = kinematics_from_vectors(torch.from_numpy(v).float())
    with torch.no_grad():
        full = net(feats * mask[:, None], kin, mask)
        garbage = net(feats, kin + 3.0 * (~mask)[:, None], mask)  # padded slots filled
        width = int(counts.max())
        trimmed = net(feats[..., :width] * mask[:, None, :width], kin[..., :width],
                      mask[:, :width])
    np.testing.assert_allclose(garbage.numpy(), full.numpy(), atol=1e-5)
    np.testing.assert_allclose(trimmed.numpy(), full.numpy(), atol=1e-5)


def test_part_needs_four_vectors_or_track_kinematics():
    with pytest.raises(ConfigError, match="part_px, part_py, part_pz, part_energy"):
        ParTTagger({"particle_features": list(particles.FEATURE_SETS["kin"])})
    with pytest.raises(ConfigError, match="multiple of num_heads"):
        ParTTagger({"hyperparameters": {"embed_dims": [30], "num_heads": 4}})
