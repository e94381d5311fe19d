"""Bundles: complete, verified, portable; every model has a standard ONNX."""

import json
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import yaml

import servable
from servable.bundle.manifest import BundleError
from tests.cli_helpers import assert_user_error, run_cli

pytestmark = pytest.mark.slow
KINDS = ["in", "mlp", "bdt", "part"]


@pytest.fixture(scope="module")
def jets(test_file):
    return servable.read_jets(test_file)


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_runtime_agrees_with_pytorch_on_2000_jets(trained, jets, kind):
    bundle = servable.load(trained[kind])
    assert len(jets) == 2000
    p_native, p_onnx = bundle.predict(jets), bundle.predict(jets, runtime="onnx")
    np.testing.assert_allclose(p_onnx, p_native, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_the_onnx_file_is_standard_and_self_contained(trained, jets, kind):
    path = trained[kind] / "model.onnx"
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    expected = {"in": ["tracks", "vertices"], "mlp": ["tracks", "vertices", "jet_features"],
                "bdt": ["jet_features"], "part": ["tracks"]}[kind]
    assert names == expected
    assert session.get_outputs()[0].name == "probabilities"
    assert all(not isinstance(i.shape[0], int) for i in session.get_inputs())  # dynamic batch
    feed = {"tracks": jets.tracks[:7], "vertices": jets.vertices[:7],
            "jet_features": jets.jet_features[:7]}
    probabilities = session.run(None, {k: feed[k] for k in names})[0]
    assert probabilities.shape == (7, 2)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)


def _manifest(bundle_dir) -> dict:
    return yaml.safe_load((bundle_dir / "servable.yaml").read_text())


@pytest.mark.parametrize("kind", KINDS)
def test_a_bundle_lists_its_onnx_citation_card_crate_metrics_and_plots(trained, kind):
    manifest = _manifest(trained[kind])
    for name in ("model.onnx", "CITATION.cff", "codemeta.json", "MODEL_CARD.md",
                 "ro-crate-metadata.json", "metrics.json", "loss.png", "roc.png", "schema.json"):
        assert name in manifest["files"], name


@pytest.mark.parametrize("kind", KINDS)
def test_a_bundle_declares_a_dynamic_batch_and_its_runtimes(trained, kind):
    manifest = _manifest(trained[kind])
    assert all(i["shape"][0] is None for i in manifest["inputs"])
    assert {"onnx", "tensorrt"} <= set(manifest["runtimes"])


def test_a_bundle_gives_each_input_feature_its_physical_unit(trained):
    # units of the CMS producer's definitions ("" = dimensionless; track_dptdpt is
    # sigma^2(q/p): docs/data.md), written out here
    expected = {"tracks": {"track_ptrel": "", "track_phirel": "rad", "track_dxy": "cm",
                           "track_dptdpt": "GeV^-2", "track_dphidxy": "rad cm"},
                "vertices": {"sv_pt": "GeV", "sv_mass": "GeV", "sv_dxy": "cm",
                             "sv_ntracks": ""}}
    for entry in _manifest(trained["in"])["inputs"]:
        units = {f["name"]: f["unit"] for f in entry["features"]}
        assert {k: units[k] for k in expected[entry["name"]]} == expected[entry["name"]]


def test_a_bundle_records_the_software_and_machine_it_was_trained_with(trained):
    import os

    import torch

    manifest = _manifest(trained["in"])
    assert manifest["dependencies"]["torch"] == str(torch.__version__)
    assert manifest["provenance"]["hardware"]["cpus"] == os.cpu_count()


@pytest.mark.parametrize("kind", KINDS)
def test_a_bundles_citation_file_is_valid_cff(trained, kind):
    from cffconvert import Citation

    Citation((trained[kind] / "CITATION.cff").read_text()).validate()


@pytest.mark.parametrize("kind", KINDS)
def test_a_bundles_codemeta_is_codemeta_3(trained, kind):
    codemeta = json.loads((trained[kind] / "codemeta.json").read_text())
    assert codemeta["@context"].startswith("https://w3id.org/codemeta/3.0")


@pytest.mark.parametrize("kind", KINDS)
def test_a_bundles_ro_crate_describes_every_file(trained, kind):
    manifest = _manifest(trained[kind])
    crate = json.loads((trained[kind] / "ro-crate-metadata.json").read_text())
    assert crate["@graph"][0]["conformsTo"]["@id"] == "https://w3id.org/ro/crate/1.1"
    described = {e["@id"] for e in crate["@graph"] if e.get("@type") == "File"}
    assert set(manifest["files"]) - {"ro-crate-metadata.json"} <= described


def test_flipping_one_byte_of_the_weights_is_refused_naming_the_file(trained, tmp_path):
    copy = shutil.copytree(trained["in"], tmp_path / "tampered")
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.safetensors does not match its SHA-256"):
        servable.load(copy)
    assert_user_error(run_cli("bundle", "verify", copy), "model.safetensors", "SHA-256")


def test_a_missing_file_is_refused(trained, tmp_path):
    copy = shutil.copytree(trained["bdt"], tmp_path / "incomplete")
    (copy / "model.onnx").unlink()
    assert_user_error(run_cli("bundle", "verify", copy), "model.onnx is missing")


def test_verify_accepts_an_intact_bundle(trained):
    r = run_cli("bundle", "verify", trained["part"])
    assert r.returncode == 0 and "verified" in r.stdout


def test_the_bundle_predicts_from_a_copy_elsewhere_without_the_repository(trained, test_file,
                                                                          tmp_path):
    copy = shutil.copytree(trained["in"], tmp_path / "elsewhere" / "bundle")
    code = ("import servable, numpy; b = servable.load('bundle'); "
            f"j = servable.read_jets({str(test_file)!r})[:20]; "
            "print(float(b.predict(j).sum()))")
    # -I: isolated mode, no current directory or PYTHONPATH on sys.path; only the installed
    # package is importable, and the bundle has nothing but its own files
    r = subprocess.run([sys.executable, "-I", "-c", code], cwd=copy.parent, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert abs(float(r.stdout) - 20.0) < 1e-3


def test_export_packs_every_file_into_a_zip(trained, tmp_path):
    out = tmp_path / "bundle.zip"
    r = run_cli("bundle", "export", trained["mlp"], "-o", out)
    assert r.returncode == 0, r.stderr
    names = zipfile.ZipFile(out).namelist()
    manifest = yaml.safe_load((trained["mlp"] / "servable.yaml").read_text())
    assert {n.split("/", 1)[1] for n in names} == set(manifest["files"]) | {"servable.yaml"}


def test_tensorrt_says_clearly_when_it_cannot_run(trained, jets):
    pytest.importorskip("torch")
    import torch

    bundle = servable.load(trained["in"])
    try:
        import tensorrt  # noqa: F401
        has_trt = torch.cuda.is_available()
    except ImportError:
        has_trt = False
    if has_trt:  # a GPU machine: TensorRT must agree with PyTorch
        np.testing.assert_allclose(bundle.predict(jets, "tensorrt"), bundle.predict(jets),
                                   atol=1e-4)
    else:
        with pytest.raises(servable.ServableError, match="TensorRT|CUDA GPU"):
            bundle.predict(jets[:5], runtime="tensorrt")
