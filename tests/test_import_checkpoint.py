"""`servable bundle import-checkpoint` on the published IN checkpoints."""

import numpy as np
import pytest

import servable
from servable import Jets
from tests.cli_helpers import assert_user_error, run_cli

NAMES = ["gnn_baseline", "gnn_pfeaturesdropped14_hidden16_De8_Do8"]


@pytest.fixture(scope="module", params=NAMES)
def imported(request, published_dir, tmp_path_factory):
    name = request.param
    out = tmp_path_factory.mktemp("imported") / name
    r = run_cli("bundle", "import-checkpoint", published_dir / f"{name}_best.pth", "--metadata",
                published_dir / f"{name}_model_metadata.json", "-o", out)
    assert r.returncode == 0, r.stderr
    return name, out, np.load(published_dir / f"{name}_best_reference.npz")


def test_imported_bundle_reproduces_the_reference_logits(imported):
    _, out, ref = imported
    bundle = servable.load(out)
    names = bundle.tagger.config["track_features"]
    jets = Jets.cms(ref["tracks"], ref["vertices"], track_names=names)
    np.testing.assert_allclose(bundle.logits(jets), ref["logits"], atol=1e-4, rtol=1e-6)


def test_imported_bundle_predicts_the_softmax_of_the_reference(imported):
    _, out, ref = imported
    bundle = servable.load(out)
    jets = Jets.cms(ref["tracks"], ref["vertices"],
                    track_names=bundle.tagger.config["track_features"])
    z = ref["logits"] - ref["logits"].max(1, keepdims=True)
    softmax = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(bundle.predict(jets), softmax, atol=1e-4)


def test_imported_bundle_records_upstream_provenance(imported):
    name, out, _ = imported
    manifest = servable.load(out).manifest
    up = manifest["provenance"]["upstream"]
    assert up["commit"] == "fd8b998d7814c5d26e5a597cb1a4d89bf2051004"
    assert up["code_doi"] == "10.5281/zenodo.7305173"
    assert manifest["provenance"]["training_data_doi"] == "10.7483/OPENDATA.CMS.JGJX.MS7Q"
    assert up["license"] == "MIT"
    assert (out / "model.safetensors").exists() and not list(out.glob("*.pth"))
    n_tracks = 30 if name == "gnn_baseline" else 16
    assert manifest["inputs"][0]["shape"] == [None, n_tracks, 60]


def test_ablated_model_takes_full_layout_input(published_dir, tmp_path):
    name = "gnn_pfeaturesdropped14_hidden16_De8_Do8"
    out = tmp_path / "ablated"
    r = run_cli("bundle", "import-checkpoint", published_dir / f"{name}_best.pth", "--metadata",
                published_dir / f"{name}_model_metadata.json", "-o", out)
    assert r.returncode == 0, r.stderr
    ref = np.load(published_dir / f"{name}_best_reference.npz")
    bundle = servable.load(out)
    dropped = (2, 3, 12, 14, 15, 16, 17, 18, 19, 20, 21, 25, 26, 29)
    keep = [i for i in range(30) if i not in dropped]
    full = np.zeros((256, 30, 60), np.float32)
    full[:, keep] = ref["tracks"]
    full[:, 2] = ref["tracks"][:, 0] * 0.5  # a dropped column: it must not matter
    np.testing.assert_allclose(bundle.logits(Jets.cms(full, ref["vertices"])), ref["logits"],
                               atol=1e-4, rtol=1e-6)


def test_a_file_that_is_not_a_checkpoint_is_refused(published_dir, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x80\x04not a checkpoint")
    r = run_cli("bundle", "import-checkpoint", bad, "--metadata",
                published_dir / "gnn_baseline_model_metadata.json", "-o", tmp_path / "out")
    assert_user_error(r, "weights_only=True")
    assert not (tmp_path / "out").exists()


def test_metadata_that_does_not_fit_the_weights_is_refused(published_dir, tmp_path):
    r = run_cli("bundle", "import-checkpoint", published_dir / "gnn_baseline_best.pth",
                "--metadata", published_dir /
                "gnn_pfeaturesdropped14_hidden16_De8_Do8_model_metadata.json",
                "-o", tmp_path / "out")
    assert_user_error(r, "do not fit the architecture")


@pytest.mark.parametrize("change, message", [
    ({"drop_pfeatures": "99"}, "must name indices from 0 to 29"),
    ({"drop_pfeatures": "-1"}, "must name indices from 0 to 29"),
    ({"drop_pfeatures": 3}, "drop_pfeatures must be a string"),
    ({"hidden": -5}, "hidden must be a positive integer"),
    ({"hidden": "60"}, "hidden must be a positive integer"),
    ({"De": None}, "De must be a positive integer"),
    ({"Do": "missing"}, "Do must be a positive integer"),
])
def test_checkpoint_metadata_is_validated_field_by_field(published_dir, tmp_path, change,
                                                        message):
    import json

    meta = json.loads((published_dir / "gnn_baseline_model_metadata.json").read_text())
    meta.update(change)
    meta = {k: v for k, v in meta.items() if v != "missing"}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    r = run_cli("bundle", "import-checkpoint", published_dir / "gnn_baseline_best.pth",
                "--metadata", tmp_path / "meta.json", "-o", tmp_path / "out")
    assert_user_error(r, message)
    assert not (tmp_path / "out").exists()


def test_nan_weights_are_refused_and_leave_nothing_behind(published_dir, tmp_path):
    import torch

    state = torch.load(published_dir / "gnn_baseline_best.pth", weights_only=True,
                       map_location="cpu")
    state["fo2.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    r = run_cli("bundle", "import-checkpoint", tmp_path / "nan.pth", "--metadata",
                published_dir / "gnn_baseline_model_metadata.json", "-o", tmp_path / "out")
    assert_user_error(r, "fo2.weight holds NaN or infinite weights")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.pth"]


def test_a_failed_save_leaves_an_existing_bundle_as_it_was(published_dir, tmp_path,
                                                           monkeypatch):
    """--force replaces a bundle only once the new one is complete."""
    from servable.bundle import bundle as bundle_module
    from servable.bundle.checkpoint import import_checkpoint
    from servable.bundle.manifest import verify

    out = import_checkpoint(published_dir / "gnn_baseline_best.pth",
                            published_dir / "gnn_baseline_model_metadata.json", tmp_path / "b")
    before = verify(out)["digest"]

    def disagree(tagger, path, atol=1e-4):
        raise RuntimeError("ONNX export of the in disagrees with the native model")

    monkeypatch.setattr(bundle_module, "_export_and_check_onnx", disagree)
    with pytest.raises(RuntimeError, match="disagrees"):
        import_checkpoint(published_dir / "gnn_baseline_best.pth",
                          published_dir / "gnn_baseline_model_metadata.json", out,
                          overwrite=True)
    assert verify(out)["digest"] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


@pytest.fixture(scope="module")
def upstream_sv_dropping(ablated_bundle, tmp_path_factory):
    """An SV-dropping checkpoint in the upstream format (a plain GraphNet state dict saved
    with torch.save, and model_metadata.json naming the dropped features by index, as
    src/models/train_model.py writes them) built from our own trained weights."""
    import json

    import torch

    from servable.data import schema

    tagger = servable.load(ablated_bundle).tagger
    state = {k.removeprefix("core."): v for k, v in tagger.state_dict().items()
             if k.startswith("core.")}
    dir = tmp_path_factory.mktemp("upstream")
    torch.save(state, dir / "gnn_psvdropped_best.pth")
    c = tagger.config
    meta = {"vv_branch": "0", "hidden": c["hyperparameters"]["hidden"],
            "De": c["hyperparameters"]["De"], "Do": c["hyperparameters"]["Do"],
            "drop_pfeatures": ",".join(str(i) for i, n in enumerate(schema.TRACK_NAMES)
                                       if n not in c["track_features"]),
            "drop_svfeatures": ",".join(str(i) for i, n in enumerate(schema.VERTEX_NAMES)
                                        if n not in c["vertex_features"]),
            "label": "psvdropped", "epoch": 1, "batch_size": 128}
    (dir / "gnn_psvdropped_model_metadata.json").write_text(json.dumps(meta, indent=3))
    out = dir / "imported"
    r = run_cli("bundle", "import-checkpoint", dir / "gnn_psvdropped_best.pth", "--metadata",
                dir / "gnn_psvdropped_model_metadata.json", "-o", out)
    assert r.returncode == 0, r.stderr
    return out, tagger, meta


def test_an_sv_dropping_checkpoint_imports_with_its_vertex_features(upstream_sv_dropping):
    from servable.data import schema

    out, _, meta = upstream_sv_dropping
    manifest = servable.load(out).manifest
    dropped = [schema.VERTEX_NAMES[int(i)] for i in meta["drop_svfeatures"].split(",")]
    assert manifest["provenance"]["dropped_vertex_features"] == dropped
    assert [f["name"] for f in manifest["inputs"][1]["features"]] == \
        [n for n in schema.VERTEX_NAMES if n not in dropped]


def test_an_sv_dropping_checkpoint_reproduces_the_dense_published_formulation(
        upstream_sv_dropping, test_file):
    """The imported bundle, given full-layout jets, equals the upstream formulation (dense
    R_r/R_s matrices, padded slots as nodes) on the kept features, and a dropped SV column
    does not change it."""
    import torch

    out, tagger, _ = upstream_sv_dropping
    bundle = servable.load(out)
    jets = servable.read_jets(test_file)[:256]
    c = tagger.config
    x = torch.from_numpy(jets.tracks[:, [jets.track_names.index(n) for n in c["track_features"]]])
    y = torch.from_numpy(
        jets.vertices[:, [jets.vertex_names.index(n) for n in c["vertex_features"]]])
    with torch.inference_mode():
        dense = tagger.net.core.dense_forward(x, y).numpy()
    np.testing.assert_allclose(bundle.logits(jets), dense, atol=1e-4, rtol=1e-6)
    dropped = [i for i, n in enumerate(jets.vertex_names) if n not in c["vertex_features"]]
    jets.vertices[:, dropped] *= 2.0
    np.testing.assert_allclose(bundle.logits(jets), dense, atol=1e-4, rtol=1e-6)
