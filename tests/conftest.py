"""Shared fixtures: real generated jets (Pythia 8 + FastJet; CMS and JetClass layouts), cached
by generator source hash.

The cache lives in pytest's cache directory and its key is the hash of the data layer's code, so
a changed generator always regenerates; a fresh clone (CI) generates everything once.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from servable.data.generator import generate
from servable.data.h5io import write_jets

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PUBLISHED = FIXTURES / "published-in"


@pytest.fixture(scope="session", autouse=True)
def fused_kernel_built():
    """The IN's fused CPU kernel compiled once, before any test runs a command: on a machine
    without torch's extension cache the first build takes ~20 s and says so on stderr, which
    a test of a command's one-line error would otherwise read. Whether it built is asserted
    by tests/test_fused_in.py."""
    from servable.models import fused

    fused.kernel()


def _generator_hash() -> str:
    """Digest of the whole data layer (generator, detector model, features, schema, I/O)."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "servable" / "data").glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _sample(request, tmp_path_factory, name, n_sig, n_bkg, seed, split):
    cache = Path(request.config.cache.mkdir("servable-jets")) / _generator_hash()
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / f"{name}.h5"
    if not cached.exists():
        jets, prov = generate(n_sig, n_bkg, seed=seed, workers=2, progress=False)
        write_jets(cached, jets, split=split, attrs={"provenance": prov})
    target = tmp_path_factory.mktemp(name) / f"{name}.h5"
    shutil.copy(cached, target)
    return target


@pytest.fixture(scope="session")
def train_file(request, tmp_path_factory) -> Path:
    """1500 H->bb + 1500 QCD jets, seed 1 (training layout)."""
    return _sample(request, tmp_path_factory, "train", 1500, 1500, 1, "training")


@pytest.fixture(scope="session")
def test_file(request, tmp_path_factory) -> Path:
    """An independent 1000 + 1000 jets, seed 2 (testing layout)."""
    return _sample(request, tmp_path_factory, "test", 1000, 1000, 2, "testing")


@pytest.fixture(scope="session")
def jetclass_file(request, tmp_path_factory) -> Path:
    """400 JetClass-like jets of each of the ten classes, seed 1, 2 workers (ROOT, JetClass
    layout), cached like the CMS samples."""
    from servable.data.jetclass import write_jetclass
    from servable.data.jetclass_generator import CLASSES
    from servable.data.jetclass_generator import generate as generate_jetclass

    cache = Path(request.config.cache.mkdir("servable-jets")) / _generator_hash()
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / "jetclass.root"
    if not cached.exists():
        jets, prov = generate_jetclass(CLASSES, 400, seed=1, workers=2, progress=False)
        write_jetclass(cached, jets, prov)
    target = tmp_path_factory.mktemp("jetclass") / "jetclass.root"
    shutil.copy(cached, target)
    return target


@pytest.fixture(scope="session")
def published_dir() -> Path:
    if not PUBLISHED.exists():
        pytest.fail(f"the published IN fixtures are missing: expected {PUBLISHED}")
    return PUBLISHED


KINDS = ("in", "mlp", "bdt", "part")


@pytest.fixture(scope="session")
def trained(train_file, tmp_path_factory) -> dict[str, Path]:
    """One bundle per model kind: `servable train` for 4 epochs, seed 1, on the train sample."""
    from tests.cli_helpers import run_cli

    root = tmp_path_factory.mktemp("trained")
    out = {}
    for kind in KINDS:
        target = root / kind
        r = run_cli("train", "--model", kind, "--data", train_file, "--epochs", 4, "--seed", 1,
                    "--quiet", "-o", target, timeout=900)
        assert r.returncode == 0, r.stderr
        out[kind] = target
    return out


# what the ablated bundle leaves out, and its sizes (the paper's smallest Table 10 model)
ABLATED_DROP = ("track_quality", "sv_ptrel", "sv_erel", "sv_phirel")
ABLATED_SIZES = {"hidden": 16, "De": 8, "Do": 8}


@pytest.fixture(scope="session")
def ablated_bundle(train_file, tmp_path_factory) -> Path:
    """An IN trained for 1 epoch without ABLATED_DROP at ABLATED_SIZES, through
    `servable train --drop-features ... --hidden 16 --De 8 --Do 8`."""
    from tests.cli_helpers import run_cli

    target = tmp_path_factory.mktemp("ablated") / "in-ablated"
    sizes = [x for key, value in ABLATED_SIZES.items() for x in (f"--{key}", value)]
    r = run_cli("train", "--model", "in", "--data", train_file, "--epochs", 1, "--quiet",
                "--drop-features", ",".join(ABLATED_DROP), *sizes, "-o", target, timeout=900)
    assert r.returncode == 0, r.stderr
    return target


@pytest.fixture(scope="session")
def quick_reproduction(train_file, test_file, tmp_path_factory):
    """`servable reproduce --quick` on the shared samples (no generation): its output folder
    and the command's result (the run's wall time is in results.json)."""
    from tests.cli_helpers import run_cli

    out = tmp_path_factory.mktemp("reproduction") / "quick"
    r = run_cli("reproduce", "--quick", "--out", out, "--train-data", train_file,
                "--test-data", test_file, "--quiet", timeout=900)
    assert r.returncode == 0, r.stderr
    return out, r


@pytest.fixture(scope="session")
def published_bundle(published_dir, tmp_path_factory) -> Path:
    """The published baseline IN imported into a bundle (no training needed)."""
    from servable.bundle.checkpoint import import_checkpoint

    out = tmp_path_factory.mktemp("published") / "hbb-in-baseline"
    return import_checkpoint(published_dir / "gnn_baseline_best.pth",
                             published_dir / "gnn_baseline_model_metadata.json", out)


@pytest.fixture(scope="session")
def random_bundle(tmp_path_factory) -> Path:
    """An MLP bundle with random weights (seed 0): for what does not depend on training
    (sealing, retrieval, publishing)."""
    import torch

    from servable.bundle.bundle import save_bundle
    from servable.models.taggers import MLPTagger

    torch.manual_seed(0)
    return save_bundle(MLPTagger({"kind": "mlp"}), tmp_path_factory.mktemp("random") / "mlp",
                       name="mlp-random")


@pytest.fixture(scope="session")
def ring_files(tmp_path_factory) -> dict[str, Path]:
    """Ring jets (tests/ring_jets.py: ten separable classes in the JetClass ROOT layout): 60
    per class for training as ROOT (`root`) and as its JetClass-layout HDF5 copy (`h5`), and
    an independent 30 per class (`test`, ROOT)."""
    from servable.data.io import read_jets
    from tests.ring_jets import write_ring_root

    root = tmp_path_factory.mktemp("rings")
    train = write_ring_root(root / "train.root", 60, seed=1)
    return {"root": train, "h5": write_jets(root / "train.h5", read_jets(train)),
            "test": write_ring_root(root / "test.root", 30, seed=2)}


# how each kind trains on ring jets: from which copy, and small networks so that two epochs
# stay cheap; the BDT and ParT read the ROOT file, the MLP and ParticleNet its HDF5 copy
RING_TRAINING = {
    "bdt": ("root", ["--param", "n_estimators=60"]),
    "mlp": ("h5", ["--lr", "3e-3"]),
    "part": ("root", ["--lr", "5e-3", "--param", "embed_dims=[64,64]", "--param",
                      "pair_embed_dims=[16,16]", "--param", "num_layers=1", "--param",
                      "num_cls_layers=1", "--param", "dropout=0"]),
    "particlenet": ("h5", ["--lr", "5e-3", "--feature-set", "kin", "--param", "k=8",
                           "--param", "channels=[32,64]", "--param", "layers_per_block=2",
                           "--param", "fc_width=64"]),
}


@pytest.fixture(scope="session")
def ring_trained(ring_files, tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """One 10-class bundle per kind (bdt, mlp, part, particlenet): `servable train` for 2
    epochs (batch 16, seed 1) on ring jets; kind -> (bundle, what the command printed)."""
    from tests.cli_helpers import run_cli

    root = tmp_path_factory.mktemp("ring-trained")
    out = {}
    for kind, (source, args) in RING_TRAINING.items():
        r = run_cli("train", "--model", kind, "--data", ring_files[source], "--epochs", 2,
                    "--batch-size", 16, "--seed", 1, "--quiet", *args, "-o", root / kind,
                    timeout=900)
        assert r.returncode == 0, r.stderr
        out[kind] = (root / kind, r.stdout)
    return out
