"""Metadata records: `metadata/<name>.yaml`, the one source of truth per published object.

A record holds what a citation, a catalogue or a repository needs: title, authors (ORCID and
affiliation), description, keywords, licence (SPDX id), version, related identifiers
(training data, paper, upstream code). This module reads and checks records and makes one
from a bundle's manifest; it writes nothing. The documents derived from a record are in
`servable.bundle.citation`. A bundle carries its record in `servable.yaml` under `record`.
"""

from __future__ import annotations

import re
from pathlib import Path

from servable import safe_yaml
from servable.errors import ServableError
from servable.files import read_text

DOI_RE = re.compile(r"^10\.\d{4,9}(\.\d+)?/\S+$")
ORCID_RE = re.compile(r"^https://orcid\.org/(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
RELATIONS = ("isDerivedFrom", "isSupplementTo", "isDocumentedBy", "isCitedBy", "cites",
             "isPartOf", "hasPart", "isNewVersionOf", "isPreviousVersionOf", "isVersionOf",
             "isIdenticalTo", "references", "isReferencedBy", "requires", "isRequiredBy")
SCHEMES = ("doi", "url", "arxiv")
UPLOAD_TYPES = ("software", "dataset", "publication", "other")
ACCESS_RIGHTS = ("open", "embargoed", "restricted", "closed")
# creator names left from a template, or servable's own stand-in for a bundle without a record
PLACEHOLDERS = {"your name", "name", "author", "authors", "first last", "firstname lastname",
                "last, first", "lastname, firstname", "family, given", "given family",
                "surname, name", "john doe", "jane doe", "doe, john", "doe, jane", "anonymous",
                "unknown", "n/a", "none", "null", "test", "the servable developers"}
PLACEHOLDER_MARK = re.compile(r"[<>{}\[\]]|\b(todo|fixme|tbd|xxx+|changeme|placeholder)\b",
                              re.IGNORECASE)
LICENSES = {"MIT": "MIT License", "Apache-2.0": "Apache License 2.0",
            "BSD-3-Clause": "BSD 3-Clause License", "CC-BY-4.0": "Creative Commons "
            "Attribution 4.0 International", "CC0-1.0": "Creative Commons Zero v1.0 Universal"}
REQUIRED = ("name", "title", "version", "description", "authors", "keywords", "license")
TYPES = {"name": (str,), "title": (str,), "version": (str, int, float), "description": (str,),
         "authors": (list,), "keywords": (list,), "license": (str,), "upload_type": (str,),
         "access_right": (str,), "related_identifiers": (list,), "doi": (str,),
         "concept_doi": (str,), "repository_code": (str,), "date_released": (str,)}


class RecordError(ServableError):
    """A metadata record that is incomplete or malformed."""


def orcid_checksum_ok(orcid: str) -> bool:
    """ISO 7064 MOD 11-2 check digit of an ORCID iD (0000-0002-1825-0097 style)."""
    digits = orcid.replace("-", "")
    total = 0
    for ch in digits[:-1]:
        total = (total + int(ch)) * 2
    check = (12 - total % 11) % 11
    return digits[-1] == ("X" if check == 10 else str(check))


def validate_record(record: dict, where: str = "record") -> dict:
    """Check a record; returns it. Errors name the field and how to fix it."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: expected a mapping of fields")
    missing = [k for k in REQUIRED if not record.get(k)]
    if missing:
        raise RecordError(f"{where}: missing {', '.join(missing)} (required: "
                          f"{', '.join(REQUIRED)})")
    for key, types in TYPES.items():
        value = record.get(key)
        if key in record and not isinstance(value, types) or isinstance(value, bool):
            wanted = " or ".join({str: "a string", list: "a list", int: "a number",
                                  float: "a number", dict: "a mapping"}[t] for t in types)
            raise RecordError(f"{where}: {key} must be {wanted}, not {type(value).__name__} "
                              f"{value!r:.40}")
    for key, kind in (("authors", dict), ("keywords", str), ("related_identifiers", dict)):
        for i, item in enumerate(record.get(key) or []):
            if not isinstance(item, kind):
                raise RecordError(f"{where}: {key}[{i}] must be "
                                  f"{'a mapping' if kind is dict else 'a string'}, not "
                                  f"{type(item).__name__} {item!r:.40}")
    if record["license"] not in LICENSES:
        raise RecordError(f"{where}: license {record['license']!r} is not one of "
                          f"{', '.join(LICENSES)} (SPDX identifiers)")
    if record.get("upload_type", "software") not in UPLOAD_TYPES:
        raise RecordError(f"{where}: upload_type must be one of {', '.join(UPLOAD_TYPES)}")
    for i, a in enumerate(record["authors"]):
        if not (a.get("family-names") and a.get("given-names")) and not a.get("name"):
            raise RecordError(f"{where}: authors[{i}] needs given-names and family-names "
                              "(or name for an organisation)")
        if "orcid" in a:
            m = ORCID_RE.match(str(a["orcid"]))
            if not m or not orcid_checksum_ok(m.group(1)):
                raise RecordError(f"{where}: authors[{i}].orcid {a['orcid']!r} is not a valid "
                                  "ORCID iD (https://orcid.org/0000-0000-0000-000X, check "
                                  "digit included)")
    for i, r in enumerate(record.get("related_identifiers", [])):
        if r.get("relation") not in RELATIONS or r.get("scheme") not in SCHEMES:
            raise RecordError(f"{where}: related_identifiers[{i}] needs relation (one of "
                              f"{', '.join(RELATIONS[:4])}, ...) and scheme (doi, url, arxiv)")
        if r["scheme"] == "doi" and not DOI_RE.match(str(r.get("identifier", ""))):
            raise RecordError(f"{where}: related_identifiers[{i}].identifier "
                              f"{r.get('identifier')!r} is not a DOI (10.NNNN/...)")
    for key in ("doi", "concept_doi"):
        if record.get(key) and not DOI_RE.match(str(record[key])):
            raise RecordError(f"{where}: {key} {record[key]!r} is not a DOI (10.NNNN/...)")
    return record


def _check_name(value, field: str, where: str, part: bool) -> None:
    """A creator name a DOI can carry: a real name, not a template's placeholder."""
    text = value if isinstance(value, str) else ""
    if not text.strip() or not any(ch.isalpha() for ch in text):
        raise RecordError(f"{where}: {field} {value!r} is not a name (letters expected)")
    if any(ord(ch) < 32 for ch in text) or text != text.strip():
        raise RecordError(f"{where}: {field} {value!r} has line breaks, control characters "
                          "or surrounding spaces; write the name on one line")
    if part and "," in text:
        raise RecordError(f"{where}: {field} {value!r} holds a comma; Zenodo writes a person "
                          "as 'Family, Given', so give the family and given names separately")
    if (not part and text.lower() in PLACEHOLDERS) or PLACEHOLDER_MARK.search(text):
        raise RecordError(f"{where}: {field} {value!r} is a placeholder, not an author's "
                          "name; a DOI makes it permanent")


def check_publishable(record: dict, where: str = "record") -> dict:
    """Check a record before it is deposited (before any request): what `validate_record`
    checks (a licence, which open access needs; ORCID iDs with their check digit; types),
    plus what Zenodo would refuse or a DOI would make permanent: an access right Zenodo does
    not know, placeholder or malformed creator names. Returns it."""
    validate_record(record, where)
    access = record.get("access_right", "open")
    if access not in ACCESS_RIGHTS:
        raise RecordError(f"{where}: access_right {access!r} is not one of "
                          f"{', '.join(ACCESS_RIGHTS)}")
    for i, a in enumerate(record["authors"]):
        for key in ("family-names", "given-names", "name"):
            if key in a:
                _check_name(a[key], f"authors[{i}].{key}", where, key != "name")
        if a.get("family-names") and a.get("given-names"):
            whole = (f"{a['family-names']}, {a['given-names']}",
                     f"{a['given-names']} {a['family-names']}")
            if any(w.lower() in PLACEHOLDERS for w in whole):
                raise RecordError(f"{where}: authors[{i}] {whole[1]!r} is a placeholder, not "
                                  "an author's name; a DOI makes it permanent")
    return record


def load_record(path) -> dict:
    """Read and check a metadata record (YAML) from `path`; every failure, a missing file or
    text that is not UTF-8 included, is a RecordError that names the file."""
    path = Path(path)
    try:
        record = safe_yaml.load(read_text(path), str(path))
    except UnicodeDecodeError:
        raise RecordError(f"{path}: not UTF-8 text") from None
    except ServableError as exc:
        raise RecordError(str(exc)) from None
    return validate_record(record, str(path))


def record_from_manifest(manifest: dict) -> dict:
    """The record a bundle carries, or one made from its manifest for bundles without."""
    if manifest.get("record"):
        record = dict(manifest["record"])
    else:
        record = {
            "name": manifest["name"],
            "title": f"{manifest['name']}: {manifest.get('description') or manifest['task']}",
            "description": manifest.get("description") or manifest["task"],
            "authors": manifest.get("authors") or [{"name": "The servable developers"}],
            "keywords": ["jet tagging", "H->bb", "high-energy physics", "FAIR",
                         manifest["model"]["kind"]],
            "license": manifest.get("license", "MIT"),
            "related_identifiers": _provenance_relations(manifest.get("provenance", {})),
        }
    record["version"] = str(manifest["version"])
    for key in ("doi", "concept_doi", "zenodo", "digest"):
        if manifest.get(key):
            record[key] = manifest[key]
    record.setdefault("date_released", manifest.get("date_released"))
    return record


def _provenance_relations(prov: dict) -> list[dict]:
    out = []
    if prov.get("training_data_doi"):
        out.append({"identifier": prov["training_data_doi"], "scheme": "doi",
                    "relation": "isDerivedFrom", "resource_type": "dataset",
                    "title": "Training data"})
    up = prov.get("upstream")
    if up:
        code = ({"identifier": up["code_doi"], "scheme": "doi"} if up.get("code_doi") else
                {"identifier": f"{up['repository']}/tree/{up['commit']}", "scheme": "url"})
        out.append({**code, "relation": "isDerivedFrom", "resource_type": "software",
                    "title": "Upstream code"})
        if up.get("paper_arxiv"):
            out.append({"identifier": f"arXiv:{up['paper_arxiv']}", "scheme": "arxiv",
                        "relation": "isDocumentedBy", "resource_type": "publication",
                        "title": up.get("paper") or "Upstream paper"})
    return out


def reference_url(rel: dict) -> str:
    """The URL of a related identifier (doi, arxiv or url scheme)."""
    if rel["scheme"] == "doi":
        return f"https://doi.org/{rel['identifier']}"
    if rel["scheme"] == "arxiv":
        return f"https://arxiv.org/abs/{rel['identifier'].removeprefix('arXiv:')}"
    return rel["identifier"]
