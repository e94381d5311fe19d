"""Remote execution through the real Globus Compute endpoint engines."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest

from servable import read_jets, write_jets
from servable.data.jets import Jets
from servable.remote import Client, PayloadTooLarge, RemoteTaskError
from servable.remote.client import PAYLOAD_LIMIT, serializer
from servable.remote.encoding import jets_to_arrays
from servable.remote.jsondata import to_json_safe
from tests.cli_helpers import assert_user_error, run_cli, source_copy

ROOT = Path(__file__).resolve().parents[1]


def other_python() -> tuple[str, str]:
    """A Python interpreter of another minor version than this one: on PATH, else among
    pyenv's versions ($PYENV_ROOT, default ~/.pyenv)."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    for minor in (12, 13, 11, 10):
        if (3, minor) == sys.version_info[:2]:
            continue
        candidates = [shutil.which(f"python3.{minor}"),
                      *map(str, sorted(pyenv.glob(f"3.{minor}.*/bin/python3.{minor}")))]
        for exe in filter(None, candidates):
            r = subprocess.run([exe, "-c", "import venv, sys; print(sys.version_info[1])"],
                               capture_output=True, text=True)
            if r.returncode == 0 and r.stdout.strip() == str(minor):
                return exe, f"3.{minor}"
    pytest.fail("no Python 3.10-3.13 other than the running one on PATH or under pyenv: "
                "install one (e.g. apt-get install python3.11) to test workers on another "
                "Python")


def assert_same_json(a, b, rel: float, where: str = "") -> None:
    """Equal structure, keys, strings and integers; floats equal to `rel` (relative)."""
    if isinstance(b, dict):
        assert isinstance(a, dict) and a.keys() == b.keys(), where
        for k in b:
            assert_same_json(a[k], b[k], rel, f"{where}.{k}")
    elif isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_json(x, y, rel, f"{where}[{i}]")
    elif isinstance(b, float):
        assert a == pytest.approx(b, rel=rel, abs=1e-12), where
    else:
        assert a == b and type(a) is type(b), where


def kill_first_attempt(marker):
    """Kills its own worker process the first time it runs (a lost node), then answers."""
    import os
    import signal
    from pathlib import Path

    if not Path(marker).exists():
        Path(marker).write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


@pytest.fixture(scope="module")
def client():
    with Client("local", workers=2, backoff=0.1) as c:
        yield c


@pytest.fixture(scope="module")
def jets(test_file):
    return read_jets(test_file)


def test_predict_matches_local_and_keeps_order(client, published_bundle, jets, monkeypatch):
    import servable

    local = servable.load(published_bundle).predict(jets)
    monkeypatch.setattr(client, "payload_limit", 700_000)  # many tasks, same answer
    monkeypatch.setattr(client, "largest_payload", 0)
    result = client.predict(published_bundle, jets).result()
    assert result["runtime"] == "torch" and result["worker"]["python"]
    assert result["tasks"] >= 10 and 500_000 < client.largest_payload <= 700_000
    np.testing.assert_allclose(result["probabilities"], local, atol=1e-6)


def test_a_task_over_the_limit_is_split_until_it_fits(client, published_bundle, jets,
                                                      monkeypatch):
    """The size of a compact jet varies: a task estimated under the limit but over it is
    halved, not refused, and the answer keeps the input order."""
    import servable

    local = servable.load(published_bundle).predict(jets)
    monkeypatch.setattr(client, "payload_limit", 1_000_000)
    monkeypatch.setattr(client, "_task_bounds", lambda arrays, fixed: [(0, len(jets))])
    result = client.predict(published_bundle, jets).result()
    assert result["tasks"] >= 8 and client.largest_payload <= 1_000_000
    np.testing.assert_allclose(result["probabilities"], local, atol=1e-6)


def test_hostile_compact_jets_are_one_clear_remote_error(client, published_bundle, jets):
    from servable.remote import functions
    from servable.remote.encoding import compact_arrays, jets_to_arrays

    arrays = compact_arrays(jets_to_arrays(jets[:10]))
    arrays["tracks"]["counts"] = arrays["tracks"]["counts"] + 1000
    with pytest.raises(RemoteTaskError) as info:
        client.submit(functions.predict, str(published_bundle), arrays).result()
    assert str(info.value) == ("remote task failed: InvalidJetsError: tracks.counts: expected "
                               "counts from 0 to 60 (the slots), received "
                               f"{arrays['tracks']['counts'].min()} to "
                               f"{arrays['tracks']['counts'].max()}")


def test_predict_of_20k_jets_loads_the_bundle_once_per_worker_process(client,
                                                                       published_bundle, jets):
    reps = -(-20_000 // len(jets.tracks))
    big = Jets.concatenate([jets] * reps)[:20_000]
    result = client.predict(published_bundle, big).result()
    reports = result["workers"]
    # the padded arrays took 22 tasks under the 10 MB limit; the compact ones take 8
    sample = jets_to_arrays(jets[:1000])
    padded = len(serializer().serialize(to_json_safe([sample[k] for k in (
        "tracks", "vertices", "jet_features")]))) * 20
    assert 6 <= len(reports) == result["tasks"] <= padded / (0.95 * PAYLOAD_LIMIT) / 2.5 + 1
    by_pid: dict[int, list[int]] = {}
    for report in reports:
        by_pid.setdefault(report["pid"], []).append(report["bundle_loads"])
    assert max(len(loads) for loads in by_pid.values()) >= 2  # a process ran several tasks
    assert all(loads == [1] * len(loads) for loads in by_pid.values()), by_pid


def test_worker_loads_a_changed_bundle_again(published_bundle, tmp_path):
    from servable.bundle.manifest import read_manifest, seal
    from servable.remote import worker

    bundle = shutil.copytree(published_bundle, tmp_path / "b")
    first, loads = worker.cached_bundle(str(bundle))
    again, loads_again = worker.cached_bundle(str(bundle))
    assert again is first and (loads, loads_again) == (1, 1)
    manifest, _ = read_manifest(bundle)  # changed and sealed anew: another valid bundle
    manifest["description"] += " (edited)"
    seal(bundle, manifest)
    changed, loads_changed = worker.cached_bundle(str(bundle))
    assert changed is not first and loads_changed == 1
    assert [key for key in worker._BUNDLES if key[0] == str(bundle.resolve())] == [
        (str(bundle.resolve()), hashlib.sha256((bundle / "servable.yaml").read_bytes())
         .hexdigest())]


USER_SCRIPT = """import torch  # first, as most PyTorch users' scripts start

import json
import os
import sys

import servable
from servable.remote import Client

if __name__ == "__main__":
    bundle, data, engine = sys.argv[1:]
    jets = servable.read_jets(data)
    with Client("local", engine=engine, workers=2, payload_limit=1_000_000) as client:
        result = client.predict(bundle, jets).result()
    print(json.dumps({"workers": result["workers"], "tasks": result["tasks"],
                      "omp": os.environ.get("OMP_NUM_THREADS", "unset")}))
"""


@pytest.mark.parametrize("engine", ["process", "parsl"])
def test_workers_of_a_script_importing_torch_first_use_their_share_of_cores(
        engine, published_bundle, test_file, tmp_path):
    """A spawned worker imports the caller's main module before anything of ours runs:
    torch imported there must still get cores / workers threads in every worker."""
    script = tmp_path / "user_script.py"
    script.write_text(USER_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OMP_NUM_THREADS", None)
    r = subprocess.run([sys.executable, str(script), str(published_bundle), str(test_file),
                        engine], capture_output=True, text=True, env=env, timeout=600,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    share = max(1, os.cpu_count() // 2)
    assert out["tasks"] >= 4 and len(out["workers"]) == out["tasks"]
    assert [w["torch_threads"] for w in out["workers"]] == [share] * out["tasks"], out
    assert out["omp"] == "unset"  # the caller's own environment is left as it was


def test_worker_exception_is_one_clear_error(client, published_bundle, jets):
    bad = {"tracks": jets.tracks[:4, :10], "vertices": jets.vertices[:4]}
    with pytest.raises(RemoteTaskError) as info:
        client.predict(published_bundle, bad).result()
    message = str(info.value)
    assert "InvalidJetsError: tracks: expected 30 features" in message
    assert len(message.splitlines()) == 1
    assert "Traceback" in info.value.remote_traceback  # the whole remote trace is kept


def test_killed_worker_is_retried(client, tmp_path):
    marker = tmp_path / "marker"
    sent = client.tasks_sent
    pid = client.submit(kill_first_attempt, str(marker)).result(timeout=120)
    assert marker.read_text() == "killed once"
    assert isinstance(pid, int) and pid != os.getpid()
    assert client.tasks_sent - sent == 2  # the lost task was sent again


def test_payload_over_limit_is_refused_before_sending(published_bundle, jets, client,
                                                     monkeypatch):
    monkeypatch.setattr(client, "payload_limit", 200_000)
    sent = client.tasks_sent
    # masking scores the whole set at once (dAUC): it is never split, so it must fit
    with pytest.raises(PayloadTooLarge, match="over the service's limit"):
        client.explain(published_bundle, jets[:100], "masking").result()
    assert client.tasks_sent == sent


def test_remote_explain_equals_local(client, published_bundle, jets, monkeypatch):
    import servable

    sample = jets[:300]
    local = servable.load(published_bundle).explain(sample, "lrp")
    monkeypatch.setattr(client, "payload_limit", 1_000_000)
    remote = client.explain(published_bundle, sample, "lrp").result()
    assert remote["tasks"] > 1 and remote["n_jets"] == 300
    # float32 LRP: other batches bucket the jets differently and the worker's torch runs on
    # one thread, so sums run in another order; the epsilon rule amplifies that where a
    # pre-activation is near zero (seen: 2 of 540k entries off by 4e-4 of the largest)
    scale = np.abs(local.tracks).max()
    np.testing.assert_allclose(remote["tracks"], local.tracks, rtol=0, atol=1e-3 * scale)
    close = np.abs(remote["tracks"] - local.tracks) <= 1e-5 * scale
    assert close.mean() > 0.999
    for name, value in local.feature_relevance.items():
        assert remote["explanation"]["feature_relevance"][name] == pytest.approx(
            value, rel=1e-4, abs=1e-6)


@pytest.mark.slow
def test_20k_jets_remote_cli_equal_local_cli(published_bundle, test_file, tmp_path):
    """20k jets (~150 MB of arrays) through `remote predict --endpoint local`."""
    base = read_jets(test_file)
    reps = -(-20_000 // len(base.tracks))
    big = Jets.concatenate([base] * reps)[:20_000]
    assert big.tracks.nbytes + big.vertices.nbytes + big.jet_features.nbytes > 140e6
    data = tmp_path / "big.h5"
    write_jets(data, big)
    r = run_cli("predict", published_bundle, data, "-o", tmp_path / "local.h5", "--quiet")
    assert r.returncode == 0, r.stderr
    r = run_cli("remote", "predict", "--endpoint", "local", published_bundle, data,
                "-o", tmp_path / "remote.h5", "--quiet", timeout=900)
    assert r.returncode == 0, r.stderr
    assert "largest payload" in r.stdout
    largest = float(r.stdout.split("largest payload ")[1].split(" MB")[0])
    tasks = int(r.stdout.split("; ")[1].split(" tasks")[0])
    assert largest * 1e6 <= PAYLOAD_LIMIT and tasks >= 6, r.stdout
    with h5py.File(tmp_path / "local.h5") as a, h5py.File(tmp_path / "remote.h5") as b:
        np.testing.assert_allclose(b["scores"][:], a["scores"][:], atol=1e-6)
        np.testing.assert_array_equal(b["row_index"][:], np.arange(20_000))
        assert b.attrs["bundle"] == a.attrs["bundle"] and b.attrs["n_jets"] == 20_000


@pytest.fixture(scope="session")
def other_venv(request, tmp_path_factory):
    """An environment of another Python minor version with `servable[remote]` installed:
    the core (ONNX Runtime, no torch) and the endpoint's packages, as on a lightweight
    endpoint. Cached by Python version and the package's sources. Returns (venv, "3.X")."""
    exe, version = other_python()
    digest = hashlib.sha256(version.encode())
    for path in sorted([ROOT / "pyproject.toml", *(ROOT / "servable").rglob("*.py")]):
        digest.update(path.read_bytes())
    venv = Path(request.config.cache.mkdir("servable-venv-other")) / digest.hexdigest()[:12]
    if not (venv / ".ready").exists():
        src = source_copy(tmp_path_factory.mktemp("src"))
        subprocess.run([exe, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{src}[remote]"],
                       check=True, timeout=900)
        (venv / ".ready").write_text("ok")
    return venv, version


@pytest.mark.slow
def test_worker_under_another_python_runs_source_serialized_function(other_venv,
                                                                     published_bundle, jets):
    """GlobusComputeEngine (Parsl HTEX over a LocalProvider) with its workers in another
    Python: the function travels by source and runs with ONNX Runtime there (no torch)."""
    import servable

    venv, version = other_venv
    sample = jets[:1500]
    local = servable.load(published_bundle).predict(sample, runtime="onnx")
    init = f"source {venv}/bin/activate"
    with Client("local", engine="parsl", workers=2, worker_init=init) as c:
        c.payload_limit = 1_500_000  # compact jets: ~3.8 kB each, 4 tasks
        result = c.predict(published_bundle, sample).result(timeout=300)
    assert result["worker"]["python"].startswith(version + ".")
    assert result["runtime"] == "onnx" and result["tasks"] >= 3
    share = max(1, os.cpu_count() // 2)
    assert {w["onnx_threads"] for w in result["workers"]} == {share}
    np.testing.assert_allclose(result["probabilities"], local, atol=1e-6)


def test_function_deserializes_by_source_in_a_fresh_interpreter(other_venv, tmp_path):
    """The shipped `predict` carries its source: a fresh interpreter of another Python
    version rebuilds it."""
    from servable.remote import functions

    venv, version = other_venv
    payload = serializer().serialize(functions.predict)
    (tmp_path / "fn.txt").write_text(payload)
    code = ("import sys; from globus_compute_sdk.serialize import ComputeSerializer;"
            "fn = ComputeSerializer().deserialize(open(sys.argv[1]).read());"
            "print(fn.__name__, tuple(sys.version_info[:2]), fn.__code__.co_varnames[:2])")
    r = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", code,
                        str(tmp_path / "fn.txt")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    major, minor = version.split(".")
    assert r.stdout.split()[0] == "predict" and f"({major}, {minor})" in r.stdout
    assert "('bundle_ref', 'jets')" in r.stdout


def test_cli_errors_are_one_line(published_bundle, test_file, tmp_path):
    r = run_cli("remote", "predict", "/no/such/bundle", test_file, "-o", tmp_path / "x.h5")
    assert_user_error(r, "remote task failed", "no such bundle directory")
    assert not (tmp_path / "x.h5").exists()
    env_free = {k: v for k, v in os.environ.items() if not k.startswith("GLOBUS_COMPUTE")}
    r = subprocess.run([sys.executable, "-m", "servable", "remote", "predict", "--endpoint",
                        str(uuid.uuid4()), str(published_bundle), str(test_file), "-o",
                        str(tmp_path / "y.h5")], capture_output=True, text=True, env=env_free)
    assert_user_error(r, "GLOBUS_COMPUTE_CLIENT_ID")
    r = run_cli("remote", "predict", "--endpoint", "nowhere", published_bundle, test_file,
                "-o", tmp_path / "z.h5")
    assert_user_error(r, "'local' or a Globus Compute endpoint UUID")


def test_bundle_found_by_name_under_bundle_path(published_bundle, test_file, tmp_path):
    env = {**os.environ, "SERVABLE_BUNDLE_PATH": str(published_bundle.parent)}
    name = json.loads(json.dumps(__import__("yaml").safe_load(
        (published_bundle / "servable.yaml").read_text())))["name"]
    r = subprocess.run([sys.executable, "-m", "servable", "remote", "predict", name,
                        str(test_file), "-o", str(tmp_path / "s.h5"), "--quiet"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    with h5py.File(tmp_path / "s.h5") as f:
        assert f.attrs["bundle"] == name and f["scores"].shape[1] == 2


def test_remote_explain_cli(published_bundle, test_file, tmp_path):
    r = run_cli("remote", "explain", published_bundle, test_file, "--method", "lrp",
                "--n-jets", 200, "-o", tmp_path / "ex", timeout=300)
    assert r.returncode == 0, r.stderr
    record = json.loads((tmp_path / "ex" / "explanation.json").read_text())
    assert record["n_jets"] == 200 and record["method"] == "lrp"
    assert (tmp_path / "ex" / "relevance.png").stat().st_size > 10_000


def test_remote_explain_writes_the_files_local_explain_writes(published_bundle, test_file,
                                                              tmp_path):
    """Masking (never split: one task) writes its JSON, relevance bars and cumulative curve."""
    args = (test_file, "--method", "masking", "--n-jets", 300, "--per-jet")
    r = run_cli("explain", published_bundle, *args, "-o", tmp_path / "local", timeout=300)
    assert r.returncode == 0, r.stderr
    r = run_cli("remote", "explain", published_bundle, *args, "-o", tmp_path / "remote",
                timeout=300)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert files == ["cumulative_masking.png", "explanation.json", "relevance.png"]
    assert sorted(p.name for p in (tmp_path / "remote").iterdir()) == files
    local, remote = (json.loads((tmp_path / d / "explanation.json").read_text())
                     for d in ("local", "remote"))
    assert local["n_jets"] == 300 and len(local["output"]) == 300
    # the worker's torch runs on its share of the cores, so float32 sums may round
    # differently: numbers agree to 1e-5 (relative), everything else is equal
    assert_same_json(remote, local, rel=1e-5)


def test_register_records_function_digests(tmp_path):
    env = {**os.environ, "SERVABLE_FUNCTION_REGISTRY": str(tmp_path / "fns.json")}
    r = subprocess.run([sys.executable, "-m", "servable", "remote", "register"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    registry = json.loads((tmp_path / "fns.json").read_text())
    assert set(registry) == {"predict", "explain", "train"}
    assert all(len(e["sha256"]) == 64 and e["serialized_bytes"] > 100
               for e in registry.values())


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "containers" / "endpoints")
                                        .glob("*.yaml")))
def test_endpoint_templates_load(name):
    from globus_compute_endpoint.endpoint.config.utils import load_config_yaml

    text = (ROOT / "containers" / "endpoints" / name).read_text()
    config = load_config_yaml(text)
    engine = config.engine
    try:
        assert type(engine).__name__ == "GlobusComputeEngine"
        assert type(engine.provider).__name__ in ("SlurmProvider", "PBSProProvider")
        assert engine.container_type == "apptainer" and engine.container_uri.endswith(".sif")
        assert "SERVABLE_BUNDLE_PATH" in engine.container_cmd_options
        if "gpu" in name:
            assert "--nv" in engine.container_cmd_options.split()
        assert engine.provider.worker_init
    finally:
        engine.shutdown()
    assert len(sorted((ROOT / "containers" / "endpoints").glob("*.yaml"))) >= 3


@pytest.mark.slow
def test_train_seeds_fan_out(train_file, tmp_path):
    """`--executor local` and `--executor parsl:CONFIG.py` each train two seeds in parallel."""
    config = tmp_path / "parsl_config.py"
    config.write_text(
        "from parsl.config import Config\n"
        "from parsl.executors import HighThroughputExecutor\n"
        "from parsl.providers import LocalProvider\n"
        "config = Config(executors=[HighThroughputExecutor(label='htex', max_workers_per_node=2,"
        " address='127.0.0.1', provider=LocalProvider(init_blocks=1, max_blocks=1))],"
        f" run_dir='{tmp_path / 'runinfo'}')\n")
    for executor in ("local", f"parsl:{config}"):
        out = tmp_path / executor.split(":")[0]
        r = run_cli("train", "--model", "mlp", "--data", train_file, "--epochs", 1,
                    "--seeds", "3,4", "--executor", executor, "--quiet", "-o", out,
                    timeout=900)
        assert r.returncode == 0, r.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["seeds"] == [3, 4]
        for seed in (3, 4):
            assert run_cli("bundle", "verify", out / f"seed-{seed}").returncode == 0
    r = run_cli("train", "--data", train_file, "--seeds", "1,2", "--executor",
                f"parsl:{tmp_path / 'missing.py'}", "-o", tmp_path / "m")
    assert_user_error(r, "no such Parsl config file")
