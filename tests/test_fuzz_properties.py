"""Property-based fuzzing (hypothesis): inputs generated around the valid ones (jet arrays,
HDF5 files, manifests, metadata records, CLI arguments) and the contract asserted for each:
a `ServableError` with a one-line message, or a valid result; never another exception;
inputs unchanged.

CI runs the derandomized `servable-ci` profile (fixed examples, no example database; the
whole file in well under 90 s). `HYPOTHESIS_PROFILE=servable-fuzz` runs many more examples
with random seeds, for a longer hunt.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fuzz.contract import RECORDS, check_jets, obey, read_everything, small_jets, unchanged
from servable.data import schema
from servable.data.h5io import write_jets
from servable.data.jets import Jets
from servable.models.spec import InputGroup, InputSpec

# CI: fixed examples and no shrinking (a failure is reported as generated; rerun it with
# the servable-fuzz profile to shrink it)
settings.register_profile("servable-ci", max_examples=25, derandomize=True, database=None,
                          deadline=None, print_blob=True,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate],
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("servable-fuzz", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "servable-ci"))
# the cheap properties (no model, no subprocess) get more examples than the profile's
CHEAP = settings(max_examples=4 * settings().max_examples)

FULL_SPEC = InputSpec((InputGroup("tracks", schema.TRACK_NAMES, schema.TRACK_SLOTS),
                       InputGroup("vertices", schema.VERTEX_NAMES, schema.VERTEX_SLOTS),
                       InputGroup("jet_features", schema.JET_NAMES)))
SPECIALS = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e38, -1e-45, 2.0, 0.5, -1.0])
DTYPES = st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.int8, np.bool_])


def near(shape: tuple[int, ...]) -> st.SearchStrategy[tuple[int, ...]]:
    """The shape itself, or one off by one axis (a slot more or less, a lost or extra axis)."""
    def off_by_one(i_delta):
        i, delta = i_delta
        s = list(shape)
        s[i] = max(0, s[i] + delta)
        return tuple(s)

    return st.one_of(
        st.just(shape),
        st.tuples(st.integers(0, len(shape) - 1), st.sampled_from([-1, 1])).map(off_by_one),
        st.just(shape[:-1]), st.just((*shape, 1)))


def poisoned(array: np.ndarray, data) -> np.ndarray:
    """`array` with a few entries set to special values."""
    out = array.copy()
    if out.size and np.issubdtype(out.dtype, np.floating):
        for _ in range(data.draw(st.integers(0, 2))):
            out.flat[data.draw(st.integers(0, out.size - 1))] = data.draw(SPECIALS)
    return out


# -- jet arrays -------------------------------------------------------------------------


@CHEAP
@given(data=st.data())
def test_jet_arrays_around_the_valid_ones_are_validated_or_refused(data):
    n = data.draw(st.integers(0, 3))
    base = small_jets(max(n, 1), seed=data.draw(st.integers(0, 9)))[:n]
    arrays = {}
    for name in ("tracks", "vertices", "jet_features", "labels", "spectators"):
        valid = getattr(base, name)
        choice = data.draw(st.sampled_from(["valid", "absent", "poisoned", "reshaped",
                                            "retyped", "labels"]))
        if choice == "absent" and name not in ("tracks", "vertices"):
            arrays[name] = None
        elif choice == "poisoned":
            arrays[name] = poisoned(valid, data)
        elif choice == "reshaped":
            arrays[name] = data.draw(hnp.arrays(np.float32, near(valid.shape), elements=st.floats(
                -2, 2, width=32)))
        elif choice == "retyped":
            arrays[name] = valid.astype(data.draw(DTYPES))
        elif choice == "labels" and name == "labels" and n:
            arrays[name] = data.draw(hnp.arrays(np.float32, (n, 2), elements=st.sampled_from(
                [0.0, 1.0, 2.0, -1.0, 0.5])))
        else:
            arrays[name] = valid
    copies = {k: None if v is None else v.copy() for k, v in arrays.items()}
    jets = obey(lambda: Jets.cms(**arrays))
    for k, v in arrays.items():  # the caller's arrays are never changed
        assert (v is None and copies[k] is None) or np.array_equal(v, copies[k], equal_nan=True)
    if jets is not None:
        check_jets(jets)
        if jets.labels is not None:
            assert set(np.unique(jets.labels)) <= {0.0, 1.0}
            assert (jets.labels.sum(1) == 1).all()


@CHEAP
@given(data=st.data())
def test_jets_changed_after_construction_are_checked_at_the_point_of_use(data):
    jets = small_jets(3)
    name = data.draw(st.sampled_from(["tracks", "vertices", "jet_features"]))
    valid = getattr(jets, name)
    change = data.draw(st.sampled_from(["poison", "reshape", "retype", "drop_jet", "none"]))
    if change == "poison":
        valid[...] = poisoned(valid, data)  # in place, as a careless caller would
    elif change == "reshape":
        setattr(jets, name, data.draw(hnp.arrays(np.float32, near(valid.shape))))
    elif change == "retype":
        setattr(jets, name, valid.astype(data.draw(DTYPES)))
    elif change == "drop_jet":
        setattr(jets, name, valid[1:])
    inputs = obey(lambda: FULL_SPEC.select(jets))
    if inputs is not None:
        assert {len(a) for a in inputs.values()} == {3}
        for group in FULL_SPEC:
            a = inputs[group.name]
            assert a.shape[1:] == tuple(group.shape[1:])
            assert np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all()


# -- HDF5 files -------------------------------------------------------------------------

DATASETS = ("training_subgroup/training_0", "training_subgroup/training_2",
            "training_subgroup/training_3", "target_subgroup/target",
            "spectator_subgroup/spectators", "generator_truth/n_b_hadrons",
            "generator_truth/track_origin", "generator_truth/b_hadron_pt_eta_phi")


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory) -> bytes:
    return write_jets(tmp_path_factory.mktemp("h5") / "valid.h5", small_jets(3)).read_bytes()


def _mutate_structure(path: Path, data) -> None:
    with h5py.File(path, "a") as f:
        for _ in range(data.draw(st.integers(1, 3))):
            key = data.draw(st.sampled_from(DATASETS))
            what = data.draw(st.sampled_from(["delete", "reshape", "retype", "poison", "group",
                                              "extra", "attribute", "length"]))
            old = f[key][()] if key in f and isinstance(f[key], h5py.Dataset) else None
            if what == "extra":
                parent = data.draw(st.sampled_from(["generator_truth", "target_subgroup", ""]))
                f[f"{parent}/x{data.draw(st.integers(0, 9))}".lstrip("/")] = np.zeros(3)
                continue
            if what == "attribute" and old is not None:
                f[key].attrs["feature_names"] = data.draw(st.sampled_from(
                    [7, "tracks", np.array([b"\xff\xfe"]),
                     np.array(["a", "b"], dtype=h5py.string_dtype())]))
                continue
            if key in f:
                del f[key]
            if what == "delete" or old is None:
                continue
            if what == "group":
                f.create_group(key)
            elif what == "reshape":
                f[key] = np.zeros(data.draw(near(old.shape)), old.dtype)
            elif what == "retype":
                f[key] = old.astype(data.draw(st.sampled_from(
                    [np.float64, np.int16, np.uint8, "S4", np.complex64])))
            elif what == "poison":
                f[key] = poisoned(old.astype(np.float32), data)
            elif what == "length":
                f[key] = old[:data.draw(st.integers(0, len(old) - 1))] if len(old) else old


@CHEAP
@given(data=st.data())
def test_hdf5_files_with_changed_datasets_are_read_or_refused_and_left_unchanged(
        valid_file, tmp_path, data):
    path = tmp_path / f"mutated-{data.draw(st.integers(0, 10**9))}.h5"
    path.write_bytes(valid_file)
    _mutate_structure(path, data)
    with unchanged(path):
        read_everything(path)


@CHEAP
@given(data=st.data())
def test_hdf5_bytes_truncated_or_flipped_are_read_or_refused_and_left_unchanged(
        valid_file, tmp_path, data):
    raw = bytearray(valid_file)
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    for _ in range(data.draw(st.integers(0, 4))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / f"bytes-{data.draw(st.integers(0, 10**9))}.h5"
    path.write_bytes(bytes(raw))
    with unchanged(path):
        read_everything(path)


# -- manifests and metadata records ------------------------------------------------------

JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                 st.lists(st.integers(-5, 5), max_size=3),
                 st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


def _paths(doc, prefix=()):
    """Every key path into nested dicts and lists."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) \
        if isinstance(doc, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def mutated(doc: dict, data) -> dict:
    """`doc` with one to three values deleted or replaced by junk (wrong types, impossible
    values, absent keys)."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JUNK)
    return doc


@pytest.fixture(scope="module")
def bundle_copy(published_bundle, tmp_path_factory) -> Path:
    from fuzz.contract import blank_documents

    bundle = Path(shutil.copytree(published_bundle, tmp_path_factory.mktemp("b") / "bundle"))
    blank_documents(bundle)
    return bundle


@given(data=st.data(), sealed_anew=st.booleans())
def test_manifests_with_wrong_types_and_missing_keys_are_loaded_or_refused(bundle_copy, data,
                                                                         sealed_anew):
    """Changed manifests, as they are (the seal refuses them) or sealed anew as a forger
    would (`fuzz.contract.reseal`: validation and use must refuse them)."""
    from fuzz.contract import reseal
    from servable.bundle.bundle import open_bundle
    from servable.bundle.manifest import MANIFEST

    original = (bundle_copy / MANIFEST).read_bytes()
    manifest = mutated(yaml.safe_load(original), data)
    (bundle_copy / MANIFEST).write_bytes(reseal(manifest) if sealed_anew else
                                         yaml.safe_dump(manifest, sort_keys=False).encode())
    x = FULL_SPEC.example(4)
    jets = Jets.cms(x["tracks"], x["vertices"], x["jet_features"])
    try:
        with unchanged(bundle_copy):
            bundle = obey(lambda: open_bundle(bundle_copy))
            for runtime in ("onnx", "torch"):
                if bundle is not None:
                    p = obey(lambda r=runtime: bundle.predict(jets, runtime=r))
                    assert p is None or (np.isfinite(p).all() and len(p) == 4)
    finally:
        (bundle_copy / MANIFEST).write_bytes(original)


@CHEAP
@given(data=st.data())
def test_metadata_records_with_wrong_types_and_missing_keys_are_loaded_or_refused(
        tmp_path, data):
    from servable.bundle.record import load_record

    source = data.draw(st.sampled_from(RECORDS))
    path = tmp_path / f"{data.draw(st.integers(0, 10**9))}-{source.name}"
    path.write_text(yaml.safe_dump(mutated(yaml.safe_load(source.read_text()), data)))
    with unchanged(path):
        record = obey(lambda: load_record(path))
    assert record is None or isinstance(record, dict)


@pytest.mark.parametrize("text", [
    b"\xff\xfe not UTF-8 \x96",
    b"!!python/object/apply:os.system ['echo owned']",
    b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
    b"- just\n- a list\n",
    b"",
])
def test_hostile_yaml_text_is_refused_as_a_manifest_and_as_a_record(tmp_path, text):
    from servable.bundle.manifest import MANIFEST, read_manifest
    from servable.bundle.record import load_record

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / MANIFEST).write_bytes(text)
    (tmp_path / "r.yaml").write_bytes(text)
    with unchanged(tmp_path):
        assert obey(lambda: read_manifest(tmp_path / "b")) is None
        assert obey(lambda: load_record(tmp_path / "r.yaml")) is None


# -- CLI arguments -----------------------------------------------------------------------

def _cli(argv: list[str]) -> tuple[int, str]:
    from servable.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(a) for a in argv])
    return code, err.getvalue()


NUMBERS = st.sampled_from(["1", "2", "0", "-1", "-7", "99999", "1.5", "abc", "", "nan"])


@pytest.fixture(scope="module")
def cli_inputs(published_bundle, tmp_path_factory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("cli")
    jets = small_jets(4)
    good = write_jets(where / "jets.h5", jets)
    not_hdf5 = where / "text.h5"
    not_hdf5.write_text("not hdf5")
    return {"bundle": published_bundle, "jets": good, "text": not_hdf5, "dir": where,
            "missing": where / "missing.h5"}


@given(data=st.data())
def test_cli_arguments_around_the_valid_ones_exit_0_or_2_without_a_traceback(
        cli_inputs, tmp_path, data):
    out = tmp_path / f"out-{data.draw(st.integers(0, 10**9))}"
    file = cli_inputs[data.draw(st.sampled_from(["jets", "jets", "text", "dir", "missing"]))]
    bundle = data.draw(st.sampled_from([cli_inputs["bundle"], cli_inputs["jets"],
                                        cli_inputs["missing"]]))
    command = data.draw(st.sampled_from([
        ["data", "inspect", file],
        ["predict", bundle, file, "-o", out / "s.h5", "--runtime",
         data.draw(st.sampled_from(["onnx", "torch", "nope"])),
         "--batch-size", data.draw(NUMBERS)],
        ["evaluate", bundle, "--data", file, "--json"],
        ["explain", bundle, file, "--method",
         data.draw(st.sampled_from(["saliency", "masking", "nope"])), "--n-jets",
         data.draw(NUMBERS), "--target", data.draw(NUMBERS), "-o", out],
        ["bundle", "verify", bundle],
    ]))
    with unchanged(cli_inputs["bundle"], cli_inputs["jets"]):
        code, err = _cli(command)
    assert code in (0, 2), (command, code, err)
    assert "Traceback" not in err
    if code == 2 and err.startswith("error: "):  # the product's own errors: one line
        assert len(err.strip().splitlines()) == 1, err
