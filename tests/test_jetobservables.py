"""The jet observables computed from JetClass particles (the BDT's and the MLP's jet inputs),
checked against values worked out by hand for two small jets."""

import numpy as np
import pytest

from servable.data import jetobservables, particles, schema
from servable.data.jets import InvalidJetsError


def _two_jets():
    """Jet 0: a charged hadron (pT 60, dR 0.02, |d0|/sigma 5), a photon (pT 30, dR 0.15) and
    a muon (pT 10, dR 0.5, |d0|/sigma 1); taus 0.5, 0.2, 0, 0. Jet 1: one neutral hadron
    (pT 50, dR 0.07), taus all 0. Slot 3 of jet 0 and slots 2-3 of jet 1 are padding."""
    raw = {name: np.zeros((2, 3)) for name in particles.RAW}
    rows = {  # (jet, slot): px, py, pz, E, deta, dphi, d0val, d0err, charge, flag
        (0, 0): (60, 0, 0, 60, 0.02, 0.0, 0.5, 0.1, 1, "part_isChargedHadron"),
        (0, 1): (0, 30, 0, 30, 0.0, 0.15, 0, 0, 0, "part_isPhoton"),
        (0, 2): (-10, 0, 0, 10, 0.3, 0.4, -0.1, 0.1, -1, "part_isMuon"),
        (1, 0): (50, 0, 0, 50, 0.07, 0.0, 0, 0, 0, "part_isNeutralHadron"),
    }
    keys = ("part_px", "part_py", "part_pz", "part_energy", "part_deta", "part_dphi",
            "part_d0val", "part_d0err", "part_charge")
    for (jet, slot), (*values, flag) in rows.items():
        for key, value in zip(keys, values, strict=True):
            raw[key][jet, slot] = value
        raw[flag][jet, slot] = 1.0
    jet = {"jet_pt": [100, 50], "jet_eta": [0, 0], "jet_phi": [0, 0], "jet_energy": [100, 50],
           "jet_nparticles": [3, 1], "jet_sdmass": [80, 0], "jet_tau1": [0.5, 0],
           "jet_tau2": [0.2, 0], "jet_tau3": [0, 0], "jet_tau4": [0, 0]}
    return particles.jets_from_arrays({**raw, **{k: np.array(v, float) for k, v in jet.items()}})


@pytest.fixture(scope="module")
def observed():
    jets = _two_jets()
    return {name: jets.jet_features[:, jets.jet_feature_names.index(name)]
            for name in jetobservables.OBSERVABLES}


EXPECTED = {  # jet 0, jet 1, by hand
    "jet_tau21": (0.4, 1.0), "jet_tau32": (0.0, 1.0), "jet_tau43": (1.0, 1.0),
    "jet_mass": (np.sqrt(100 ** 2 - 50 ** 2 - 30 ** 2), 0.0),
    "jet_n_charged": (2, 0), "jet_n_neutral_hadrons": (0, 1), "jet_n_photons": (1, 0),
    "jet_n_leptons": (1, 0),
    "jet_ptfrac_ring1": (0.6, 0.0), "jet_ptfrac_ring2": (0.0, 1.0), "jet_ptfrac_ring3": (0.3, 0.0),
    "jet_ptfrac_ring4": (0.0, 0.0), "jet_ptfrac_ring5": (0.1, 0.0),
    "jet_girth": ((60 * 0.02 + 30 * 0.15 + 10 * 0.5) / 100, 0.07),
    "jet_ptd": (np.sqrt(60 ** 2 + 30 ** 2 + 10 ** 2) / 100, 1.0),
    "jet_lead_ptfrac": (0.6, 1.0), "jet_charged_ptfrac": (0.7, 0.0),
    "jet_lepton_ptfrac": (0.1, 0.0), "jet_n_displaced": (1, 0), "jet_max_d0sig": (5.0, 0.0),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_observable_is_what_its_definition_gives_by_hand(observed, name):
    np.testing.assert_allclose(observed[name], EXPECTED[name], rtol=1e-5, atol=1e-6)


def test_every_observable_has_a_schema_entry_with_unit_and_meaning():
    assert set(EXPECTED) == set(jetobservables.OBSERVABLES)
    for name in jetobservables.OBSERVABLES:
        entry = schema.lookup(name)
        assert entry.meaning and entry.unit == ("GeV" if name == "jet_mass" else "")


def test_deriving_twice_changes_nothing():
    jets = _two_jets()
    again = jetobservables.derive(jets)
    assert again.jet_feature_names == jets.jet_feature_names
    np.testing.assert_array_equal(again.jet_features, jets.jet_features)


def test_jets_without_the_particle_channels_are_refused_naming_them():
    jets = _two_jets()
    part, jet = jets.group("particles"), jets.group("jet_features")
    names = list(part.features)
    keep = [i for i, n in enumerate(names) if n != "part_isMuon"]
    from servable.data.jets import Jets

    cut = Jets({"particles": (part.values[:, keep], [names[i] for i in keep]),
                "jet_features": (jet.values[:, :10], jet.features[:10])}, jets.labels,
               class_names=jets.class_names)
    with pytest.raises(InvalidJetsError, match="missing part_isMuon"):
        jetobservables.derive(cut)
