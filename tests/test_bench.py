"""Portability and speed reports (the numbers themselves live in docs/benchmarks.md)."""

import json

import pytest

from tests.cli_helpers import run_cli

pytestmark = pytest.mark.slow


def _tensorrt_missing() -> str | None:
    """Why TensorRT cannot run here (None on a machine where it can)."""
    import importlib.util

    import torch

    if importlib.util.find_spec("tensorrt") is None:
        return "the tensorrt package is not installed"
    if not torch.cuda.is_available():
        return "no NVIDIA GPU is visible"
    return None


@pytest.fixture(scope="module")
def parity(trained, test_file):
    r = run_cli("bench", "parity", trained["part"], "--data", test_file, "--n-jets", 300,
                "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_parity_finds_onnx_runtime_probabilities_equal_to_pytorchs(parity):
    onnx = parity["runtimes"]["onnx"]
    assert onnx["max_abs_dp"] < 1e-5 and onnx["fidelity"] > 0.99999


def test_parity_finds_the_same_auc_with_onnx_runtime_and_pytorch(parity):
    assert abs(parity["runtimes"]["onnx"]["roc_auc"]
               - parity["runtimes"]["torch"]["roc_auc"]) < 1e-4


def test_parity_without_tensorrt_says_what_is_missing(parity):
    if _tensorrt_missing() is None:
        pytest.skip("TensorRT and an NVIDIA GPU are present: the next test checks its parity")
    assert "tensorrt" not in parity["runtimes"]
    reason = parity["skipped"]["tensorrt"]
    assert "TensorRT is not installed" in reason or "no CUDA GPU is visible" in reason, reason


def test_parity_finds_tensorrt_probabilities_close_to_pytorchs(parity):
    missing = _tensorrt_missing()
    if missing:
        pytest.skip(f"TensorRT runs only on an NVIDIA GPU with tensorrt installed: {missing}")
    assert "tensorrt" not in parity["skipped"], parity["skipped"]
    trt = parity["runtimes"]["tensorrt"]  # an FP32 engine: float32 rounding differences only
    assert trt["max_abs_dp"] < 1e-4 and trt["fidelity"] > 0.9999


def test_throughput_scan_writes_box_plots_and_numbers(trained, test_file, tmp_path):
    stem = tmp_path / "scan"
    r = run_cli("bench", "throughput", trained["in"], "--data", test_file, "--batch-sizes",
                "16,256", "--repeats", 3, "--runtime", "torch", "--runtime", "onnx", "-o", stem)
    assert r.returncode == 0, r.stderr
    result = json.loads(stem.with_suffix(".json").read_text())
    assert set(result["runtimes"]) == {"torch", "onnx"}
    assert all(len(v) == 3 and min(v) > 0 for v in result["runtimes"]["onnx"].values())
    assert stem.with_suffix(".png").stat().st_size > 5000
    assert stem.with_suffix(".pdf").exists()


@pytest.fixture(scope="module")
def inference_report(test_file):
    r = run_cli("bench", "inference", "--data", test_file, "--batch-sizes", "256",
                "--n-jets", 512, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_inference_bench_measures_dense_fast_fused_and_onnx_in_one_run(inference_report):
    # speed belongs in docs/benchmarks.md: here only that every variant was measured
    assert inference_report["fused"] == "built"
    row = inference_report["batch_sizes"]["256"]
    assert all(row[k] > 0 for k in ("dense", "fast", "fused", "onnx", "pair_gemms"))
    assert row["fused_over_pair_gemms"] == row["fused"] / row["pair_gemms"]


def test_inference_bench_counts_the_flops_the_fast_path_saves(inference_report):
    flops = inference_report["flops"]
    assert flops["dense_per_jet"] > 10 * flops["fast_per_jet_mean"]


def test_predicting_streams_a_large_file_with_flat_memory(trained, test_file, tmp_path):
    import subprocess
    import sys

    import servable

    jets = servable.read_jets(test_file)
    peaks = {}
    for copies in (5, 20):  # 10k and 40k jets
        big = tmp_path / f"big{copies}.h5"
        servable.write_jets(big, servable.Jets.concatenate([jets] * copies), split="testing")
        # VmHWM is this process's own peak: ru_maxrss would inherit pytest's across fork+exec
        code = ("import servable; from servable.bundle.predict import predict_file; "
                f"predict_file(servable.load({str(trained['in'])!r}), {str(big)!r}, "
                f"{str(tmp_path / f's{copies}.h5')!r}, chunk_size=4096); "
                "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, out.stderr
        peaks[copies] = int(out.stdout.split()[-2]) / 1024  # kB -> MiB
    assert peaks[20] < 1500
    # streaming: 4x the jets, about the same peak (allocator noise is ~+-80 MB here; reading
    # the 40k jets whole would add > 300 MB of raw arrays alone)
    assert peaks[20] - peaks[5] < 200, peaks
