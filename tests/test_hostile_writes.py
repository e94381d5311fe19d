"""Careless and hostile input (issue 19): writes where they must not, numeric arguments,
named pipes as input, and JSON that strict parsers refuse.

Every output goes through one atomic writer (`servable.files`): never inside a bundle,
never over an existing file without --force, never through a planted symlink. Counts given
as arguments are checked where they are used (the API) and on the command line. Only
regular files are read. Every JSON the product writes is strict.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil

import numpy as np
import pytest

from servable.data.h5io import read_jets, write_jets
from servable.data.jets import Jets
from servable.errors import ServableError
from tests.cli_helpers import assert_user_error, run_cli


def _strict(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity, as strict parsers do."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def jets_file(published_bundle, tmp_path_factory):
    """64 jets the published IN separates perfectly: the 32 it scores highest are labelled
    H->bb, so no QCD jet passes the cut at 50% signal efficiency (infinite rejection)."""
    import servable

    bundle = servable.load(published_bundle)
    inputs = bundle.spec.example(64, seed=3)
    jets = Jets.cms(inputs["tracks"], inputs["vertices"])
    score = bundle.predict(jets)[:, 1]
    signal = np.argsort(np.argsort(score)) >= 32
    labels = np.stack([~signal, signal], axis=1).astype(np.float32)
    path = tmp_path_factory.mktemp("hostile") / "jets.h5"
    write_jets(path, Jets.cms(inputs["tracks"], inputs["vertices"], labels=labels), split="testing")
    return path


@pytest.fixture
def bundle(published_bundle, tmp_path):
    """A private copy of the published IN bundle (tests here try to write into it)."""
    return shutil.copytree(published_bundle, tmp_path / "bundle")


def _bundle_digests(bundle) -> dict:
    return {p.name: _digest(p) for p in sorted(bundle.iterdir()) if p.is_file()}


# -- writes where they must not --------------------------------------------------------

def test_a_symlink_planted_at_the_old_temporary_name_is_not_followed(jets_file, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out.h5"
    (tmp_path / ".out.h5.part").symlink_to(victim)
    write_jets(out, read_jets(jets_file))
    assert victim.read_text() == "precious"
    assert len(read_jets(out)) == 64


def test_predict_does_not_follow_a_planted_symlink(bundle, jets_file, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / ".scores.h5.part").symlink_to(victim)
    r = run_cli("predict", bundle, jets_file, "-o", tmp_path / "scores.h5", "--quiet",
                "--runtime", "onnx")
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("name", ["model.onnx", "scores.h5"])
def test_predict_never_writes_into_the_bundle_it_reads_even_with_force(bundle, jets_file, name):
    before = _bundle_digests(bundle)
    assert_user_error(run_cli("predict", bundle, jets_file, "-o", bundle / name, "--force",
                              "--runtime", "onnx"), "inside the bundle")
    assert _bundle_digests(bundle) == before


@pytest.mark.parametrize("name", ["model.onnx", "export.zip"])
def test_bundle_export_never_writes_into_the_bundle_even_with_force(bundle, name):
    before = _bundle_digests(bundle)
    assert_user_error(run_cli("bundle", "export", bundle, "-o", bundle / name, "--force"),
                      "inside the bundle")
    assert _bundle_digests(bundle) == before


def test_explain_refuses_to_overwrite_explanation_json_without_force(bundle, jets_file,
                                                                     tmp_path):
    out = tmp_path / "lrp"
    out.mkdir()
    (out / "explanation.json").write_text('{"earlier": true}')
    args = ("explain", bundle, jets_file, "--method", "lrp", "--n-jets", 8, "-o", out)
    assert_user_error(run_cli(*args), "explanation.json exists", "--force")
    assert (out / "explanation.json").read_text() == '{"earlier": true}'
    r = run_cli(*args, "--force")
    assert r.returncode == 0, r.stderr
    assert _strict((out / "explanation.json").read_text())["n_jets"] == 8


def test_explain_never_writes_into_the_bundle(bundle, jets_file):
    before = _bundle_digests(bundle)
    assert_user_error(run_cli("explain", bundle, jets_file, "--method", "lrp", "--n-jets", 8,
                              "-o", bundle), "inside the bundle")
    assert _bundle_digests(bundle) == before


def test_bench_throughput_refuses_to_overwrite_its_outputs(bundle, jets_file, tmp_path):
    (tmp_path / "tp.json").write_text("earlier")
    assert_user_error(run_cli("bench", "throughput", bundle, "--data", jets_file,
                              "--batch-sizes", "8", "--repeats", 1, "-o", tmp_path / "tp"),
                      "tp.json exists")
    assert (tmp_path / "tp.json").read_text() == "earlier"
    assert not (tmp_path / "tp.png").exists()


def test_evaluate_refuses_to_overwrite_its_plot(bundle, jets_file, tmp_path):
    plot = tmp_path / "roc.png"
    plot.write_bytes(b"earlier")
    assert_user_error(run_cli("evaluate", bundle, "--data", jets_file, "--plot", plot),
                      "roc.png exists")
    assert plot.read_bytes() == b"earlier"


# -- numeric arguments -----------------------------------------------------------------

EXPLAIN = ("explain", "{bundle}", "{jets}", "--method", "lrp", "-o", "{tmp}/e")
PREDICT = ("predict", "{bundle}", "{jets}", "-o", "{tmp}/s.h5")


@pytest.mark.parametrize("args, fragment", [
    ((*PREDICT, "--batch-size", "0"), "--batch-size"),
    ((*PREDICT, "--batch-size", "-4"), "--batch-size"),
    ((*EXPLAIN, "--n-jets", "0"), "--n-jets"),
    ((*EXPLAIN, "--n-jets", "-5"), "--n-jets"),  # once explained all jets but 5
    ((*EXPLAIN, "--target", "-1"), "--target"),  # once explained class 1
    ((*EXPLAIN, "--target", "2"),
     "--target '2': give a class index or name of 0 = QCD, 1 = Hbb"),
    (("bench", "throughput", "{bundle}", "--data", "{jets}", "--repeats", "0", "-o",
      "{tmp}/tp"), "--repeats"),
    (("bench", "parity", "{bundle}", "--data", "{jets}", "--n-jets", "0"), "--n-jets"),
], ids=["batch-0", "batch-negative", "n-jets-0", "n-jets-negative", "target-negative",
        "target-out-of-range", "repeats-0", "parity-n-jets-0"])
def test_a_bad_count_exits_2_with_one_line(bundle, jets_file, tmp_path, args, fragment):
    args = [a.format(bundle=bundle, jets=jets_file, tmp=tmp_path) for a in args]
    assert_user_error(run_cli(*args), fragment)
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]  # nothing written


def test_the_api_refuses_bad_counts_instead_of_reinterpreting_them(published_bundle,
                                                                   jets_file, tmp_path):
    import servable
    from servable.bundle.predict import predict_file
    from servable.data.h5io import JetFile, iter_jets

    model = servable.load(published_bundle)
    jets = read_jets(jets_file)[:8]
    with pytest.raises(ServableError, match="batch_size must be an integer >= 1, not 0"):
        model.predict(jets, batch_size=0)
    with pytest.raises(ServableError, match="target"):
        model.explain(jets, method="lrp", target=-1)  # once explained class 1
    with JetFile(jets_file) as f, pytest.raises(ServableError, match="stop"):
        f.read(0, -1)  # once read all jets but the last
    with pytest.raises(ServableError, match="chunk_size"):
        next(iter_jets(jets_file, chunk_size=0))
    with pytest.raises(ServableError, match="chunk_size"):
        predict_file(model, jets_file, tmp_path / "s.h5", chunk_size=-1)
    assert not (tmp_path / "s.h5").exists()


# -- named pipes -----------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
@pytest.mark.parametrize("command", ["inspect", "predict"])
def test_a_named_pipe_as_input_is_refused_not_waited_on(bundle, tmp_path, command):
    fifo = tmp_path / "jets.h5"
    os.mkfifo(fifo)
    args = (("data", "inspect", fifo) if command == "inspect" else
            ("predict", bundle, fifo, "-o", tmp_path / "s.h5", "--runtime", "onnx"))
    assert_user_error(run_cli(*args, timeout=60), "named pipe")


# -- symbolic link loops (issue 38) ---------------------------------------------------

@pytest.mark.parametrize("command", ["inspect", "predict", "train", "import"])
def test_a_symlink_loop_as_input_is_one_line_not_a_traceback(bundle, tmp_path, command):
    loop = tmp_path / "in.h5"
    loop.symlink_to(loop.name)  # in.h5 -> in.h5: resolving it never ends
    out = tmp_path / "out"
    args = {"inspect": ("data", "inspect", loop),
            "predict": ("predict", bundle, loop, "-o", out, "--runtime", "onnx"),
            "train": ("train", "--data", loop, "-o", out, "--epochs", "1"),
            "import": ("bundle", "import-checkpoint", loop, "-o", out)}[command]
    assert_user_error(run_cli(*args, timeout=120), f"{loop.name}: a symbolic link loop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "in.h5"]


def test_an_output_folder_that_is_a_symlink_loop_is_one_line(bundle, jets_file, tmp_path):
    loop = tmp_path / "scores"
    loop.symlink_to(loop.name)
    assert_user_error(run_cli("predict", bundle, jets_file, "-o", loop / "s.h5"),
                      "scores: a symbolic link loop")
    with pytest.raises(ServableError, match="a symbolic link loop"):
        write_jets(loop / "s.h5", read_jets(jets_file))


# -- strict JSON -----------------------------------------------------------------------

def test_evaluate_json_is_strict_when_a_rejection_is_infinite(bundle, jets_file):
    r = run_cli("evaluate", bundle, "--data", jets_file, "--json")
    assert r.returncode == 0, r.stderr
    metrics = _strict(r.stdout)
    assert metrics["rejection_50"] is None  # infinite: no QCD jet passes the cut


def test_a_bundles_metrics_json_is_strict(published_bundle, tmp_path):
    import servable
    from servable.bundle.bundle import save_bundle

    tagger = servable.load(published_bundle).tagger
    out = save_bundle(tagger, tmp_path / "b", name="strict", metrics={
        "roc_auc": 0.9, "rejection_50": math.inf, "rejection_30": math.nan})
    metrics = _strict((out / "metrics.json").read_text())
    assert metrics == {"roc_auc": 0.9, "rejection_50": None, "rejection_30": None}


# -- the TensorRT engine cache (its path logic; building needs a GPU) ------------------

def test_tensorrt_engines_are_cached_outside_the_bundle(monkeypatch, tmp_path):
    from servable.runtimes import tensorrt_runtime as trt

    monkeypatch.setenv("SERVABLE_CACHE", str(tmp_path / "cache"))
    digest = "ab" * 32
    path = trt.engine_path(digest, "NVIDIA H100 80GB HBM3/sm90", "10.3.0", fp16=True)
    assert path.parent == tmp_path / "cache" / "tensorrt"
    assert path.name == f"NVIDIA_H100_80GB_HBM3_sm90-trt10.3.0-{digest}-fp16.plan"
    monkeypatch.delenv("SERVABLE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert trt.engine_cache_dir() == tmp_path / "xdg" / "servable" / "tensorrt"


def test_the_tensorrt_runtime_writes_its_engine_to_the_cache_not_the_bundle(
        bundle, monkeypatch, tmp_path):
    """With TensorRT and CUDA replaced by stand-ins (no GPU here), only the cache path and
    the write are exercised."""
    from types import SimpleNamespace

    from servable.runtimes import tensorrt_runtime as trt

    def logger(level):
        return None

    logger.WARNING = 0
    engine = SimpleNamespace(num_io_tensors=0, create_execution_context=lambda: None)
    fake_trt = SimpleNamespace(
        __version__="10.3.0", Logger=logger, TensorIOMode=SimpleNamespace(INPUT=0),
        Runtime=lambda logger: SimpleNamespace(deserialize_cuda_engine=lambda data: engine))
    fake_torch = SimpleNamespace(cuda=SimpleNamespace(
        get_device_name=lambda: "NVIDIA H100", get_device_capability=lambda: (9, 0)))
    monkeypatch.setattr(trt, "_require", lambda: (fake_trt, fake_torch))
    monkeypatch.setattr(trt.TensorRTRuntime, "_build", lambda self, *args: b"engine")
    monkeypatch.setenv("SERVABLE_CACHE", str(tmp_path / "cache"))
    before = _bundle_digests(bundle)
    runtime = trt.TensorRTRuntime(bundle / "model.onnx")
    assert sorted(p.name for p in bundle.iterdir()) == sorted(before)  # nothing added
    assert runtime.plan_path.parent == tmp_path / "cache" / "tensorrt"
    assert runtime.plan_path.read_bytes() == b"engine"
    assert _digest(bundle / "model.onnx") in runtime.plan_path.name
