"""Retrievable by its identifier: DOI -> redirect chain -> records API -> verified cache (FAIR A1).

Against the Zenodo-like test server (tests/zenodo_server.py, tests/zenodo_records.py), which
answers as doi.org and zenodo.org do: the resolver redirects to the site's `/doi/<doi>`, which
redirects to `/records/<id>`; `SERVABLE_DOI_RESOLVER` points the client at its resolver.
"""

import hashlib
import io
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import servable
from servable.bundle.describe import describe
from servable.bundle.doi import Identifier, identifier
from servable.bundle.manifest import sha256_path, verify
from servable.bundle.record import validate_record
from servable.bundle.retrieve import RetrievalError, cache_entries, cache_root, clear_cache
from servable.publish.zenodo import ZenodoClient, publish_bundle
from tests.cli_helpers import assert_user_error, run_cli
from tests.zenodo_server import ZenodoLike

TOKEN = "retrieve-token"
RECORD = {"name": "mlp-random", "title": "An MLP jet tagger with random weights",
          "version": "0.1.0", "description": "Random weights (seed 0), for retrieval tests.",
          "authors": [{"given-names": "Josiah", "family-names": "Carberry",  # ORCID's test
                       "orcid": "https://orcid.org/0000-0002-1825-0097"}],  # identity
          "keywords": ["jet tagging"], "license": "MIT"}


def described(random_bundle: Path, dest: Path) -> Path:
    """A copy of the random bundle described by RECORD (publishing refuses placeholders)."""
    bundle = Path(shutil.copytree(random_bundle, dest))
    describe(bundle, validate_record(dict(RECORD)))
    return bundle


@pytest.fixture()
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVABLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SERVABLE_BUNDLE_PATH", raising=False)
    with ZenodoLike(token=TOKEN) as z:
        monkeypatch.setenv("SERVABLE_DOI_RESOLVER", z.resolver)
        yield z


@pytest.fixture()
def published(random_bundle, server, tmp_path) -> tuple[Path, dict]:
    bundle = described(random_bundle, tmp_path / "local" / "mlp")
    state = publish_bundle(bundle, ZenodoClient(server.url, TOKEN), echo=lambda *_: None)
    return bundle, state


def _scores(ref: str, jets_file: Path, out: Path) -> np.ndarray:
    """Predictions of `servable.load(ref)` in a fresh process."""
    code = ("import sys, numpy, servable; b = servable.load(sys.argv[1]); "
            "numpy.save(sys.argv[3], b.predict(servable.read_jets(sys.argv[2]), 'onnx'))")
    r = subprocess.run([sys.executable, "-c", code, ref, str(jets_file), str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return np.load(out)


def test_the_archive_is_the_local_bundle_byte_for_byte(published, server):
    bundle, state = published
    manifest = verify(bundle)
    assert manifest["doi"] == state["doi"]  # written before the upload, not after
    (dep,) = server.depositions.values()
    archived = {n: hashlib.sha256(f["data"]).hexdigest() for n, f in dep["files"].items()}
    local = {p.name: sha256_path(p) for p in bundle.iterdir()}
    zips = [n for n in archived if n.endswith(".zip")]
    assert {n: h for n, h in archived.items() if n not in zips} == local
    with zipfile.ZipFile(io.BytesIO(dep["files"][zips[0]]["data"])) as z:
        inside = {Path(n).name: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()}
    assert inside == local
    assert f"Content digest of the bundle: {manifest['digest']}" in dep["metadata"]["notes"]


def test_load_by_doi_predicts_as_the_local_bundle_and_then_works_offline(
        published, server, test_file, tmp_path):
    bundle, state = published
    local = _scores(str(bundle), test_file, tmp_path / "local.npy")
    published_at = len(server.log)
    remote = _scores(state["doi"], test_file, tmp_path / "remote.npy")
    np.testing.assert_array_equal(remote, local)
    assert server.resolver_log == [f"/{state['doi']}"]  # doi.org -> site -> record
    assert [p for _, p in server.log[published_at:]][:2] == [
        f"/doi/{state['doi']}", f"/api/records/{state['record_id']}"]
    (entry,) = cache_entries()
    assert entry["doi"] == state["doi"] and entry["digest"] == verify(bundle)["digest"]
    seen = len(server.log)
    for ref in (state["doi"], f"https://doi.org/{state['doi']}", f"doi:{state['doi']}",
                state["concept_doi"]):
        np.testing.assert_array_equal(_scores(ref, test_file, tmp_path / "again.npy"), local)
    assert len(server.log) == seen  # from the cache, verified again, no request


def test_a_concept_doi_and_a_record_url_retrieve_the_newest_version(published, server):
    bundle, state = published
    r = run_cli("pull", state["concept_doi"])
    assert r.returncode == 0, r.stderr
    paths = [p for _, p in server.log]  # the site's resolver sends the newest version's id
    assert paths[-3:-1] == [f"/doi/{state['concept_doi']}", f"/api/records/{state['record_id']}"]
    concept_id = state["concept_doi"].split(".")[-1]
    assert concept_id != str(state["record_id"])
    r = run_cli("bundle", "verify", f"{server.url}/records/{concept_id}",
                "--expect", verify(bundle)["digest"])
    assert f"/api/records/{concept_id}/versions/latest" in [p for _, p in server.log]
    assert r.returncode == 0 and "(as expected)" in r.stdout, r.stderr
    r = run_cli("cite", state["doi"])
    assert r.returncode == 0 and f"doi = {{{state['doi']}}}" in r.stdout, r.stderr
    r = run_cli("cache", "list")
    assert state["doi"] in r.stdout and "1 bundle(s)" in r.stdout
    assert run_cli("cache", "clear").returncode == 0
    assert cache_entries() == []


def test_an_interrupted_download_resumes_from_where_it_stopped(published, server):
    _, state = published
    (dep,) = server.depositions.values()
    size = len(next(f["data"] for n, f in dep["files"].items() if n.endswith(".zip")))
    server.drop_after = size // 2
    r = run_cli("pull", state["doi"])
    assert_user_error(r, f"stopped at {size // 2} of {size} bytes", "run again to resume")
    assert cache_entries() == []  # no half-written entry
    assert run_cli("pull", state["doi"]).returncode == 0
    assert server.ranges[-2:] == [None, f"bytes={size // 2}-"]
    (entry,) = cache_entries()
    verify(entry["path"])


def _zip(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return buf.getvalue()


def _bundle_zip(bundle: Path, change=None) -> dict[str, bytes]:
    members = {f"mlp/{p.name}": p.read_bytes() for p in bundle.iterdir()}
    if change:
        change(members)
    return members


def _flip(members):
    data = bytearray(members["mlp/model.onnx"])
    data[len(data) // 2] ^= 1
    members["mlp/model.onnx"] = bytes(data)


@pytest.mark.parametrize("files, message", [
    (lambda b: {"b.zip": _zip(_bundle_zip(b, lambda m: m.update({"../x": b"escaped"})))},
     "member '../x' would land outside"),
    (lambda b: {"b.zip": _zip(_bundle_zip(b), {"mlp/evil": "/etc/passwd"})},
     "member 'mlp/evil' is a link"),
    (lambda b: {"b.zip": _zip(_bundle_zip(b, _flip))},
     "does not verify"),
    (lambda b: {"b.zip": _zip(_bundle_zip(b, lambda m: m.update({"mlp/extra.txt": b"1"})))},
     "extra.txt is not part of the sealed bundle"),
    (lambda b: {"b.zip": _zip({"data/readme.txt": b"a dataset, not a model"})},
     "not a servable bundle archive"),
    (lambda b: {"paper.pdf": b"%PDF-1.4"}, "no servable bundle (no .zip among its files: "
                                           "paper.pdf)"),
    (lambda b: {"b.zip": b"PK\x03\x04 truncated"}, "not a zip archive"),
])
def test_hostile_or_foreign_records_are_refused_and_nothing_is_cached(
        random_bundle, server, tmp_path, files, message):
    doi = server.add_record(files(random_bundle))
    r = run_cli("pull", doi)
    assert_user_error(r, message)
    assert cache_entries() == []
    assert not (cache_root() / "x").exists() and not (cache_root().parent / "x").exists()
    assert list((cache_root() / "bundles").glob("*")) == []  # no leftover unpacking either
    assert list((cache_root() / "downloads").glob("*")) == []


def test_a_checksum_mismatch_in_transit_is_refused(published, server):
    _, state = published
    (dep,) = server.depositions.values()
    name = next(n for n in dep["files"] if n.endswith(".zip"))
    data = bytearray(dep["files"][name]["data"])
    data[100] ^= 1
    dep["files"][name]["data"] = bytes(data)  # the record still declares the old MD5
    assert_user_error(run_cli("pull", state["doi"]), "does not match the record's")
    assert cache_entries() == []
    assert list((cache_root() / "downloads").iterdir()) == []  # a corrupt part is not kept


def test_unknown_deleted_and_unreachable_identifiers_are_one_line(published, server,
                                                                 monkeypatch):
    _, state = published
    assert_user_error(run_cli("pull", "10.5072/zenodo.999999"), "does not know this DOI (404)")
    server.deleted.add(state["record_id"])
    assert_user_error(run_cli("pull", state["doi"]), "deleted (410 Gone")
    monkeypatch.setenv("SERVABLE_DOI_RESOLVER", "http://127.0.0.1:9/doi")  # nothing listens
    assert_user_error(run_cli("predict", "10.5072/zenodo.5", "jets.h5", "-o", "x.h5"),
                      "no answer")
    with pytest.raises(RetrievalError, match="not a DOI"):
        import servable

        servable.load("doi:not-a-doi")


def test_plain_http_is_refused_off_the_local_machine(monkeypatch):
    monkeypatch.setenv("SERVABLE_DOI_RESOLVER", "http://doi.example.org")
    with pytest.raises(RetrievalError, match="refusing a non-HTTPS address"):
        import servable

        servable.load("10.5281/zenodo.7305173")


def test_fair_report_a1_is_an_actual_retrieval(published, server):
    bundle, state = published
    r = run_cli("fair-report", bundle)
    assert "A1  PASS" in r.stdout and "MD5 and SHA-256 verified" in r.stdout, r.stdout
    assert f"/api/records/{state['record_id']}" in [p for _, p in server.log]
    r = run_cli("fair-report", state["doi"])  # the report of the retrieved bundle
    assert r.returncode == 0 and "A1  PASS" in r.stdout, r.stdout + r.stderr
    server.deleted.add(state["record_id"])
    run_cli("cache", "clear")
    r = run_cli("fair-report", bundle)
    assert "A1  MISS" in r.stdout and "410" in r.stdout


@pytest.mark.parametrize("ref, expected", [
    ("10.5281/zenodo.7305173", Identifier(doi="10.5281/zenodo.7305173")),
    ("doi:10.5281/zenodo.7305173", Identifier(doi="10.5281/zenodo.7305173")),
    ("https://doi.org/10.5281/zenodo.7305173", Identifier(doi="10.5281/zenodo.7305173")),
    ("https://dx.doi.org/10.5072/zenodo.42", Identifier(doi="10.5072/zenodo.42")),
    ("https://zenodo.org/doi/10.5281/zenodo.7305173", Identifier(
        doi="10.5281/zenodo.7305173", url="https://zenodo.org/doi/10.5281/zenodo.7305173")),
    ("https://sandbox.zenodo.org/doi/10.5072/zenodo.42", Identifier(
        doi="10.5072/zenodo.42", url="https://sandbox.zenodo.org/doi/10.5072/zenodo.42")),
    ("https://zenodo.org/records/7305173", Identifier(site="https://zenodo.org",
                                                      record_id="7305173")),
    ("https://zenodo.org/record/7305173", Identifier(site="https://zenodo.org",
                                                     record_id="7305173")),
    ("https://sandbox.zenodo.org/records/42?preview=1", Identifier(
        site="https://sandbox.zenodo.org", record_id="42")),
    ("https://zenodo.org/api/records/7305173", Identifier(site="https://zenodo.org",
                                                          record_id="7305173")),
    ("https://data.example.org/records/cbc2k-q9x58", Identifier(
        site="https://data.example.org", record_id="cbc2k-q9x58")),
    ("https://zenodo.org/communities/hep", None),
    ("mlp-random", None),
])
def test_the_identifier_forms_users_paste(ref, expected):
    assert identifier(ref) == expected


FORMS = ("{doi}", "doi:{doi}", "https://doi.org/{doi}", "{site}/doi/{doi}",
         "{site}/records/{rid}", "{site}/record/{rid}", "{site}/api/records/{rid}")


def test_each_identifier_form_loads_the_bundle_from_a_clean_cache(published, server,
                                                                 test_file):
    """Every form, from an empty cache: the archived bundle, same digest, same scores."""
    bundle, state = published
    jets = servable.read_jets(test_file)
    local = servable.load(bundle).predict(jets, "onnx")
    digest = verify(bundle)["digest"]
    for form in FORMS:
        clear_cache()
        asked, seen = len(server.resolver_log), len(server.log)
        ref = form.format(doi=state["doi"], site=server.url, rid=state["record_id"])
        remote = servable.load(ref)
        assert remote.manifest["digest"] == digest and remote.manifest["doi"] == state["doi"]
        assert str(remote.path).startswith(str(cache_root())), ref
        np.testing.assert_array_equal(remote.predict(jets, "onnx"), local)
        by_doi_org = form.startswith(("{doi}", "doi:", "https://doi.org"))
        assert len(server.resolver_log) == asked + by_doi_org, ref
        via_site_resolver = "doi" in form
        assert (server.log[seen][1] == f"/doi/{state['doi']}") == via_site_resolver, ref


def test_a_concept_doi_gives_the_newest_version_once_a_second_is_published(published, server):
    bundle, first = published
    v1 = verify(bundle)["digest"]
    assert servable.load(first["concept_doi"]).manifest["digest"] == v1  # cached by concept
    describe(bundle, validate_record({**RECORD, "version": "0.2.0"}))
    second = publish_bundle(bundle, ZenodoClient(server.url, TOKEN),
                            new_version_of=first["record_id"], echo=lambda *_: None)
    assert second["concept_doi"] == first["concept_doi"] and second["doi"] != first["doi"]
    v2 = verify(bundle)["digest"]
    r = run_cli("pull", first["concept_doi"])  # asks the network again: the newest version
    assert r.returncode == 0 and v2 in r.stdout and "mlp-random 0.2.0" in r.stdout, r.stderr
    assert servable.load(first["concept_doi"]).manifest["digest"] == v2  # newest held
    for ref, digest in ((first["concept_doi"], v2), (first["doi"], v1), (second["doi"], v2)):
        clear_cache()
        seen = len(server.log)
        assert servable.load(ref).manifest["digest"] == digest, ref
        rid = second["record_id"] if digest == v2 else first["record_id"]
        assert [p for _, p in server.log[seen:seen + 2]] == [f"/doi/{ref}",
                                                             f"/api/records/{rid}"]


def test_a_bundle_archived_on_an_inveniordm_site_loads(random_bundle, tmp_path, monkeypatch,
                                                       test_file):
    """InvenioRDM's JSON form: ids that are not numbers, pids.doi, parent.pids.doi,
    files.entries as a mapping, or only through the files endpoint."""
    monkeypatch.setenv("SERVABLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SERVABLE_BUNDLE_PATH", raising=False)
    jets = servable.read_jets(test_file)
    with ZenodoLike(token=TOKEN, flavour="invenio") as z:
        monkeypatch.setenv("SERVABLE_DOI_RESOLVER", z.resolver)
        bundle = described(random_bundle, tmp_path / "mlp")
        state = publish_bundle(bundle, ZenodoClient(z.url, TOKEN), echo=lambda *_: None)
        rid = z.public_id(state["record_id"])
        assert not rid.isdigit()
        local, digest = servable.load(bundle).predict(jets, "onnx"), verify(bundle)["digest"]
        for ref in (state["doi"], state["concept_doi"], f"{z.url}/records/{rid}"):
            clear_cache()
            remote = servable.load(ref)
            assert remote.manifest["digest"] == digest, ref
            np.testing.assert_array_equal(remote.predict(jets, "onnx"), local)
        (entry,) = cache_entries()
        assert entry["record_id"] == rid and entry["concept_doi"] == state["concept_doi"]
        assert f"/api/records/{rid}/files" not in [p for _, p in z.log]
        z.inline_entries = False  # the record leaves its files to the files endpoint
        clear_cache()
        assert servable.load(state["doi"]).manifest["digest"] == digest
        assert f"/api/records/{rid}/files" in [p for _, p in z.log]


def _chain(server, kind: str) -> str:
    """A DOI whose redirect chain on the test servers is broken in the way `kind` names."""
    doi = "10.5072/zenodo.777777"
    site_doi = f"/doi/{doi}"
    if kind == "loop":  # resolver -> site -> resolver
        server.registry[doi] = f"{server.url}{site_doi}"
        server.redirects[site_doi] = f"{server.resolver}/{doi}"
    elif kind == "outside":  # ends at a page that is not a record
        server.registry[doi] = f"{server.url}{site_doi}"
        server.redirects[site_doi] = f"{server.url}/"
    elif kind == "endless":  # a new address at every hop
        server.registry[doi] = f"{server.url}/doi/10.5072/hop.0"
        for k in range(20):
            server.redirects[f"/doi/10.5072/hop.{k}"] = f"{server.url}/doi/10.5072/hop.{k + 1}"
    elif kind == "plain http":  # a hop off this machine without TLS
        server.registry[doi] = "http://zenodo.example.org/records/1"
    return doi


@pytest.mark.parametrize("kind, message", [
    ("loop", "loop back to"), ("outside", "which is not a record of a Zenodo or InvenioRDM "
                                          "site")])
def test_a_redirect_loop_or_a_chain_ending_outside_a_record_is_one_line(server, kind,
                                                                         message):
    doi = _chain(server, kind)
    for args in (("pull", doi), ("bundle", "verify", doi), ("pull", f"https://doi.org/{doi}")):
        assert_user_error(run_cli(*args), doi, message)
    assert cache_entries() == [] and not (cache_root() / "downloads").exists()


@pytest.mark.parametrize("kind, message", [
    ("loop", "loop back to"), ("endless", "more than 10 redirects"),
    ("plain http", "http://zenodo.example.org/records/1: refusing a non-HTTPS address")])
def test_every_hop_is_checked(server, kind, message):
    doi = _chain(server, kind)
    with pytest.raises(RetrievalError, match=message):
        servable.load(doi)
    assert len(server.log) <= 11  # bounded: never more requests than hops allowed


def test_both_json_forms_of_the_records_api_read_alike():
    from servable.bundle.doi import ArchivedFile, read_record

    md5 = "md5:" + "0" * 32
    zenodo = {"id": 12, "recid": "12", "doi": "10.5072/zenodo.12",
              "conceptdoi": "10.5072/zenodo.11",
              "metadata": {"version": "1.0", "relations": {"version": [{"index": 1}]}},
              "files": [{"id": "f", "key": "b-1.0.zip", "size": 3, "checksum": md5, "links": {
                  "self": "https://zenodo.org/api/records/12/files/b-1.0.zip/content"}}]}
    rdm = {"id": "abcde-12345", "pids": {"doi": {"identifier": "10.1234/abcde-12345"}},
           "parent": {"id": "fghjk-67890", "pids": {"doi": {"identifier": "10.1234/fghjk"}}},
           "versions": {"index": 2, "is_latest": True}, "metadata": {"version": "1.0"},
           "files": {"enabled": True, "entries": {"b-1.0.zip": {
               "key": "b-1.0.zip", "size": 3, "checksum": md5, "links": {
                   "self": "https://rdm.example/api/records/abcde-12345/files/b-1.0.zip",
                   "content": "https://rdm.example/api/records/abcde-12345/files/b-1.0.zip/"
                              "content"}}}}}
    z = read_record("https://zenodo.org", zenodo, "z")
    r = read_record("https://rdm.example", rdm, "r")
    assert (z.id, z.doi, z.concept_doi, z.version, z.version_index) == (
        "12", "10.5072/zenodo.12", "10.5072/zenodo.11", "1.0", 1)
    assert (r.id, r.doi, r.concept_doi, r.version, r.version_index) == (
        "abcde-12345", "10.1234/abcde-12345", "10.1234/fghjk", "1.0", 2)
    assert z.files == [ArchivedFile("b-1.0.zip", 3, md5, zenodo["files"][0]["links"]["self"])]
    assert r.files == [ArchivedFile("b-1.0.zip", 3, md5, "https://rdm.example/api/records/"
                                    "abcde-12345/files/b-1.0.zip/content")]
    odd = read_record("https://x.org", {"id": 5, "files": "x", "links": [], "metadata": [],
                                        "parent": 3, "versions": None}, "odd")
    assert odd.files == [] and odd.doi is None and odd.version_index is None
    with pytest.raises(RetrievalError, match="without an id"):
        read_record("https://x.org", {"id": "../x"}, "bad")


# -- the cache's size limit (issue 38) ---------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("123456", 123456), ("500M", 500 << 20), ("2G", 2 << 30), ("2g", 2 << 30),
    ("1.5T", 3 << 39), ("64KiB", 64 << 10), (" 3 MB ", 3 << 20), ("0", 0)])
def test_cache_max_reads_bytes_and_binary_units(text, expected):
    from servable.bundle.cache_limit import parse_size

    assert parse_size(text) == expected


def test_a_cache_max_that_is_not_a_size_is_one_line_before_any_request(published, server,
                                                                      monkeypatch):
    _, state = published
    monkeypatch.setenv("SERVABLE_CACHE_MAX", "lots")
    seen = len(server.log)
    assert_user_error(run_cli("pull", state["doi"]), "SERVABLE_CACHE_MAX='lots' is not a size",
                      "500M or 2G")
    assert len(server.log) == seen and cache_entries() == []


def _used(entry: dict, seconds_ago: float) -> None:
    import os
    import time

    t = time.time() - seconds_ago
    os.utime(Path(entry["dir"]) / "entry.json", (t, t))


def test_the_cache_evicts_the_least_recently_used_bundles_to_fit_its_limit(
        random_bundle, server, monkeypatch):
    from servable.bundle import cache_limit
    from servable.bundle.retrieve import identifier, retrieve

    monkeypatch.setattr(cache_limit, "IN_USE_SECONDS", 0.0)
    archive = _zip(_bundle_zip(random_bundle))
    a, b, c = (server.add_record({"mlp-1.0.zip": archive}) for _ in range(3))
    retrieve(identifier(a))
    retrieve(identifier(b))
    size = sum(p.stat().st_size for p in Path(cache_entries()[0]["dir"]).rglob("*")
               if p.is_file())
    monkeypatch.setenv("SERVABLE_CACHE_MAX", str(int(size * 2.5)))  # room for two entries
    by_doi = {e["doi"]: e for e in cache_entries()}
    _used(by_doi[a], 300)
    _used(by_doi[b], 200)  # b is the more recent, until a is loaded again:
    requests = len(server.log)
    retrieve(identifier(a))  # from the cache: no request, but a counts as used now
    assert len(server.log) == requests
    retrieve(identifier(c))
    assert sorted(e["doi"] for e in cache_entries()) == sorted([a, c])  # b went
    assert [p.name for p in (cache_root() / "bundles").iterdir() if p.name.startswith(".")] == []
    monkeypatch.setenv("SERVABLE_CACHE_MAX", "0")  # only the bundle being loaded stays
    path = retrieve(identifier(b))
    assert [e["doi"] for e in cache_entries()] == [b] and verify(path)


def test_the_cache_never_evicts_a_bundle_used_in_the_last_minute(random_bundle, server,
                                                                 monkeypatch):
    from servable.bundle.retrieve import identifier, retrieve

    archive = _zip(_bundle_zip(random_bundle))
    a, b, c = (server.add_record({"mlp-1.0.zip": archive}) for _ in range(3))
    retrieve(identifier(a))
    monkeypatch.setenv("SERVABLE_CACHE_MAX", "1")
    retrieve(identifier(b))  # a was used a moment ago: another process may be reading it
    assert sorted(e["doi"] for e in cache_entries()) == sorted([a, b])
    _used(next(e for e in cache_entries() if e["doi"] == a), 61)
    assert run_cli("pull", c).returncode == 0  # a goes now; b is still in its minute
    assert sorted(e["doi"] for e in cache_entries()) == sorted([b, c])
