"""Property-based fuzzing (hypothesis) of the surfaces added after the first rounds: JetClass
ROOT files, published checkpoints, the records API's JSON and the retrieved archive. The same
contract as tests/test_fuzz_properties.py (whose profiles apply here too): a one-line
`ServableError` or a valid result, never another exception, inputs unchanged, nothing
written where it must not be.
"""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fuzz.checkpoint_recipes import write_recipe as write_checkpoint
from fuzz.contract import obey, read_everything_root, record_for, unchanged
from fuzz.root_recipes import write_recipe as write_root
from servable.bundle import retrieve
from servable.bundle.archive import unpack
from tests.test_fuzz_properties import CHEAP

# -- JetClass ROOT ------------------------------------------------------------------------


@given(recipe=st.binary(max_size=48))
def test_jetclass_root_files_changed_by_a_recipe_are_read_or_refused(tmp_path_factory, recipe):
    """Branches dropped, retyped, jagged/flat swapped, lengths that disagree, huge counts,
    NaN, truncation (fuzz/root_recipes.py), as a TTree or an RNTuple."""
    path = write_root(tmp_path_factory.mktemp("root") / "jets.root", recipe)
    with unchanged(path):
        read_everything_root(path)


@given(cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)),
                                           max_size=4))
def test_jetclass_root_bytes_truncated_or_flipped_are_read_or_refused(tmp_path_factory, cut,
                                                                      flips):
    path = write_root(tmp_path_factory.mktemp("root") / "jets.root", b"\x02\x00")
    data = bytearray(path.read_bytes())
    for at, bit in flips:
        data[int(at * (len(data) - 1))] ^= bit
    path.write_bytes(bytes(data[:max(1, int(cut * len(data)))]))
    with unchanged(path):
        read_everything_root(path)


def test_particle_branches_whose_lengths_disagree_are_refused_naming_them(tmp_path):
    import awkward as ak
    import uproot

    from servable.data.jetclass import read_jetclass
    from servable.errors import ServableError
    from tests.ring_jets import ring_branches

    branches = ring_branches(1, seed=0)
    counts = ak.num(branches["part_px"]).to_numpy()
    counts[3] += 1
    branches["part_py"] = ak.unflatten(ak.Array([1.0] * int(counts.sum())), counts)
    with uproot.recreate(tmp_path / "bad.root") as f:
        f["tree"] = branches
    try:
        read_jetclass(tmp_path / "bad.root")
    except ServableError as exc:
        assert f"'part_py' holds {counts[3]} particles in jet 3 but 'part_px' " \
               f"{counts[3] - 1}" in str(exc)
    else:
        raise AssertionError("jets with disagreeing particle branches were read")


def test_a_jet_whose_derived_features_are_not_finite_is_refused_naming_it(tmp_path):
    """Found by fuzz/jetclass_root.py: a jet energy <= 0 made log(E/E_jet) NaN in the jets
    the reader returned."""
    import uproot

    from servable.data.jetclass import read_jetclass
    from servable.errors import ServableError
    from tests.ring_jets import ring_branches

    branches = ring_branches(1, seed=0)
    branches["jet_energy"] = branches["jet_energy"].copy()
    branches["jet_energy"][2] = -1.0
    with uproot.recreate(tmp_path / "bad.root") as f:
        f["tree"] = branches
    try:
        read_jetclass(tmp_path / "bad.root")
    except ServableError as exc:
        assert "jet 2: the particle feature 'part_logerel' is NaN or infinite" in str(exc)
    else:
        raise AssertionError("jets with NaN derived features were read")


# -- checkpoints ----------------------------------------------------------------------------

@given(recipe=st.binary(max_size=24))
def test_checkpoints_changed_by_a_recipe_are_imported_or_refused_writing_nothing(
        tmp_path_factory, recipe):
    """Wrong shapes and dtypes, NaN, extra, missing and renamed keys, odd metadata, any bytes
    (fuzz/checkpoint_recipes.py)."""
    from servable.bundle.checkpoint import import_checkpoint
    from servable.bundle.manifest import verify

    work = tmp_path_factory.mktemp("checkpoint")
    inputs = work / "inputs"
    inputs.mkdir()
    checkpoint, metadata = write_checkpoint(inputs, recipe)
    with unchanged(inputs):
        made = obey(lambda: import_checkpoint(checkpoint, metadata, work / "bundle"))
    if made is None:
        assert not (work / "bundle").exists()
    else:
        verify(made)


# -- the records API's JSON and the archive -----------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
FIELDS = ("id", "recid", "files", "metadata", "key", "size", "checksum", "links", "self",
          "version")


@CHEAP
@given(data=st.data())
def test_records_with_odd_fields_give_a_download_or_one_line(data):
    """Every field of a valid record replaced by any JSON value, or removed."""
    record = record_for(b"PK\x05\x06" + bytes(18))
    record["files"][0]["links"]["self"] = "https://zenodo.org/api/records/1/files/x/content"
    for _ in range(data.draw(st.integers(1, 4))):
        files = record.get("files")
        first = files[0] if isinstance(files, list) and files else None
        places = [record, record.get("metadata"), first,
                  first.get("links") if isinstance(first, dict) else None]
        target = data.draw(st.sampled_from(places))
        if not isinstance(target, dict):
            continue
        key = data.draw(st.sampled_from(FIELDS))
        if data.draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = data.draw(JSON)
    from unittest import mock

    from servable.bundle import doi

    def offline(url, what, *args, **kwargs):  # a files link is never fetched here
        raise retrieve.RetrievalError(f"{what}: {url} is not fetched in this test")

    with mock.patch.object(doi, "_json", offline):
        parsed = obey(lambda: doi.read_record("https://zenodo.org", record, "rec"))
    if parsed is not None:
        f = obey(lambda: retrieve._bundle_file(parsed, "rec"))
        assert f is None or (f.url.startswith(("http://", "https://")) and
                             isinstance(f.size, int) and f.checksum.startswith("md5:"))


def _archive(members: list[tuple[str, bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            z.writestr(info, content)
    return buf.getvalue()


NAMES = st.sampled_from(["b/servable.yaml", "b/a", "b/a/", "b/a/c", "../x", "/abs", "b/../../x",
                         "b\\x", "c:/x", "b/", "", ".", "b/./d", "c/servable.yaml"])
MODES = st.sampled_from([0, stat.S_IFREG | 0o644, stat.S_IFDIR | 0o755, stat.S_IFLNK | 0o777,
                         stat.S_IFIFO | 0o644, stat.S_IFCHR | 0o644])


@CHEAP
@given(members=st.lists(st.tuples(NAMES, st.binary(max_size=8), MODES), max_size=6),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=3))
def test_archives_unpack_inside_their_folder_or_are_refused(tmp_path_factory, members, flips):
    """Traversal, absolute and drive names, links, devices, duplicates, damaged bytes."""
    work = tmp_path_factory.mktemp("unpack")
    data = bytearray(_archive(members))
    for at, bit in flips:
        data[int(at * (len(data) - 1))] ^= bit
    (work / "archive.zip").write_bytes(bytes(data))
    (work / "dest").mkdir()
    with unchanged(work / "archive.zip"):
        folder = obey(lambda: unpack(work / "archive.zip", work / "dest"))
    written = [p for p in work.rglob("*") if p.name != "archive.zip"]
    assert all(p == work / "dest" or work / "dest" in p.parents for p in written), written
    assert not any(p.is_symlink() for p in written)
    if folder is not None:
        assert (folder / "servable.yaml").is_file() and folder.parent == work / "dest"


def test_an_archive_with_a_member_written_twice_is_refused(tmp_path):
    from servable.errors import ServableError

    (tmp_path / "a.zip").write_bytes(_archive([("b/servable.yaml", b"", 0), ("b/a", b"1", 0),
                                               ("b/a/", b"", stat.S_IFDIR | 0o755)]))
    (tmp_path / "dest").mkdir()
    try:
        unpack(tmp_path / "a.zip", tmp_path / "dest")
    except ServableError as exc:
        assert "member 'b/a/' appears twice" in str(exc)
    else:
        raise AssertionError("an archive with a member twice was unpacked")
    assert not list((tmp_path / "dest").iterdir())


def test_a_damaged_member_is_one_line_not_a_zipfile_error(tmp_path):
    from servable.errors import ServableError

    data = bytearray(_archive([("b/servable.yaml", b"name: b\n" * 50, 0)]))
    data[60] ^= 0xFF  # inside the deflated data: a CRC or deflate error when read
    (tmp_path / "a.zip").write_bytes(bytes(data))
    (tmp_path / "dest").mkdir()
    try:
        unpack(Path(tmp_path / "a.zip"), tmp_path / "dest")
    except ServableError as exc:
        assert "'b/servable.yaml' cannot be unpacked" in str(exc) and "damaged" in str(exc)
    else:
        raise AssertionError("a damaged archive was unpacked")


# -- the command line on the new surfaces --------------------------------------------------

def test_the_command_line_on_hostile_root_checkpoint_and_archive_is_one_line_exit_2(
        published_bundle, tmp_path):
    """The bad-input contract end to end: one line, exit code 2, no traceback, nothing
    written."""
    from tests.cli_helpers import assert_user_error, run_cli

    root = write_root(tmp_path / "disagree.root", b"\x03\x00\x01\x00\x06\x00\x00\x00"
                                                  + b"\x05" * 12)
    truncated = write_root(tmp_path / "truncated.root", b"\x02\x00" + b"\x00" * 10 + b"\x02\x00")
    inputs = tmp_path / "ck"
    inputs.mkdir()
    poisoned, metadata = write_checkpoint(inputs, b"\x00\x00\x01\x00\x03\x00\x05\x00")
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, fragment in [
            (("predict", published_bundle, root, "-o", tmp_path / "s.h5"), "error"),
            (("predict", published_bundle, truncated, "-o", tmp_path / "s.h5"), "error"),
            (("bundle", "import-checkpoint", poisoned, "--metadata", metadata, "-o",
              tmp_path / "b"), "holds NaN or infinite weights"),
            (("pull", "https://127.0.0.1:9/records/12"), "no answer")]:
        assert_user_error(run_cli(*args, timeout=300), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
