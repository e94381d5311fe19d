"""ParticleNet on PyTorch Geometric against the official JetClass checkpoints and their oracle
(../shared/fixtures/jetclass-particlenet: logits of weaver-core's ParticleNet on 256 jets, 43
with fewer than 17 particles), the dense formulation, the ONNX export and the import."""

from pathlib import Path

import numpy as np
import pytest
import torch

import servable
from servable.data import particles, schema
from servable.data.jets import Jets
from servable.models import training
from servable.models.batching import probabilities
from servable.models.particlenet import DenseParticleNet, ParticleNet, from_upstream
from servable.models.taggers import ConfigError, ParticleNetTagger
from servable.runtimes.onnx_runtime import OnnxRuntime
from tests.cli_helpers import assert_user_error, run_cli

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "jetclass-particlenet"
SETS = ("kin", "kinpid", "full")


def reference(feature_set):
    return np.load(FIXTURES / f"ParticleNet_{feature_set}_reference.npz")


def upstream_state(feature_set):
    return torch.load(FIXTURES / f"ParticleNet_{feature_set}.pt", weights_only=True,
                      map_location="cpu")


def oracle_inputs(ref):
    return tuple(torch.from_numpy(ref[k]) for k in ("points", "features", "mask"))


def official(cls, feature_set):
    net = cls(len(particles.FEATURE_SETS[feature_set]), 10)
    net.load_state_dict(from_upstream(upstream_state(feature_set)))
    return net.eval()


@pytest.fixture(scope="module")
def raw_jets():
    """The oracle's jets from their raw branches (the jet observables the particle features
    do not read are zero)."""
    data = dict(np.load(FIXTURES / "pseudo_jets_raw.npz"))
    n = len(data["jet_pt"])
    data["jet_nparticles"] = data["n_particles"]
    for name in ("jet_phi", "jet_sdmass", "jet_tau1", "jet_tau2", "jet_tau3", "jet_tau4"):
        data[name] = np.zeros(n)
    return particles.jets_from_arrays(data)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The three official checkpoints imported through the CLI, no options."""
    out = {}
    for feature_set in SETS:
        path = tmp_path_factory.mktemp("pnet") / feature_set
        r = run_cli("bundle", "import-checkpoint", FIXTURES / f"ParticleNet_{feature_set}.pt",
                    "-o", path)
        assert r.returncode == 0, r.stderr
        out[feature_set] = path
    return out


@pytest.mark.parametrize("feature_set", SETS)
def test_pyg_model_reproduces_every_reference_logit(feature_set):
    ref = reference(feature_set)
    assert (ref["n_particles"] < 17).sum() == 43  # padded particles enter their neighbours
    with torch.no_grad():
        logits = official(ParticleNet, feature_set)(*oracle_inputs(ref)).numpy()
    # measured: at most 1.9e-5 (kin), 1.2e-5 (kinpid), 1.6e-5 (full)
    np.testing.assert_allclose(logits, ref["logits"], atol=1e-4, rtol=0)


def test_stages_are_the_pooled_block_outputs_that_lead_to_the_logits():
    """Linear probes read per-jet stages: one per EdgeConv block plus the head's hidden layer,
    and the head's hidden layer through the last linear map gives the logits."""
    ref = reference("kin")
    net = official(ParticleNet, "kin")
    points, features, mask = (t[:32] for t in oracle_inputs(ref))
    with torch.no_grad():
        logits, stages = net(points, features, mask, return_stages=True)
        assert list(stages) == ["EdgeConv block 1", "EdgeConv block 2", "EdgeConv block 3",
                                "head"]
        assert [v.shape[1] for v in stages.values()] == [64, 128, 256, 256]
        np.testing.assert_allclose(logits.numpy(), ref["logits"][:32], atol=1e-4)
        np.testing.assert_allclose(net.fc[1](stages["head"]).numpy(), logits.numpy())
        assert (stages["EdgeConv block 3"] >= 0).all()  # a ReLU closes every block


def test_dense_formulation_equals_the_pyg_one_on_the_same_weights():
    ref = reference("full")
    inputs = oracle_inputs(ref)
    with torch.no_grad():
        dense = official(DenseParticleNet, "full")(*inputs).numpy()
        graph = official(ParticleNet, "full")(*inputs).numpy()
    np.testing.assert_allclose(dense, ref["logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(graph, dense, atol=5e-5, rtol=0)


def test_dense_and_pyg_agree_on_a_fresh_network_with_few_neighbours():
    """Any k and widths, jets smaller and larger than k + 1, batch norm statistics not 0/1."""
    torch.manual_seed(3)
    ref = reference("kin")
    graph = ParticleNet(7, 4, k=5, channels=(16, 16, 32), layers_per_block=2, fc_width=32)
    for m in graph.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    graph.eval()
    dense = graph.dense()
    with torch.no_grad():
        a, b = graph(*oracle_inputs(ref)), dense(*oracle_inputs(ref))
    assert isinstance(dense, DenseParticleNet)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("feature_set", SETS)
def test_imported_bundle_predicts_the_oracle_from_raw_arrays(imported, raw_jets, feature_set):
    ref = reference(feature_set)
    bundle = servable.load(imported[feature_set])
    np.testing.assert_allclose(bundle.logits(raw_jets), ref["logits"], atol=1e-4, rtol=0)


def test_official_models_rank_inputs_on_generated_jets_as_on_jetclass(imported, jetclass_file):
    """JetClass-like jets (the session's 400 per class, first 1500 of the shuffled file) read
    like JetClass: the official ParticleNet gains from particle ID and from the displacement
    features (accuracy full >= kinpid >= kin, as on JetClass), and no class loses more than
    0.01 in one-vs-rest AUC when the impact parameters are added to the kinematics."""
    from sklearn.metrics import roc_auc_score

    from servable.data.jetclass import read_jetclass

    jets = read_jetclass(jetclass_file, entry_stop=1500)
    y = jets.labels.argmax(1)
    probs = {f: servable.load(imported[f]).tagger.predict(jets) for f in SETS}
    acc = {f: np.mean(p.argmax(1) == y) for f, p in probs.items()}
    assert acc["full"] >= acc["kinpid"] >= acc["kin"], acc
    auc = {f: np.array([roc_auc_score(y == k, p[:, k]) for k in range(p.shape[1])])
           for f, p in probs.items()}
    gain = auc["full"] - auc["kin"]
    assert np.all(gain >= -0.01), dict(zip(jets.class_names, gain, strict=True))


def test_imported_bundle_standardises_raw_features_as_the_oracle(imported, raw_jets):
    """The preprocessing inside the bundle's network gives the oracle's features."""
    ref = reference("full")
    tagger = servable.load(imported["full"]).tagger
    tracks = torch.from_numpy(tagger.inputs(raw_jets)["particles"])
    (features,), (points, mask) = tagger.net.standardize(tracks)
    np.testing.assert_allclose(features.numpy(), ref["features"], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(points.numpy(), ref["points"])
    np.testing.assert_array_equal(mask.numpy(), ref["mask"] > 0)


def test_imported_bundle_records_upstream_provenance(imported):
    manifest = servable.load(imported["kinpid"]).manifest
    prov = manifest["provenance"]
    assert prov["upstream"]["repository"] == \
        "https://github.com/jet-universe/particle_transformer"
    assert prov["upstream"]["commit"] == "2925bdb"
    assert prov["upstream"]["paper_arxiv"] == "2202.03772"
    assert prov["upstream"]["license"] == "MIT" and manifest["license"] == "MIT"
    assert prov["training_data_doi"] == "10.5281/zenodo.6619768"
    assert prov["feature_set"] == "kinpid"
    config = manifest["model"]["config"]
    assert config["class_names"] == list(schema.JETCLASS_CLASSES) and config["n_classes"] == 10
    assert config["particle_features"] == list(particles.FEATURE_SETS["kinpid"])
    assert manifest["inputs"][0]["shape"] == [None, 13, 128]
    citation = (imported["kinpid"] / "CITATION.cff").read_text()
    assert "arxiv.org/abs/2202.03772" in citation and "10.5281/zenodo.6619768" in citation
    assert not list(imported["kinpid"].glob("*.pt"))


@pytest.mark.parametrize("feature_set", ["kin", "full"])
def test_onnx_export_matches_the_pyg_model(imported, raw_jets, feature_set):
    """The exported graph (the dense formulation) against PyTorch Geometric. Logits reach
    |49|, where float32 spacing is 3.8e-6: they are compared relative to their scale, the
    probabilities absolutely."""
    path = imported[feature_set]
    tagger = servable.load(path).tagger
    inputs = tagger.inputs(raw_jets)
    native = tagger.logits_from_inputs(inputs)
    exported = OnnxRuntime(path / "model.onnx").logits(inputs)
    assert np.abs(exported - native).max() < 1e-5 * float(np.abs(native).max())
    np.testing.assert_allclose(probabilities(exported), probabilities(native), atol=1e-5,
                               rtol=0)


def test_a_chosen_feature_set_must_fit_the_weights(tmp_path):
    r = run_cli("bundle", "import-checkpoint", FIXTURES / "ParticleNet_full.pt",
                "--feature-set", "kin", "-o", tmp_path / "out")
    assert_user_error(r, "the weights read 17 particle features; the kin set has 7")
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_with_foreign_keys_is_refused(tmp_path):
    state = upstream_state("kin")
    state["mod.extra.weight"] = state.pop("mod.fc.1.weight")
    torch.save(state, tmp_path / "renamed.pt")
    r = run_cli("bundle", "import-checkpoint", tmp_path / "renamed.pt", "-o", tmp_path / "out")
    assert_user_error(r, "keys do not match the published ParticleNet", "extra.weight")
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_of_another_network_is_refused(tmp_path):
    torch.save({"layer.weight": torch.ones(2, 2)}, tmp_path / "other.pt")
    r = run_cli("bundle", "import-checkpoint", tmp_path / "other.pt", "-o", tmp_path / "out")
    assert_user_error(r, "not an official JetClass ParticleNet state dict",
                      "needs its metadata JSON")


def test_a_checkpoint_with_nan_weights_is_refused(tmp_path):
    state = upstream_state("kin")
    state["mod.edge_convs.1.convs.2.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    r = run_cli("bundle", "import-checkpoint", tmp_path / "nan.pt", "-o", tmp_path / "out")
    assert_user_error(r, "mod.edge_convs.1.convs.2.weight holds NaN or infinite weights")
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_with_wrong_shapes_is_refused(tmp_path):
    state = upstream_state("kin")
    state["mod.fc.1.weight"] = torch.zeros(5, 256)
    torch.save(state, tmp_path / "five.pt")
    r = run_cli("bundle", "import-checkpoint", tmp_path / "five.pt", "-o", tmp_path / "out")
    assert_user_error(r, "weights do not fit the published ParticleNet", "fc.1.weight")


def test_particlenet_needs_the_points_among_its_features():
    names = [n for n in particles.FEATURE_SETS["kin"] if n != "part_dphi"]
    with pytest.raises(ConfigError, match="particle_features must include part_dphi"):
        ParticleNetTagger({"particle_features": names})


def test_particlenet_trains_from_scratch_with_the_training_loop(raw_jets, monkeypatch):
    """A small ParticleNet learns a label that depends on the particles' spread in (deta,
    dphi), through the torch training loop (the chunks come from memory)."""
    part = raw_jets.group("particles")
    spread = part.column("part_deltaR").sum(1) / np.maximum(part.filled(), 1)
    y = (spread > np.median(spread)).astype(int)
    jets = Jets(raw_jets.groups, np.eye(2, dtype=np.float32)[y], class_names=("narrow", "wide"))
    sources = [training.Source(Path("train"), np.arange(192)),
               training.Source(Path("val"), np.arange(192, 256))]
    monkeypatch.setattr(training, "iter_chunks",
                        lambda srcs, chunk, rng=None: (jets[s.rows] for s in srcs))
    names = list(particles.FEATURE_SETS["kin"])
    config = {"particle_features": names, "class_names": ["narrow", "wide"],
              "hyperparameters": {"k": 4, "channels": [16, 32], "layers_per_block": 2,
                                  "fc_width": 32}}
    probe = ParticleNetTagger(config)
    tagger = ParticleNetTagger({**config, "preprocessing": probe.fit_preprocessing({})})
    torch.manual_seed(0)
    cfg = training.TrainConfig(model="particlenet", epochs=6, batch_size=32, lr=3e-3)
    history = training._train_torch(tagger, sources[:1], sources[1:], cfg, progress=False)
    assert history["train_loss"][-1] < 0.8 * history["train_loss"][0]
    probabilities = tagger.predict(jets[192:])
    assert probabilities.shape == (64, 2) and np.isfinite(probabilities).all()

