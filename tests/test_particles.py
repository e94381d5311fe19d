"""The JetClass particle features against the oracle of the official checkpoints' fixture:
features computed by weaver-core from the raw branches in `pseudo_jets_raw.npz`."""

from pathlib import Path

import numpy as np
import pytest
import torch

from servable.data import particles
from servable.data.jets import InvalidJetsError
from servable.models.preprocessing import Standardize

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "jetclass-particlenet"


@pytest.fixture(scope="module")
def raw():
    data = dict(np.load(FIXTURES / "pseudo_jets_raw.npz"))
    n = len(data["jet_pt"])
    # the fixture holds the particle arrays and jet pT/energy/eta; the other jet observables
    # play no part in the particle features
    data["jet_nparticles"] = data["n_particles"]
    for name in ("jet_phi", "jet_sdmass", "jet_tau1", "jet_tau2", "jet_tau3", "jet_tau4"):
        data[name] = np.zeros(n)
    return data


@pytest.mark.parametrize("feature_set", ["kin", "kinpid", "full"])
def test_standardised_features_reproduce_weaver_core(raw, feature_set):
    reference = np.load(FIXTURES / f"ParticleNet_{feature_set}_reference.npz")
    jets = particles.jets_from_arrays(raw)
    names = particles.FEATURE_SETS[feature_set]
    assert len(names) == reference["features"].shape[1]
    part = jets.group("particles")
    selected = part.values[:, [part.features.index(n) for n in names], :]
    standardised = Standardize(particles.preprocessing(names), slotted=True)(
        torch.from_numpy(selected)).numpy()
    np.testing.assert_allclose(standardised, reference["features"], atol=1e-5, rtol=0)
    # the points are (deta, dphi), the mask the filled slots
    points = part.values[:, [part.features.index(n) for n in particles.POINTS], :]
    np.testing.assert_array_equal(points, reference["points"])
    assert (part.filled() == reference["n_particles"]).all()
    np.testing.assert_array_equal(part.filled(), reference["mask"][:, 0].sum(1))


def test_padding_stays_zero_and_clipping_applies(raw):
    jets = particles.jets_from_arrays(raw)
    pad = ~(jets.group("particles").values != 0).any(1)  # slots with every channel zero
    assert pad.sum() == (128 * len(raw["jet_pt"]) - raw["n_particles"].sum())
    spec = particles.preprocessing(("part_pt_log", "part_d0err", "part_deta"))
    x = torch.tensor([[[100.0], [3.0], [0.4]]])  # ln 100 = 4.6 -> (4.6 - 1.7) * 0.7 = 2.03
    z = Standardize(spec, slotted=True)(torch.log(x) * torch.tensor([[[1.0], [0.0], [0.0]]])
                                        + x * torch.tensor([[[0.0], [1.0], [1.0]]]))
    np.testing.assert_allclose(z[0, :, 0].numpy(), [(np.log(100) - 1.7) * 0.7, 1.0, 0.4],
                               rtol=1e-6)


def test_missing_raw_arrays_are_named(raw):
    partial = {k: v for k, v in raw.items() if k != "part_energy"}
    with pytest.raises(InvalidJetsError, match="missing JetClass arrays part_energy"):
        particles.jets_from_arrays(partial)
