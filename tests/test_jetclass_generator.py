"""Physics, truth and reproducibility of the JetClass-like generator (Pythia 8 + FastJet)."""

import numpy as np
import pytest

from servable.data import events, schema
from servable.data.features import delta_r
from servable.data.jetclass import read_jetclass, read_provenance
from servable.data.jetclass_generator import CLASSES, generate
from tests.cli_helpers import assert_user_error, run_cli

TWO_PRONG = ("Wqq", "Zqq", "Hbb")


@pytest.fixture(scope="module")
def jets(jetclass_file):
    return read_jetclass(jetclass_file)


def jet(jets, name, cls=None):
    values = jets.jet_features[:, jets.jet_feature_names.index(name)]
    return values if cls is None else values[jets.is_class(cls)]


def part(jets, name):
    return jets.group("particles").column(name)


def ratio(jets, num, den, cls):
    return np.median(jet(jets, f"jet_tau{num}", cls) / jet(jets, f"jet_tau{den}", cls))


def test_every_class_has_its_jets_and_the_ten_jetclass_labels(jets):
    assert jets.labels.shape == (4000, 10) and jets.class_names == CLASSES
    assert np.all(jets.labels.sum(0) == 400)


def test_jets_follow_the_jetclass_selection(jets):
    pt, eta = jet(jets, "jet_pt"), jet(jets, "jet_eta")
    assert pt.min() > 500 and pt.max() < 1000 and np.abs(eta).max() < 2
    n = jets.group("particles").filled()
    assert np.all(n == np.minimum(jet(jets, "jet_nparticles"), 128))
    assert jets.group("particles").slots == 128
    ppt = np.hypot(part(jets, "part_px"), part(jets, "part_py"))
    assert np.all(np.diff(ppt, axis=1) <= 0)  # by decreasing pT, padding (0) last


def test_jet_momentum_is_the_sum_of_its_particles_when_none_is_dropped(jets):
    whole = jet(jets, "jet_nparticles") <= 128
    px, py = part(jets, "part_px")[whole].sum(1), part(jets, "part_py")[whole].sum(1)
    np.testing.assert_allclose(np.hypot(px, py), jet(jets, "jet_pt")[whole], rtol=1e-4)


def test_soft_drop_mass_peaks_at_the_resonance_masses(jets):
    median = {c: np.median(jet(jets, "jet_sdmass", c)) for c in CLASSES}
    for higgs in ("Hbb", "Hcc", "Hgg", "H4q"):
        assert 110 < median[higgs] < 132, (higgs, median[higgs])
    assert 72 < median["Wqq"] < 86 and 84 < median["Zqq"] < 97
    assert median["Zqq"] > median["Wqq"] + 5
    assert 160 < median["Tbqq"] < 182
    # a neutrino escapes: the visible mass of Hqql and Tbl jets lies below the resonance's
    assert 60 < median["Hqql"] < median["Hbb"] - 10
    assert 80 < median["Tbl"] < median["Tbqq"] - 30


def test_qcd_soft_drop_mass_falls(jets):
    msd = jet(jets, "jet_sdmass", "QCD")
    assert np.median(msd) < 50
    assert ((msd >= 40) & (msd < 120)).sum() > 1.5 * ((msd >= 120) & (msd < 200)).sum()


def test_tau21_separates_two_prong_jets_from_qcd(jets):
    for c in TWO_PRONG:
        assert ratio(jets, 2, 1, c) < ratio(jets, 2, 1, "QCD") - 0.15, c


def test_tau32_separates_top_jets_from_two_prong_jets(jets):
    for c in TWO_PRONG:
        assert ratio(jets, 3, 2, "Tbqq") < ratio(jets, 3, 2, c) - 0.15, c


def test_four_prong_h4q_jets_have_lower_tau42_than_two_prong_jets(jets):
    for c in TWO_PRONG:
        assert ratio(jets, 4, 2, "H4q") < ratio(jets, 4, 2, c) - 0.07, c


def test_hard_leptons_are_flagged_in_leptonic_classes_far_more_often_than_in_qcd(jets):
    lepton = (part(jets, "part_isElectron") + part(jets, "part_isMuon")) > 0
    hard = (lepton & (np.hypot(part(jets, "part_px"), part(jets, "part_py")) > 20)).any(1)
    qcd = hard[jets.is_class("QCD")].mean()
    for c in ("Hqql", "Tbl"):
        assert hard[jets.is_class(c)].mean() > max(0.85, 8 * qcd), c


EXPECTED = {"Hbb": (25, 2), "Hcc": (25, 2), "Hgg": (25, 2), "H4q": (25, 4), "Hqql": (25, 3),
            "Zqq": (23, 2), "Wqq": (24, 2), "Tbqq": (6, 3), "Tbl": (6, 2)}


def test_every_decay_product_lies_within_the_jet_for_signal_classes(jets):
    x = jets.extras
    for c, (pid, n) in EXPECTED.items():
        s = jets.is_class(c)
        assert np.all(np.abs(x["aux_genpart_pid"][s]) == pid), c
        assert np.all(x["aux_n_decay_products"][s] == n), c
        dr = delta_r(jet(jets, "jet_eta", c)[:, None], jet(jets, "jet_phi", c)[:, None],
                     x["aux_decay_eta"][s], x["aux_decay_phi"][s])
        assert np.all(dr[:, :n] < 0.8) and np.all(x["aux_decay_pdgid"][s][:, n:] == 0), c
    qcd = jets.is_class("QCD")
    assert np.all(x["aux_genpart_pid"][qcd] == 0) and np.all(x["aux_decay_pdgid"][qcd] == 0)


def test_decay_products_are_the_forced_decays(jets):
    pdg = jets.extras["aux_decay_pdgid"]

    def of(c):
        return np.abs(pdg[jets.is_class(c)])

    for c, q in (("Hbb", 5), ("Hcc", 4), ("Hgg", 21)):
        assert np.all(of(c)[:, :2] == q), c
    assert np.all((of("H4q") >= 1) & (of("H4q") <= 5))
    for c, quarks in (("Hqql", 2), ("Tbl", 1)):
        assert np.all((of(c)[:, :quarks] <= 5) & (of(c)[:, :quarks] >= 1)), c
        assert np.all(np.isin(of(c)[:, quarks], (11, 13))), c
    z = pdg[jets.is_class("Zqq")]
    assert np.all(z[:, 0] == -z[:, 1])
    w = of("Wqq")[:, :2]
    assert np.all((w % 2).sum(1) == 1)  # one up-type, one down-type quark
    assert np.all(of("Tbqq")[:, :3] <= 5)


def test_hqql_leptons_come_in_both_charges(jets):
    leptons = jets.extras["aux_decay_pdgid"][jets.is_class("Hqql"), 2]
    share_negative = np.mean(leptons > 0)  # e-, mu- have positive PDG ids
    assert 0.38 < share_negative < 0.62


def test_particles_from_the_decay_products_carry_most_of_a_signal_jet(jets):
    product = jets.extras["part_truth_decay_product"]
    pt = np.hypot(part(jets, "part_px"), part(jets, "part_py"))
    share = (pt * (product >= 0)).sum(1) / pt.sum(1)
    for c, (_, n) in EXPECTED.items():
        s = jets.is_class(c)
        assert np.median(share[s]) > 0.8, c
        assert product[s].max() == n - 1, c
    assert np.all(product[jets.is_class("QCD")] == -1)
    assert np.all(product[part(jets, "part_energy") == 0] == -1)


def test_b_decay_truth_marks_displaced_tracks_of_hbb_jets(jets):
    origin = jets.extras["part_truth_origin"]
    b = schema.TRUTH_ORIGINS.index("b_hadron_decay")
    charged = part(jets, "part_isChargedHadron") > 0
    d0 = np.abs(part(jets, "part_d0val"))
    hbb = jets.is_class("Hbb")[:, None]
    assert np.median(d0[charged & hbb & (origin == b)]) > 5 * np.median(
        d0[charged & hbb & (origin == 0)])
    share = [np.mean(origin[jets.is_class(c)][part(jets, "part_energy")[jets.is_class(c)] > 0]
                     == b) for c in ("Hbb", "QCD")]
    assert share[0] > 5 * share[1]


def test_neutral_particles_have_no_track_and_charged_ones_have_errors(jets):
    filled = part(jets, "part_energy") > 0
    flags = sum(part(jets, f) for f in ("part_isChargedHadron", "part_isNeutralHadron",
                                         "part_isPhoton", "part_isElectron", "part_isMuon"))
    assert np.all(flags[filled] == 1) and np.all(flags[~filled] == 0)
    neutral = (part(jets, "part_isPhoton") + part(jets, "part_isNeutralHadron")) > 0
    charge = part(jets, "part_charge")
    assert np.all(charge[neutral] == 0) and np.all(np.abs(charge[filled & ~neutral]) == 1)
    for name in ("part_d0val", "part_d0err", "part_dzval", "part_dzerr"):
        assert np.all(part(jets, name)[neutral] == 0), name


def test_impact_parameter_errors_are_the_delphes_card_tables(jets):
    """ErrorD0/ErrorDZ of JetClass's card (TrackSmearing's D0/DZResolutionFormula, mm): one
    table value per (|eta|, pT) bin, 0 below its first pT edge (0.1823 GeV)."""
    charged = np.abs(part(jets, "part_charge")) > 0
    px, py, pz = (part(jets, f"part_{c}") for c in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.where(pt > 0, pt, 1))
    d0err, dzerr = part(jets, "part_d0err"), part(jets, "part_dzerr")
    # the card's last pT bin (> 134.713 GeV); the lookup uses MomentumSmearing's log-normal pT
    # (relative width 0.06 (+) 0.0013 pT in the barrel), which moves a few hard tracks down
    hard_barrel = charged & (pt > 200) & (np.abs(eta) < 0.85)
    hard_endcap = charged & (pt > 200) & (np.abs(eta) > 1.45) & (np.abs(eta) < 2.45)
    assert hard_barrel.sum() > 100 and hard_endcap.sum() > 10
    for sel, d0_mm, dz_mm in ((hard_barrel, 0.0110, 0.0318), (hard_endcap, 0.0137, 0.0850)):
        assert np.mean(np.isclose(d0err[sel], d0_mm, rtol=1e-6, atol=0)) > 0.8
        assert np.mean(np.isclose(dzerr[sel], dz_mm, rtol=1e-6, atol=0)) > 0.8
    # below the first pT edge the formulas give 0 (with 6% pT smearing, 0.13 GeV never
    # reaches 0.1823)
    soft = charged & (pt < 0.13) & (np.abs(eta) < 0.45)
    assert soft.sum() > 0 and np.all(d0err[soft] == 0) and np.all(dzerr[soft] == 0)
    # a step function: at most 3 eta bins x 34 pT bins values (and 0)
    assert len(np.unique(d0err[charged])) <= 3 * 34 + 1
    assert np.all(d0err[charged] <= 0.6970 + 1e-6) and np.all(dzerr[charged] <= 2.1717 + 1e-6)


def test_long_lived_hadrons_decay_into_displaced_tracks(jets):
    """Pythia's default decays (MG5's card): no K0S or Lambda reaches the calorimeter, and
    their charged daughters are tracks with millimetre impact parameters."""
    pdgid = np.abs(jets.extras["part_truth_pdgid"])
    assert not np.isin(pdgid, (310, 3122)).any()
    origin = jets.extras["part_truth_origin"]
    charged = np.abs(part(jets, "part_charge")) > 0
    far = charged & (np.abs(part(jets, "part_d0val")) > 1.0)
    other = schema.TRUTH_ORIGINS.index("other_secondary")
    assert far.sum() > 1000 and np.mean(origin[far] == other) > 0.5
    # primary tracks start at the origin: d0 / d0err is a standard normal, whose |.| has
    # median 0.674
    primary = charged & (origin == schema.TRUTH_ORIGINS.index("primary"))
    err = part(jets, "part_d0err")[primary]
    pull = np.abs(part(jets, "part_d0val")[primary][err > 0]) / err[err > 0]
    assert 0.64 < np.median(pull) < 0.71


def test_provenance_records_seeds_settings_detector_and_timings(jetclass_file):
    prov = read_provenance(jetclass_file)
    assert prov["seed"] == 1 and prov["workers"] == 2 and prov["classes"] == list(CLASSES)
    assert len(prov["pythia_seeds"]) == 2 * 10 + 2  # Hqql runs its conjugate too
    assert len(set(prov["pythia_seeds"].values())) == len(prov["pythia_seeds"])
    detector = prov["settings"]["detector"]
    assert detector["ecal_stochastic"] == 0.11 and detector["bz_tesla"] == 3.8
    assert "ParticleDecays:limitTau0 = off" in prov["pythia_settings"]["QCD"]
    assert "25:onIfMatch = 5 -5" in prov["pythia_settings"]["Hbb"]
    assert "24:onNegIfAny = 1 2 3 4 5" in prov["pythia_settings_conjugate"]["Hqql"]
    assert all(prov["per_class"][c]["jets_per_second_per_core"] > 0 for c in CLASSES)


def test_descent_follows_single_mothers_string_ranges_and_mother_pairs():
    # 0, 1: roots; 2 <- 0; 3 <- 2; 4: a hadron of the string 1..3; 5 <- 4; 6: unrelated;
    # 7: two separate mothers 6 and 2 (Pythia writes mother1 > mother2 > 0)
    t = {"id": np.ones(8, int),
         "mother": np.array([-1, -1, 0, 2, 1, 4, -1, 6]),
         "mother2": np.array([-1, -1, -1, 2, 3, -1, -1, 2])}
    bits = events.descendant_bits(t, np.array([0, 1]), np.array([1, 2]))
    assert bits.tolist() == [1, 2, 1, 1, 3, 3, 0, 1]


def test_same_seed_gives_identical_arrays_and_another_seed_differs():
    a, _ = generate(("Hbb", "QCD"), 6, seed=11, workers=2, progress=False)
    b, _ = generate(("Hbb", "QCD"), 6, seed=11, workers=2, progress=False)
    c, _ = generate(("Hbb", "QCD"), 6, seed=12, workers=2, progress=False)
    for name in ("particles", "jet_features"):
        np.testing.assert_array_equal(a.group(name).values, b.group(name).values)
    np.testing.assert_array_equal(a.labels, b.labels)
    for key in a.extras:
        np.testing.assert_array_equal(a.extras[key], b.extras[key])
    assert not np.array_equal(a.jet_features, c.jet_features)


def test_cli_writes_the_chosen_classes_with_all_ten_labels(tmp_path):
    out = tmp_path / "jc.root"
    r = run_cli("data", "generate", "--dataset", "jetclass", "--classes", "Wqq,QCD",
                "--jets-per-class", 3, "--seed", 2, "--quiet", "-o", out)
    assert r.returncode == 0, r.stderr
    jets = read_jetclass(out)
    assert jets.labels.shape == (6, 10)
    assert jets.labels.sum(0).tolist() == [3, 0, 0, 0, 0, 0, 0, 3, 0, 0]
    assert "Wqq" in r.stdout and "jets/s/core" in r.stdout


@pytest.mark.parametrize("args, fragment", [
    (("--classes", "Hbb,Higgs"), "unknown class Higgs"),
    (("--jets-per-class", 0), "--jets-per-class must be at least 1"),
])
def test_cli_refuses_bad_classes_and_counts(tmp_path, args, fragment):
    r = run_cli("data", "generate", "--dataset", "jetclass", *args, "-o", tmp_path / "x.root")
    assert_user_error(r, fragment)
    assert not (tmp_path / "x.root").exists()


def test_cli_refuses_an_hdf5_output_for_jetclass(tmp_path):
    r = run_cli("data", "generate", "--dataset", "jetclass", "-o", tmp_path / "x.h5")
    assert_user_error(r, "JetClass files are ROOT files")


def test_cli_refuses_an_existing_output_without_force(tmp_path):
    out = tmp_path / "x.root"
    out.write_bytes(b"keep")
    r = run_cli("data", "generate", "--dataset", "jetclass", "--jets-per-class", 1, "-o", out)
    assert_user_error(r, "exists", "--force")
    assert out.read_bytes() == b"keep"


def test_compare_reads_jetclass_root_files(jetclass_file, tmp_path):
    """`servable data compare` takes JetClass ROOT files: a file against itself has every
    distance 0, the impact parameters among the particle features."""
    import json

    out = tmp_path / "cmp"
    r = run_cli("data", "compare", jetclass_file, jetclass_file, "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["feature"]: row for row in json.loads(r.stdout)}
    for name in ("part_d0val", "part_d0err", "part_dzval", "part_dzerr", "jet_sdmass"):
        assert rows[name]["n_a"] == rows[name]["n_b"] > 1000 and rows[name]["ks"] == 0, name
    assert (out / "compare_particles.png").stat().st_size > 1000
