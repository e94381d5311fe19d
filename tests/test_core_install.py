"""The core install (numpy, h5py, pyyaml, safetensors, onnxruntime, typer, tqdm) loads a
bundle, verifies it and predicts with ONNX Runtime; torch is never imported on that path."""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.cli_helpers import run_cli, source_copy


def test_onnx_prediction_imports_no_torch(published_bundle, test_file):
    """In this (full) environment: loading, verifying and predicting with ONNX Runtime leaves
    torch out of sys.modules, and the scores equal the native model's."""
    code = (
        "import sys, numpy, servable\n"
        f"b = servable.load({str(published_bundle)!r})\n"
        f"jets = servable.read_jets({str(test_file)!r})[:300]\n"
        "p = b.predict(jets, runtime='onnx')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "numpy.save(sys.argv[1], p)\n")
    out = Path(test_file).parent / "onnx_scores.npy"
    r = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    import servable

    native = servable.load(published_bundle).predict(servable.read_jets(test_file)[:300])
    np.testing.assert_allclose(np.load(out), native, atol=1e-5)


def test_onnx_bundle_never_reads_native_weights(published_bundle, tmp_path):
    """A bundle opened for ONNX only does not build its native model; asking for it says
    which runtime to use."""
    import servable

    b = servable.load(published_bundle, native=False)
    with pytest.raises(servable.ServableError, match="runtime='onnx'"):
        b.tagger  # noqa: B018


@pytest.mark.slow
def test_fresh_core_venv_predicts_with_onnx(published_bundle, test_file, tmp_path):
    """`pip install servable` without extras, in a new venv: `servable predict --runtime
    onnx` works and matches the full installation's scores; torch is not installed."""
    src = source_copy(tmp_path / "src")
    venv = tmp_path / "core"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(src)],
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    py = str(venv / "bin" / "python")
    r = subprocess.run([py, "-c", "import importlib.util as u; print(u.find_spec('torch'))"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "None", "the core install pulled in torch"
    r = subprocess.run([str(venv / "bin" / "servable"), "predict", str(published_bundle),
                        str(test_file), "-o", str(tmp_path / "core.h5"), "--runtime", "onnx",
                        "--quiet"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("predict", published_bundle, test_file, "-o", tmp_path / "full.h5", "--quiet")
    assert r.returncode == 0, r.stderr
    with h5py.File(tmp_path / "core.h5") as a, h5py.File(tmp_path / "full.h5") as b:
        np.testing.assert_allclose(a["scores"][:], b["scores"][:], atol=1e-5)
