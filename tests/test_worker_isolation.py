"""A remote worker reads untrusted HDF5 files in a child process: a crash of the reader (the
HDF5 library is C code) ends that task with a clear error, and the worker lives on."""

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from servable.data.h5io import write_jets
from servable.data.jets import Jets
from servable.errors import ServableError
from servable.remote.isolation import ReaderCrashed, run_isolated
from servable.remote.worker import train_options

ROOT = Path(__file__).resolve().parents[1]

# Loaded by every Python started with this directory on PYTHONPATH (site's sitecustomize
# hook): opening a file named *segfault.h5 kills the process with SIGSEGV, as libhdf5 does
# on some malformed files. Nothing in the product knows about it.
CRASHING_READER = textwrap.dedent("""
    import os, signal
    import h5py

    _init = h5py.File.__init__

    def _crashing_init(self, name, *args, **kwargs):
        if str(name).endswith("segfault.h5"):
            os.kill(os.getpid(), signal.SIGSEGV)
        _init(self, name, *args, **kwargs)

    h5py.File.__init__ = _crashing_init
""")


def _small_file(path, n=200) -> Path:
    rng = np.random.default_rng(0)
    t = np.zeros((n, 30, 60), np.float32)
    v = np.zeros((n, 14, 5), np.float32)
    t[:, :, :5] = rng.normal(1, 0.2, (n, 30, 5))
    v[:, :, :1] = 1.0
    labels = np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)]
    jet = rng.normal(size=(n, 27)).astype(np.float32) + labels[:, 1:]
    return write_jets(path, Jets.cms(t, v, jet, labels, np.ones((n, 11), np.float32)))


def _options(data, out) -> dict:
    return {"data": [str(data)], "out": str(out), "threads": 1,
            "config": {"model": "bdt", "epochs": 1,
                       "hyperparameters": {"n_estimators": 5, "max_depth": 2}}}


@pytest.fixture
def crashing_reader(tmp_path, monkeypatch):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CRASHING_READER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), str(ROOT),
                                                      os.environ.get("PYTHONPATH", "")]))


def test_a_reader_crash_ends_the_task_with_one_line_and_the_worker_lives_on(
        crashing_reader, tmp_path):
    data = _small_file(tmp_path / "segfault.h5")
    with pytest.raises(ReaderCrashed) as exc:
        train_options(_options(data, tmp_path / "out"))
    message = str(exc.value)
    assert "died of SIGSEGV" in message and str(data) in message
    assert "malformed HDF5 file can crash the HDF5 library" in message
    assert len(message.splitlines()) == 1
    assert not (tmp_path / "out").exists()
    # the same worker process runs the next task
    ok = _small_file(tmp_path / "fine.h5")
    result = train_options(_options(ok, tmp_path / "out"))
    assert Path(result["bundle"]) == tmp_path / "out"
    assert result["summary"]["validation_metrics"]["roc_auc"] > 0.5
    assert result["worker"]["pid"] == os.getpid()


def test_a_user_error_in_the_child_comes_back_as_one_servable_error(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(ServableError, match="not a readable HDF5 file"):
        train_options(_options(bad, tmp_path / "out"))


def test_only_functions_of_the_package_run_in_the_child():
    with pytest.raises(RuntimeError, match="runs functions of servable, not 'os:system'"):
        run_isolated("os:system", {})
