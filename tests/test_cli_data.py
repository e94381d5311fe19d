import json

import h5py
import numpy as np

from tests.cli_helpers import assert_user_error, run_cli


def test_generate_then_inspect_prints_the_summary(tmp_path):
    out = tmp_path / "small.h5"
    r = run_cli("data", "generate", "--signal", 20, "--background", 20, "--seed", 5,
                "--workers", 2, "--quiet", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "jets/s" in r.stdout and "Hbb:" in r.stdout
    r = run_cli("data", "inspect", out, "--json")
    summary = json.loads(r.stdout)
    assert summary["classes"]["Hbb"]["jets"] == 20 and summary["classes"]["QCD"]["jets"] == 20
    assert "median" in summary["classes"]["Hbb"]["sdmass_quantiles_gev"]


def test_generate_refuses_to_overwrite_and_keeps_the_file(tmp_path):
    out = tmp_path / "exists.h5"
    out.write_bytes(b"keep me")
    r = run_cli("data", "generate", "--signal", 2, "--background", 2, "-o", out)
    assert_user_error(r, "exists", "--force")
    assert out.read_bytes() == b"keep me"


def test_inspect_a_truncated_file_exits_2_with_one_line(train_file, tmp_path):
    bad = tmp_path / "cut.h5"
    bad.write_bytes(train_file.read_bytes()[:20000])
    assert_user_error(run_cli("data", "inspect", bad), "cut.h5", "truncated")


def test_inspect_a_file_without_datasets_exits_2(tmp_path):
    bad = tmp_path / "empty.h5"
    with h5py.File(bad, "w") as f:
        f.create_group("training_subgroup")
    assert_user_error(run_cli("data", "inspect", bad), "missing dataset")


def test_inspect_wrong_shapes_exits_2(tmp_path):
    bad = tmp_path / "shape.h5"
    with h5py.File(bad, "w") as f:
        f["testing_subgroup/testing_2"] = np.zeros((3, 29, 60), np.float32)
        f["testing_subgroup/testing_3"] = np.zeros((3, 14, 5), np.float32)
    assert_user_error(run_cli("data", "inspect", bad), "(3, 29, 60)", "expected (n, 30, 60)")


def test_inspect_nan_values_exits_2(train_file, tmp_path):
    bad = tmp_path / "nan.h5"
    bad.write_bytes(train_file.read_bytes())
    with h5py.File(bad, "r+") as f:
        ds = f["training_subgroup/training_2"]
        row = ds[4]
        row[3, 0] = np.nan
        ds[4] = row
    assert_user_error(run_cli("data", "inspect", bad), "NaN/Inf", "jet 4")


def test_missing_file_exits_2(tmp_path):
    assert_user_error(run_cli("data", "inspect", tmp_path / "nope.h5"), "no such file")


def test_inspect_prints_feature_ranges_and_flags_values_outside_the_cms_range(train_file,
                                                                             tmp_path):
    r = run_cli("data", "inspect", train_file)
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if "track_quality" in line)
    assert "{1, 5}" in row and "outside" not in row
    assert "0 feature(s) with values outside the documented CMS range" in r.stdout
    bad = tmp_path / "quality2.h5"
    bad.write_bytes(train_file.read_bytes())
    with h5py.File(bad, "r+") as f:
        ds = f["training_subgroup/training_2"]
        row = ds[7]
        row[13, 0] = 2.0  # the old enum value, not a CMS bit mask
        row[5, 0] = 0.3  # drminsv above its bound 0
        ds[7] = row
    r = run_cli("data", "inspect", bad, "--json")
    assert r.returncode == 0, r.stderr
    outside = {f["feature"]: f["outside"] for f in json.loads(r.stdout)["features"]}
    assert outside["track_quality"] == 1 and outside["track_drminsv"] == 1
    assert outside["track_dxy"] == 0


def test_compare_draws_both_files_and_measures_distances(train_file, tmp_path):
    from servable.data.h5io import read_jets, write_jets

    jets = read_jets(train_file)[:600]
    base = write_jets(tmp_path / "base.h5", jets)
    shifted = write_jets(tmp_path / "shifted.h5", jets)
    with h5py.File(shifted, "r+") as f:
        ds = f["training_subgroup/training_2"]
        data = ds[...]
        data[:, 0, :] *= np.where(data[:, 0, :] != 0, 2.0, 1.0)  # track_ptrel doubled
        ds[...] = data
    out = tmp_path / "figs"
    r = run_cli("data", "compare", base, shifted, "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    rows = {x["feature"]: x for x in json.loads(r.stdout)}
    assert rows["track_ptrel"]["ks"] > 0.2 and rows["track_ptrel"]["wasserstein"] > 0.005
    assert rows["track_erel"]["ks"] == 0 and rows["sv_mass"]["wasserstein"] == 0
    for group in ("tracks", "vertices", "jet_features", "spectators"):
        for suffix in ("png", "pdf"):
            assert (out / f"compare_{group}.{suffix}").stat().st_size > 1000


def test_compare_a_missing_file_exits_2(train_file, tmp_path):
    assert_user_error(run_cli("data", "compare", train_file, tmp_path / "nope.h5", "-o",
                              tmp_path / "figs"), "no such file")


def test_generate_refuses_a_negative_pileup(tmp_path):
    assert_user_error(run_cli("data", "generate", "--pileup", -1, "-o", tmp_path / "x.h5"),
                      "--pileup")
