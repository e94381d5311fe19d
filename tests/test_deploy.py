"""Deployment where CMS runs taggers: `servable export cmssw`, `servable bundle import-onnx`
(weaver-core's own export of the official ParticleNet included) and `servable export triton`.

The CMSSW checks read preprocess.json with a reader written here from CMSSW's documented
behaviour (RecoBTag/FeatureTools `center_norm_pad`), not with servable's code, and feed
ONNX Runtime as CMSSW does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from servable import load
from servable.bundle.bundle import save_bundle
from servable.data.generator import generate
from servable.data.io import read_jets
from servable.models.taggers import build_tagger, feature_config
from tests.cli_helpers import assert_user_error, run_cli
from tests.ring_jets import write_ring_root

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "jetclass-particlenet"
KINDS = ("in", "mlp", "part", "particlenet")
# small networks: the checks are about inputs and preprocessing, not about training
SIZES = {"part": {"embed_dims": [16, 16], "pair_embed_dims": [8, 8], "num_layers": 1,
                  "num_cls_layers": 1, "num_heads": 2, "dropout": 0},
         "particlenet": {"k": 4, "channels": [16, 16], "layers_per_block": 1, "fc_width": 16},
         "in": {"hidden": 16, "De": 8, "Do": 8}, "mlp": {"hidden": [32]}}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """Generated jets: 60 CMS-layout jets (Pythia 8 + FastJet) for the IN and the MLP, 40
    JetClass-layout ring jets for ParT and ParticleNet."""
    cms, _ = generate(30, 30, seed=3, workers=1, progress=False)
    ring = read_jets(write_ring_root(tmp_path_factory.mktemp("ring") / "ring.root", 4, seed=5))
    return {"cms": cms, "jetclass": ring}


def _sample(samples, kind):
    return samples["cms"] if kind in ("in", "mlp") else samples["jetclass"]


@pytest.fixture(scope="module")
def bundles(samples, tmp_path_factory):
    """One bundle per exportable kind: random weights (seed 0), preprocessing fitted on the
    jets (CMS) or the JetClass standardisation (ParT, ParticleNet)."""
    root = tmp_path_factory.mktemp("deploy-bundles")
    out = {}
    for kind in KINDS:
        sample = _sample(samples, kind)
        torch.manual_seed(0)
        config = {"kind": kind, **feature_config(kind, sample, "kin"),
                  "n_classes": len(sample.class_names), "class_names": list(sample.class_names),
                  "hyperparameters": {**SIZES[kind],
                                      "n_tracks": sample.leading_slotted().slots}}
        tagger = build_tagger(config)
        config["preprocessing"] = tagger.fit_preprocessing(tagger.inputs(sample))
        tagger = build_tagger(config)
        out[kind] = save_bundle(tagger, root / kind, name=f"deploy-{kind}")
    return out


@pytest.fixture(scope="module")
def exports(bundles, tmp_path_factory):
    """`servable export cmssw` of every bundle: kind -> folder."""
    root = tmp_path_factory.mktemp("cmssw")
    for kind, bundle in bundles.items():
        r = run_cli("export", "cmssw", bundle, "-o", root / kind)
        assert r.returncode == 0, r.stderr
    return {kind: root / kind for kind in bundles}


# -- an independent reader of preprocess.json, from CMSSW's documented behaviour ---------
def _producer(jets, var: str):
    """Per jet, the list of values CMSSW's producer would collect for `var` (particles and
    vertices: the filled slots; a jet-level variable: one value; *_mask: 1 per particle)."""
    def lists(array, idx):
        n = (np.abs(array).sum(axis=1) > 0).sum(axis=1)  # filled slots come first
        return [array[i, idx, :n[i]] for i in range(len(array))]

    if var.endswith("_mask"):
        return [np.ones_like(v) for v in lists(jets.leading_slotted().values, 0)]
    for g in jets.groups.values():
        if g.slotted and var in g.features:
            return lists(g.values, list(g.features).index(var))
    idx = list(jets.jet_feature_names).index(var)
    return [jets.jet_features[i, idx:idx + 1] for i in range(len(jets.jet_features))]


def _center_norm_pad(values, info, min_length, max_length) -> np.ndarray:
    """CMSSW's center_norm_pad for one variable of one jet."""
    length = int(np.clip(len(values), min_length, max_length))
    out = np.full(length, np.float32(info.get("pad", 0)), np.float32)
    x = np.asarray(values[:length], np.float32)
    x = np.where(~np.isfinite(x) | (np.abs(x) > 1e32), np.float32(info["replace_inf_value"]), x)
    z = (x - np.float32(info["median"])) * np.float32(info["norm_factor"])
    out[:len(x)] = np.clip(z, np.float32(info["lower_bound"]), np.float32(info["upper_bound"]))
    return out


def cmssw_inputs(prep: dict, jets) -> dict[str, np.ndarray]:
    """Every input of a preprocess.json for these jets, (jets, variables, length)."""
    feed = {}
    for name in prep["input_names"]:
        group = prep[name]
        low = group.get("var_length", group.get("min_length"))
        high = group.get("var_length", group.get("max_length"))
        per_var = [[_center_norm_pad(v, group["var_infos"][var], low, high)
                    for v in _producer(jets, var)] for var in group["var_names"]]
        feed[name] = np.stack([np.stack(jet) for jet in zip(*per_var, strict=True)])
    return feed


@pytest.mark.parametrize("kind", KINDS)
def test_cmssw_reader_and_onnx_runtime_reproduce_the_bundle(kind, bundles, exports, samples):
    jets = _sample(samples, kind)
    prep = json.loads((exports[kind] / "preprocess.json").read_text())
    bundle = load(bundles[kind])
    assert prep["output_names"] == bundle.manifest["outputs"][0]["classes"]
    session = ort.InferenceSession(str(exports[kind] / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == prep["input_names"]
    assert all(len(i.shape) == 3 for i in session.get_inputs())  # as CMSSW feeds them
    assert session.get_outputs()[0].name == "softmax"
    feed = cmssw_inputs(prep, jets)
    scores = session.run(["softmax"], feed)[0]
    expected = bundle.predict(jets)  # the native model (torch) on the raw jets
    assert np.abs(scores - expected).max() < 1e-5
    # preprocessing is really exercised: some standardised values differ from the raw ones
    group = prep["input_names"][0]
    assert any(info["median"] != 0 or info["norm_factor"] != 1
               for info in prep[group]["var_infos"].values())
    # CMSSW runs one jet at a time: the same scores
    one = session.run(["softmax"], {k: v[3:4] for k, v in feed.items()})[0]
    assert np.abs(one - expected[3:4]).max() < 1e-5


@pytest.mark.parametrize("kind", KINDS)
def test_export_import_predict_round_trip(kind, bundles, exports, samples, tmp_path):
    out = tmp_path / "imported"
    r = run_cli("bundle", "import-onnx", exports[kind] / "model.onnx", "--preprocess",
                exports[kind] / "preprocess.json", "--license", "MIT", "-o", out)
    assert r.returncode == 0, r.stderr
    imported = load(out)
    assert imported.kind == "onnx"
    assert imported.manifest["outputs"][0]["classes"] == \
        load(bundles[kind]).manifest["outputs"][0]["classes"]
    jets = _sample(samples, kind)
    assert np.abs(imported.predict(jets) - load(bundles[kind]).predict(jets)).max() < 1e-6
    r = run_cli("bundle", "verify", out)
    assert r.returncode == 0, r.stderr


def test_weaver_export_of_the_official_particlenet_imports_and_matches_reference(tmp_path):
    pytest.importorskip("weaver")
    from servable.data import particles
    from servable.models.batching import probabilities
    from tests.weaver_export import weaver_export

    model, prep = weaver_export(FIXTURES / "ParticleNet_full.pt", "full", tmp_path / "weaver")
    out = tmp_path / "pnet"
    r = run_cli("bundle", "import-onnx", model, "--preprocess", prep, "--license", "MIT",
                "--author", "Huilin Qu", "-o", out)
    assert r.returncode == 0, r.stderr
    data = dict(np.load(FIXTURES / "pseudo_jets_raw.npz"))
    data["jet_nparticles"] = data["n_particles"]
    for name in ("jet_phi", "jet_sdmass", "jet_tau1", "jet_tau2", "jet_tau3", "jet_tau4"):
        data[name] = np.zeros(len(data["jet_pt"]))  # not read by the particle features
    jets = particles.jets_from_arrays(data)
    bundle = load(out)
    reference = np.load(FIXTURES / "ParticleNet_full_reference.npz")["logits"]
    assert bundle.manifest["outputs"][0]["classes"][:2] == ["QCD", "Hbb"]
    # measured: 2.0e-5 (logits), 2.6e-6 (probabilities); the fixture's bound is 1e-4
    assert np.abs(bundle.logits(jets) - reference).max() < 1e-4
    assert np.abs(bundle.predict(jets) - probabilities(reference)).max() < 1e-5


@pytest.fixture
def mlp_export(exports):
    """The MLP's export: (model.onnx, preprocess.json)."""
    return exports["mlp"] / "model.onnx", exports["mlp"] / "preprocess.json"


def _import_bad(mlp_export, tmp_path, edit):
    """import-onnx of the MLP's export with preprocess.json edited by `edit`."""
    model, original = mlp_export
    prep = json.loads(original.read_text())
    edit(prep)
    path = tmp_path / "preprocess.json"
    path.write_text(json.dumps(prep))
    out = tmp_path / "bundle"
    r = run_cli("bundle", "import-onnx", model, "--preprocess", path, "--license", "MIT",
                "-o", out)
    assert not out.exists()
    return r


def test_missing_variable_is_refused(mlp_export, tmp_path):
    def edit(prep):
        del prep["tracks"]["var_infos"]["track_ptrel"]
    assert_user_error(_import_bad(mlp_export, tmp_path, edit), "track_ptrel", "var_infos")


@pytest.mark.parametrize("key,value,fragment", [
    ("norm_factor", "0.7", "norm_factor must be a finite number"),
    ("clip", 5, "unknown key 'clip'"),
])
def test_unknown_key_or_type_is_refused(mlp_export, tmp_path, key, value, fragment):
    def edit(prep):
        prep["tracks"]["var_infos"]["track_ptrel"][key] = value
    assert_user_error(_import_bad(mlp_export, tmp_path, edit), "track_ptrel", fragment)


def test_length_mismatch_is_refused(mlp_export, tmp_path):
    def fewer_variables(prep):
        prep["tracks"]["var_names"] = prep["tracks"]["var_names"][:-1]
    assert_user_error(_import_bad(mlp_export, tmp_path, fewer_variables), "length mismatch",
                      "tracks")

    def other_length(prep):
        prep["tracks"]["var_length"] = 100
    assert_user_error(_import_bad(mlp_export, tmp_path, other_length), "length mismatch",
                      "tracks", "100")


def test_bdt_is_refused_in_one_line(ring_files, tmp_path):
    bdt = tmp_path / "bdt"
    r = run_cli("train", "--model", "bdt", "--data", ring_files["root"], "--epochs", 1,
                "--quiet", "--param", "n_estimators=5", "-o", bdt)
    assert r.returncode == 0, r.stderr
    r = run_cli("export", "cmssw", bdt, "-o", tmp_path / "cmssw")
    assert_user_error(r, "bdt", "preprocess.json")
    assert not (tmp_path / "cmssw" / "model.onnx").exists()
    # Triton serves it: ONNX Runtime runs the tree ensemble
    r = run_cli("export", "triton", bdt, "-o", tmp_path / "repo")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("cmssw_inputs", [False, True])
def test_triton_repository_parses_with_tritons_schema(bundles, samples, tmp_path,
                                                      cmssw_inputs):
    pytest.importorskip("tritonclient.grpc")
    import onnx
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    repo = tmp_path / "repo"
    r = run_cli("export", "triton", bundles["mlp"], "-o", repo, "--max-batch-size", 64,
                *(["--cmssw-inputs"] if cmssw_inputs else []))
    assert r.returncode == 0, r.stderr
    model_dir = repo / "deploy-mlp"
    config = text_format.Parse((model_dir / "config.pbtxt").read_text(),
                               model_config_pb2.ModelConfig())
    assert config.name == "deploy-mlp" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 64 and config.HasField("dynamic_batching")
    graph = onnx.load(str(model_dir / "1" / "model.onnx"))
    want = [(i.name, [d.dim_value or -1 for d in i.type.tensor_type.shape.dim][1:])
            for i in graph.graph.input]
    assert [(i.name, list(i.dims)) for i in config.input] == want
    assert all(t.data_type == model_config_pb2.TYPE_FP32 for t in [*config.input,
                                                                    *config.output])
    labelled = [o for o in config.output if o.label_filename]
    assert len(labelled) == 1 and labelled[0].name == graph.graph.output[0].name
    labels = (model_dir / labelled[0].label_filename).read_text().split()
    assert labels == list(samples["cms"].class_names)
    bundle = load(bundles["mlp"])
    if cmssw_inputs:
        assert (model_dir / "preprocess.json").is_file()
        assert [i.name for i in config.input] == ["tracks", "vertices", "jet_features"]
        assert list(config.input[2].dims) == [len(bundle.spec["jet_features"].features), 1]
    else:
        assert (model_dir / "1" / "model.onnx").read_bytes() == \
            (bundles["mlp"] / "model.onnx").read_bytes()
        assert [list(i.dims) for i in config.input] == [g.shape[1:] for g in bundle.spec]
    r = run_cli("export", "triton", bundles["mlp"], "-o", repo)
    assert_user_error(r, "exists", "--force")
