"""Metadata records: one source of truth, generated documents kept in sync."""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from servable.bundle.citation import validate_cff
from servable.bundle.record import RecordError, load_record, orcid_checksum_ok, validate_record
from servable.publish.metadata_sync import sync
from tests.cli_helpers import assert_user_error, run_cli

ROOT = Path(__file__).resolve().parents[1]


def test_repository_metadata_is_in_sync():
    """What `make metadata-check` runs: every generated file equals its regeneration."""
    r = run_cli("metadata", "sync", "--root", ROOT, "--check")
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stdout


def test_a_changed_record_makes_generated_files_stale(tmp_path):
    shutil.copytree(ROOT / "metadata", tmp_path / "metadata")
    for name in ("CITATION.cff", "codemeta.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    record = yaml.safe_load((tmp_path / "metadata" / "hbb-in-baseline.yaml").read_text())
    record["keywords"].append("a new keyword")
    (tmp_path / "metadata" / "hbb-in-baseline.yaml").write_text(yaml.safe_dump(record))
    r = run_cli("metadata", "sync", "--root", tmp_path, "--check")
    assert_user_error(r, "stale generated metadata", "hbb-in-baseline/zenodo.json",
                      "servable metadata sync")
    changed = sync(tmp_path)
    assert tmp_path / "metadata" / "generated" / "hbb-in-baseline" / "zenodo.json" in changed
    assert tmp_path / "CITATION.cff" not in changed  # the software record did not change
    assert sync(tmp_path, check=True) == []
    zen = json.loads((tmp_path / "metadata/generated/hbb-in-baseline/zenodo.json").read_text())
    assert "a new keyword" in zen["metadata"]["keywords"]


@pytest.mark.parametrize("name,shape", [("hbb-in-baseline", [None, 30, 60]),
                                        ("hbb-in-pfeaturesdropped", [None, 16, 60])])
def test_generated_documents(name, shape):
    out = ROOT / "metadata" / "generated" / name
    zen = json.loads((out / "zenodo.json").read_text())["metadata"]
    assert zen["upload_type"] == "software" and zen["access_right"] == "open"
    assert zen["license"] == "mit" and zen["creators"][0]["name"] == "Duarte, Javier Mauricio"
    relations = {(r["relation"], r["identifier"]) for r in zen["related_identifiers"]}
    assert ("isDerivedFrom", "10.7483/OPENDATA.CMS.JGJX.MS7Q") in relations
    dc = json.loads((out / "datacite.json").read_text())["data"]["attributes"]
    ids = dc["creators"][0]["nameIdentifiers"][0]
    assert ids["nameIdentifierScheme"] == "ORCID" and ids["nameIdentifier"].endswith("7096")
    assert dc["types"]["resourceTypeGeneral"] == "Software"
    assert {"relatedIdentifier": "arXiv:2212.05081", "relatedIdentifierType": "arXiv",
            "relationType": "IsDocumentedBy"} in dc["relatedIdentifiers"]
    dl = json.loads((out / "dlhub.json").read_text())
    assert {"datacite", "dlhub", "servable"} <= set(dl)
    run = dl["servable"]["methods"]["run"]
    assert run["input"]["properties"]["tracks"]["shape"] == shape
    assert run["input"]["properties"]["vertices"]["shape"] == [None, 14, 5]
    assert run["output"]["shape"] == [None, 2]
    from cffconvert import Citation

    Citation((out / "CITATION.cff").read_text()).validate()
    code = json.loads((out / "codemeta.json").read_text())
    assert code["author"][0]["@id"] == "https://orcid.org/0000-0002-5076-7096"


def test_invalid_cff_is_still_refused():
    """cffconvert validates with jsonschema 4 too (the endpoint engines need it)."""
    from servable.errors import ServableError

    with pytest.raises(ServableError, match="invalid"):
        validate_cff("cff-version: 1.2.0\nmessage: m\ntitle: t\nauthors: []\ndoi: nodoi\n")


def test_orcid_check_digit():
    assert orcid_checksum_ok("0000-0002-1825-0097")  # ORCID's documentation example
    assert orcid_checksum_ok("0000-0002-5076-7096")
    assert not orcid_checksum_ok("0000-0002-5076-7095")


@pytest.mark.parametrize("change,message", [
    ({"license": "GPL"}, "license 'GPL'"),
    ({"authors": [{"given-names": "A", "family-names": "B",
                   "orcid": "https://orcid.org/0000-0002-5076-7095"}]}, "not a valid ORCID"),
    ({"related_identifiers": [{"identifier": "11.1/x", "scheme": "doi",
                               "relation": "isDerivedFrom"}]}, "is not a DOI"),
    ({"title": ""}, "missing title"),
    ({"authors": "Duarte"}, "authors must be a list, not str"),
    ({"authors": ["Duarte"]}, "authors[0] must be a mapping, not str"),
    ({"keywords": [{"a": 1}]}, "keywords[0] must be a string, not dict"),
    ({"related_identifiers": {"doi": "10.1/x"}}, "related_identifiers must be a list"),
    ({"version": True}, "version must be a string or a number"),
])
def test_record_errors_name_the_field(change, message):
    record = load_record(ROOT / "metadata" / "hbb-in-baseline.yaml")
    with pytest.raises(RecordError, match=re.escape(message)):
        validate_record({**record, **change})


def test_describe_applies_a_record(published_bundle, tmp_path):
    target = tmp_path / "b"
    shutil.copytree(published_bundle, target)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    assert_user_error(run_cli("bundle", "describe", target, "--record", bad), "missing")
    r = run_cli("bundle", "describe", target, "--record",
                ROOT / "metadata" / "hbb-in-pfeaturesdropped.yaml")
    assert r.returncode == 0, r.stderr
    assert run_cli("bundle", "verify", target).returncode == 0
    manifest = yaml.safe_load((target / "servable.yaml").read_text())
    assert manifest["name"] == "hbb-in-pfeaturesdropped" and manifest["version"] == "1.0.0"
    cff = yaml.safe_load((target / "CITATION.cff").read_text())
    assert cff["authors"][1]["orcid"] == "https://orcid.org/0000-0003-1642-5794"
    crate = json.loads((target / "ro-crate-metadata.json").read_text())
    people = [e for e in crate["@graph"] if e.get("@type") == "Person"]
    assert len(people) == 4 and people[0]["affiliation"] == "University of California San Diego"


def test_a_record_with_an_alias_bomb_or_not_a_file_is_one_line(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nname: *c\n")
    with pytest.raises(RecordError, match="YAML aliases"):
        load_record(bomb)
    with pytest.raises(RecordError, match="a directory, not a regular file"):
        load_record(tmp_path)
