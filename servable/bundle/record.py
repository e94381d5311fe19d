"""Metadata records: `metadata/<name>.yaml`, the one source of truth per published object.

A record holds what a citation, a catalogue or a repository needs: title, authors (ORCID and
affiliation), description, keywords, licence (SPDX id), version, related identifiers
(training data, paper, upstream code). From a record this module writes every derived
document: CITATION.cff and codemeta.json (`servable.bundle.metadata`), the Zenodo deposition
metadata (with `upload_type` and `access_right`, which cffconvert's Zenodo output lacks), a
DataCite JSON and a DLHub-style servable document. A bundle carries its record in
`servable.yaml` under `record`.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import yaml

from servable.errors import ServableError

DOI_RE = re.compile(r"^10\.\d{4,9}(\.\d+)?/\S+$")
ORCID_RE = re.compile(r"^https://orcid\.org/(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
RELATIONS = ("isDerivedFrom", "isSupplementTo", "isDocumentedBy", "isCitedBy", "cites",
             "isPartOf", "hasPart", "isNewVersionOf", "isPreviousVersionOf", "isVersionOf",
             "isIdenticalTo", "references", "isReferencedBy", "requires", "isRequiredBy")
SCHEMES = ("doi", "url", "arxiv")
UPLOAD_TYPES = ("software", "dataset", "publication", "other")
LICENSES = {"MIT": "MIT License", "Apache-2.0": "Apache License 2.0",
            "BSD-3-Clause": "BSD 3-Clause License", "CC-BY-4.0": "Creative Commons "
            "Attribution 4.0 International", "CC0-1.0": "Creative Commons Zero v1.0 Universal"}
REQUIRED = ("name", "title", "version", "description", "authors", "keywords", "license")


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


def load_record(path) -> dict:
    path = Path(path)
    try:
        record = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"{path}: no such metadata record") from None
    except yaml.YAMLError as exc:
        raise RecordError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
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
    for key in ("doi", "concept_doi", "zenodo"):
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
        out.append({"identifier": up["code_doi"], "scheme": "doi", "relation": "isDerivedFrom",
                    "resource_type": "software", "title": "Upstream code"})
    return out


def _date(record: dict) -> str:
    return str(record.get("date_released") or dt.date.today().isoformat())


def reference_url(rel: dict) -> str:
    """The URL of a related identifier (doi, arxiv or url scheme)."""
    if rel["scheme"] == "doi":
        return f"https://doi.org/{rel['identifier']}"
    if rel["scheme"] == "arxiv":
        return f"https://arxiv.org/abs/{rel['identifier'].removeprefix('arXiv:')}"
    return rel["identifier"]


def zenodo_metadata(record: dict) -> dict:
    """The `metadata` object of a Zenodo deposition (legacy deposit API)."""
    creators = []
    for a in record["authors"]:
        c = {"name": f"{a['family-names']}, {a['given-names']}" if "family-names" in a
             else a["name"]}
        if a.get("affiliation"):
            c["affiliation"] = a["affiliation"]
        if a.get("orcid"):
            c["orcid"] = ORCID_RE.match(a["orcid"]).group(1)
        creators.append(c)
    meta = {
        "upload_type": record.get("upload_type", "software"),
        "title": record["title"],
        "creators": creators,
        "description": record["description"],
        "access_right": record.get("access_right", "open"),
        "license": record["license"].lower(),
        "keywords": list(record["keywords"]),
        "version": str(record["version"]),
        "publication_date": _date(record),
    }
    related = [{"identifier": reference_url(r) if r["scheme"] == "url" else r["identifier"],
                "relation": r["relation"], "scheme": r["scheme"],
                **({"resource_type": r["resource_type"]} if r.get("resource_type") else {})}
               for r in record.get("related_identifiers", [])]
    if related:
        meta["related_identifiers"] = related
    return meta


def datacite(record: dict) -> dict:
    """DataCite 4 JSON (the REST API's `data.attributes` shape)."""
    creators = []
    for a in record["authors"]:
        if "family-names" in a:
            c = {"name": f"{a['family-names']}, {a['given-names']}", "nameType": "Personal",
                 "givenName": a["given-names"], "familyName": a["family-names"]}
        else:
            c = {"name": a["name"], "nameType": "Organizational"}
        if a.get("affiliation"):
            c["affiliation"] = [{"name": a["affiliation"]}]
        if a.get("orcid"):
            c["nameIdentifiers"] = [{"nameIdentifier": a["orcid"],
                                     "nameIdentifierScheme": "ORCID",
                                     "schemeUri": "https://orcid.org"}]
        creators.append(c)
    kinds = {"doi": "DOI", "url": "URL", "arxiv": "arXiv"}
    attributes = {
        "doi": record.get("doi"),
        "titles": [{"title": record["title"]}],
        "creators": creators,
        "publisher": record.get("publisher", "Zenodo"),
        "publicationYear": int(_date(record)[:4]),
        "types": {"resourceTypeGeneral": "Software",
                  "resourceType": record.get("resource_type", "Trained machine-learning model")},
        "descriptions": [{"description": record["description"],
                          "descriptionType": "Abstract"}],
        "subjects": [{"subject": k} for k in record["keywords"]],
        "version": str(record["version"]),
        "rightsList": [{"rights": LICENSES[record["license"]],
                        "rightsIdentifier": record["license"].lower(),
                        "rightsIdentifierScheme": "SPDX",
                        "rightsUri": f"https://spdx.org/licenses/{record['license']}"}],
        "relatedIdentifiers": [
            {"relatedIdentifier": r["identifier"], "relatedIdentifierType": kinds[r["scheme"]],
             "relationType": r["relation"][0].upper() + r["relation"][1:]}
            for r in record.get("related_identifiers", [])],
        "url": f"https://doi.org/{record['doi']}" if record.get("doi") else None,
    }
    return {"data": {"type": "dois", "attributes": {k: v for k, v in attributes.items()
                                                    if v is not None}}}


def dlhub_document(record: dict, inputs: list[dict], outputs: list[dict]) -> dict:
    """A DLHub-style servable document (datacite + dlhub + servable blocks)."""
    def _io(spec: dict) -> dict:
        out = {"type": "ndarray", "shape": spec["shape"], "item_type": spec["dtype"],
               "description": spec.get("meaning") or spec.get("layout", "")}
        if spec.get("features"):
            out["description"] = (f"{len(spec['features'])} features: "
                                  + ", ".join(f["name"] for f in spec["features"]))
        return out

    simple = datacite(record)["data"]["attributes"]
    return {
        "datacite": {"titles": simple["titles"], "creators": simple["creators"],
                     "publisher": simple["publisher"],
                     "publicationYear": simple["publicationYear"],
                     "identifier": {"identifier": record.get("doi") or "10.YET/UNASSIGNED",
                                    "identifierType": "DOI"},
                     "rightsList": simple["rightsList"],
                     "resourceType": {"resourceTypeGeneral": "InteractiveResource"},
                     "descriptions": simple["descriptions"],
                     "relatedIdentifiers": simple["relatedIdentifiers"]},
        "dlhub": {"version": "0.10.0", "domains": ["physics", "high-energy physics"],
                  "visible_to": ["public"], "name": record["name"], "type": "servable",
                  "files": {"model": "model.onnx"}, "dependencies": {"python": {
                      "servable": str(record.get("software_version", "0.1.0"))}}},
        "servable": {
            "type": "Python static method",
            "shim": "python.PythonStaticMethodServable",
            "methods": {"run": {
                "input": {"type": "dict", "description": "jets in the CMS H->bb layout",
                          "properties": {i["name"]: _io(i) for i in inputs}},
                "output": _io(outputs[0]),
                "parameters": {"runtime": "auto"},
                "method_details": {"module": "servable.remote.functions",
                                   "method_name": "predict"}}},
        },
    }


def record_io(record: dict) -> tuple[list[dict], list[dict]]:
    """Inputs and outputs of the model a record describes (its `model` block)."""
    from servable.bundle.bundle import io_spec
    from servable.data import schema
    from servable.models.taggers import TAGGERS, build_tagger

    model = record.get("model")
    if not model or model.get("kind") not in TAGGERS:
        raise RecordError(f"{record['name']}: a model record needs model.kind (one of "
                          f"{', '.join(TAGGERS)})")
    dropped = set(model.get("dropped_track_features", []))
    tagger = build_tagger({"kind": model["kind"],
                           "hyperparameters": dict(model.get("hyperparameters", {})),
                           "track_features": [n for i, n in enumerate(schema.TRACK_NAMES)
                                              if i not in dropped]})
    return io_spec(tagger)


def generated_documents(record: dict) -> dict[str, str]:
    """File name -> text of every document generated from a record."""
    import json

    from servable.bundle.metadata import citation_cff, codemeta

    docs = {"CITATION.cff": citation_cff(record), "codemeta.json": codemeta(record) + "\n"}
    if record.get("model"):
        inputs, outputs = record_io(record)
        docs["zenodo.json"] = json.dumps({"metadata": zenodo_metadata(record)}, indent=2) + "\n"
        docs["datacite.json"] = json.dumps(datacite(record), indent=2) + "\n"
        docs["dlhub.json"] = json.dumps(dlhub_document(record, inputs, outputs), indent=2) + "\n"
    return docs


def sync(root, check: bool = False) -> list[Path]:
    """Regenerate (or with `check`, compare) every file derived from `metadata/*.yaml`.

    `metadata/servable.yaml` gives the repository's CITATION.cff and codemeta.json; each
    model record gives `metadata/generated/<name>/`. Returns the files written (or stale).
    """
    from servable.version import __version__

    root = Path(root)
    records = sorted((root / "metadata").glob("*.yaml"))
    if not records:
        raise RecordError(f"{root / 'metadata'}: no records (*.yaml)")
    changed = []
    for path in records:
        record = load_record(path)
        if path.stem == "servable":
            if str(record["version"]) != __version__:
                raise RecordError(f"{path}: version {record['version']} differs from the "
                                  f"package's {__version__}; make them equal")
            targets = {root / name: text for name, text in generated_documents(record).items()}
        else:
            if record["name"] != path.stem:
                raise RecordError(f"{path}: name {record['name']!r} must equal the file name "
                                  f"{path.stem!r}")
            out = root / "metadata" / "generated" / record["name"]
            targets = {out / name: text for name, text in generated_documents(record).items()}
        for target, text in targets.items():
            if target.exists() and target.read_text() == text:
                continue
            changed.append(target)
            if not check:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
    if check and changed:
        names = ", ".join(str(p.relative_to(root)) for p in changed)
        raise RecordError(f"stale generated metadata: {names}; run `servable metadata sync` "
                          "and commit the result")
    return changed


def apply_record(bundle, record: dict) -> dict:
    """Make `record` the bundle's metadata (name, version, authors, ...) and regenerate its
    CITATION.cff, codemeta.json, RO-Crate and checksums. A published version is frozen."""
    from servable.bundle.bundle import verify, write_manifest

    bundle = Path(bundle)
    manifest = verify(bundle)
    version = str(record["version"])
    if manifest.get("doi") and str(manifest["version"]) == version:
        raise RecordError(f"{bundle}: version {version} is published as {manifest['doi']}; "
                          "its metadata is frozen (raise the record's version to describe a "
                          "new version)")
    if manifest.get("doi"):  # a new version of a published bundle: the old DOI is not its own
        manifest["previous_doi"], manifest["doi"] = manifest["doi"], None
    rec = {k: v for k, v in record.items() if k not in ("doi", "concept_doi", "zenodo")}
    manifest.update({"record": rec, "name": rec["name"], "version": version,
                     "description": rec["description"], "authors": rec["authors"],
                     "license": rec["license"], "date_released": rec.get("date_released")})
    write_manifest(bundle, manifest)
    return manifest
