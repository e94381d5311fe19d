"""Documents derived from a metadata record or a bundle's manifest: pure converters.

Each function takes dicts and returns text or a dict; none reads or writes a file or hashes
anything (`servable.bundle.bundle.seal` writes a bundle's documents, `servable.publish.
metadata_sync` the repository's). CITATION.cff (CFF 1.2.0, validated with cffconvert's
Python API: its CLI exits 0 on an invalid file), codemeta.json (CodeMeta 3.0),
ro-crate-metadata.json (RO-Crate 1.1, describing every file of a bundle), MODEL_CARD.md, the
Zenodo deposition metadata (with `upload_type` and `access_right`, which cffconvert's Zenodo
output lacks), DataCite JSON and a DLHub-style servable document.
"""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
import re
from pathlib import PurePosixPath

import yaml

from servable.bundle.record import LICENSES, ORCID_RE, record_from_manifest, reference_url
from servable.errors import ServableError

CITATION, CODEMETA, CRATE, CARD = ("CITATION.cff", "codemeta.json", "ro-crate-metadata.json",
                                   "MODEL_CARD.md")
GENERATED = (CITATION, CODEMETA, CRATE, CARD)
DIGEST_MEANING = ("content digest of the servable bundle: check it with "
                  "`servable bundle verify --expect DIGEST`")
REFERENCE_TYPES = {"dataset": "data", "software": "software", "publication": "article"}


def _cff_author(a: dict) -> dict:
    keys = ("given-names", "family-names", "name", "affiliation", "orcid")
    return {k: a[k] for k in keys if a.get(k)}


def citation_cff(record: dict) -> str:
    """CITATION.cff (CFF 1.2.0) of a record; validated before it is returned."""
    cff = {
        "cff-version": "1.2.0",
        "message": "If you use this work, please cite it as below.",
        "type": "software",
        "title": record["title"],
        "abstract": record["description"],
        "version": str(record["version"]),
        "authors": [_cff_author(a) for a in record["authors"]],
        "license": record["license"],
        "keywords": list(record["keywords"]),
        "date-released": str(record.get("date_released") or dt.date.today().isoformat()),
    }
    if record.get("repository_code"):
        cff["repository-code"] = record["repository_code"]
    identifiers = []
    if record.get("doi"):
        cff["doi"] = record["doi"]
        identifiers.append({"type": "doi", "value": record["doi"],
                            "description": "this version"})
        if record.get("concept_doi"):
            identifiers.append({"type": "doi", "value": record["concept_doi"],
                                "description": "all versions"})
    if record.get("digest"):
        identifiers.append({"type": "other", "value": record["digest"],
                            "description": DIGEST_MEANING})
    if identifiers:
        cff["identifiers"] = identifiers
    references = []
    for r in record.get("related_identifiers", []):
        ref = {"type": REFERENCE_TYPES.get(r.get("resource_type"), "generic"),
               "title": r.get("title") or r["identifier"],
               "authors": [_cff_author(a) for a in r.get("authors")
                           or [{"name": "see the identifier"}]]}
        if r["scheme"] == "doi":
            ref["doi"] = r["identifier"]
        else:
            ref["url"] = reference_url(r)
        references.append(ref)
    if references:
        cff["references"] = references
    text = yaml.safe_dump(cff, sort_keys=False, allow_unicode=True, width=100)
    validate_cff(text)
    return text


def validate_cff(text: str) -> None:
    """Check CITATION.cff text against the Citation File Format schema (cffconvert); raises
    ServableError with the validator's first line when it does not conform."""
    from cffconvert import Citation

    try:
        Citation(text).validate()
    except Exception as exc:
        raise ServableError(f"generated CITATION.cff is invalid: {str(exc).splitlines()[0]}") \
            from None


def _codemeta_person(a: dict) -> dict:
    if "family-names" not in a:
        return {"@type": "Organization", "name": a["name"]}
    out = {"@type": "Person", "givenName": a["given-names"], "familyName": a["family-names"]}
    if a.get("orcid"):
        out["@id"] = a["orcid"]
    if a.get("affiliation"):
        out["affiliation"] = {"@type": "Organization", "name": a["affiliation"]}
    return out


def codemeta(record: dict, dependencies: dict | None = None) -> str:
    """codemeta.json (CodeMeta 3.0) of a record."""
    doc = {
        "@context": "https://w3id.org/codemeta/3.0",
        "@type": "SoftwareSourceCode",
        "name": record["title"],
        "identifier": record["name"],
        "version": str(record["version"]),
        "description": record["description"],
        "license": "https://spdx.org/licenses/" + record["license"],
        "author": [_codemeta_person(a) for a in record["authors"]],
        "keywords": list(record["keywords"]),
        "programmingLanguage": "Python",
    }
    if record.get("repository_code"):
        doc["codeRepository"] = record["repository_code"]
    if dependencies:
        doc["softwareRequirements"] = [f"{k}=={v}" for k, v in sorted(dependencies.items())]
    if record.get("doi"):
        doc["identifier"] = f"https://doi.org/{record['doi']}"
    if record.get("concept_doi"):
        doc["sameAs"] = f"https://doi.org/{record['concept_doi']}"
    if record.get("digest"):
        doc["identifier"] = [doc["identifier"], record["digest"]]
    related = record.get("related_identifiers", [])
    based = [reference_url(r) for r in related if r["relation"] == "isDerivedFrom"]
    papers = [reference_url(r) for r in related if r.get("resource_type") == "publication"]
    if based:
        doc["isBasedOn"] = based
    if papers:
        doc["referencePublication"] = papers
    return json.dumps(doc, indent=2)


def ro_crate(manifest: dict, checksums: dict[str, str], sizes: dict[str, int]) -> str:
    """RO-Crate 1.1: the root dataset (with its authors and identifiers) and one File entity
    per bundle file (those in `sizes` or `checksums`), with the SHA-256 and size in bytes
    given for it."""
    record = record_from_manifest(manifest)
    parts = []
    for name in sorted(set(checksums) | set(sizes) | {"servable.yaml"}):
        entity = {"@id": name, "@type": "File", "name": name,
                  "encodingFormat": _format(name)}
        if name in checksums:
            entity["sha256"] = checksums[name]
        if name in sizes:
            entity["contentSize"] = str(sizes[name])
        parts.append(entity)
    root = {
        "@id": "./", "@type": "Dataset", "name": record["title"],
        "description": record["description"],
        "keywords": ", ".join(record["keywords"]),
        "version": str(manifest["version"]),
        "datePublished": manifest.get("date_released") or dt.date.today().isoformat(),
        "license": {"@id": "https://spdx.org/licenses/" + record["license"]},
        "hasPart": [{"@id": p["@id"]} for p in parts],
    }
    people = []
    for i, a in enumerate(record["authors"]):
        person = _codemeta_person(a)
        person["@id"] = person.get("@id") or f"#author-{i + 1}"
        if isinstance(person.get("affiliation"), dict):
            person["affiliation"] = person["affiliation"]["name"]
        people.append(person)
    root["author"] = [{"@id": p["@id"]} for p in people]
    identifiers = [f"https://doi.org/{record[k]}" for k in ("doi", "concept_doi")
                   if record.get(k)] + ([record["digest"]] if record.get("digest") else [])
    if identifiers:
        root["identifier"] = identifiers
    related = [reference_url(r) for r in record.get("related_identifiers", [])]
    if related:
        root["isBasedOn"] = [{"@id": u} for u in related]
    descriptor = {"@id": CRATE, "@type": "CreativeWork",
                  "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"},
                  "about": {"@id": "./"}}
    return json.dumps({"@context": "https://w3id.org/ro/crate/1.1/context",
                       "@graph": [descriptor, root, *people, *parts]}, indent=2)


def _format(name: str) -> str:
    special = {".safetensors": "application/octet-stream", ".onnx": "application/onnx",
               ".yaml": "application/yaml", ".cff": "application/yaml",
               ".md": "text/markdown", ".plan": "application/octet-stream"}
    suffix = PurePosixPath(name).suffix
    return special.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def model_card(manifest: dict) -> str:
    """MODEL_CARD.md of a bundle from its manifest (Markdown): model, inputs, outputs, the
    validation metrics it carries, provenance, intended use and limits, and how to load it."""
    m = manifest["model"]
    metrics = manifest.get("metrics") or {}
    prov = manifest.get("provenance", {})
    lines = [
        f"# {manifest['name']} (version {manifest['version']})", "",
        manifest.get("description") or "", "",
        "## Model", "",
        f"- kind: `{m['kind']}`; parameters: {m.get('n_parameters') or 'n/a (trees)'}",
        f"- hyperparameters: `{json.dumps(m['config']['hyperparameters'])}`",
        f"- task: {manifest['task']}",
        f"- DOI: {manifest.get('doi') or 'not yet minted'}",
        f"- content digest: `{manifest.get('digest') or 'not sealed'}` ({DIGEST_MEANING})", "",
        "## Inputs", "",
    ]
    for i in manifest["inputs"]:
        lines.append(f"- `{i['name']}` {i['shape']} {i['dtype']}: "
                     f"{len(i['features'])} features ({i['features'][0]['name']} ... "
                     f"{i['features'][-1]['name']}); {i.get('layout', '')}")
    lines += ["", "## Outputs", ""]
    lines += [f"- `{o['name']}` {o['shape']}: {o['meaning']}" for o in manifest["outputs"]]
    lines += ["", "## Metrics (validation split)", ""]
    lines += [f"- {k}: {v:.4g}" for k, v in metrics.items() if isinstance(v, float)] or \
        ["- not measured in this bundle"]
    lines += ["", "## Provenance", "",
              f"- source: {prov.get('source', 'n/a')}",
              f"- training data: {prov.get('training_data_doi') or 'generated (see provenance)'}",
              f"- code commit: {prov.get('code_commit') or 'n/a'}", "",
              "## Intended use and limits", "",
              "Research on H->bb jet tagging with the CMS open-data layout. Generated jets use "
              "a simplified detector model; performance on real CMS data is not implied by "
              "metrics measured on generated jets.", "",
              "## How to use", "",
              "```python", "import servable", f"m = servable.load('{manifest['name']}')",
              "scores = m.predict(servable.read_jets('jets.h5'))", "```", ""]
    return "\n".join(lines)


def bundle_documents(manifest: dict) -> dict[str, str]:
    """CITATION.cff, codemeta.json and MODEL_CARD.md of a bundle (file name -> text); the
    RO-Crate, which lists their checksums, is made after them with `ro_crate`."""
    record = record_from_manifest(manifest)
    return {CITATION: citation_cff(record),
            CODEMETA: codemeta(record, manifest.get("dependencies")),
            CARD: model_card(manifest)}


def _date(record: dict) -> str:
    return str(record.get("date_released") or dt.date.today().isoformat())


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
    if record.get("digest"):
        meta["notes"] = f"Content digest of the bundle: {record['digest']} ({DIGEST_MEANING})."
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


# the formats `servable cite` prints: CFF is the bundle's CITATION.cff itself
CITATION_FORMATS = ("bibtex", "cff", "apa")


def _year(record: dict) -> str:
    return str(record.get("date_released") or "")[:4] or "n.d."


def _people(record: dict) -> list[tuple[str, str]]:
    """(family or organisation, given) per author."""
    return [(a["family-names"], a["given-names"]) if "family-names" in a else (a["name"], "")
            for a in record["authors"]]


def bibtex(record: dict) -> str:
    """A BibTeX @software entry for the record (DOI, URL and content digest when known)."""
    first = re.sub(r"\W", "", _people(record)[0][0]) or "model"
    key = f"{first}{_year(record)}{re.sub(r'[^A-Za-z0-9]', '', record['name'])}"
    authors = " and ".join(f"{fam}, {given}" if given else f"{{{fam}}}"
                           for fam, given in _people(record))
    fields = {"author": authors, "title": record["title"], "year": _year(record),
              "version": str(record["version"]), "publisher": "Zenodo"}
    if record.get("doi"):
        fields["doi"] = record["doi"]
        fields["url"] = f"https://doi.org/{record['doi']}"
    if record.get("digest"):
        fields["note"] = f"content digest {record['digest']}"
    lines = [f"@software{{{key},"] + [f"  {k} = {{{v}}}," for k, v in fields.items()] + ["}"]
    return "\n".join(lines)


def apa(record: dict) -> str:
    """An APA reference for the record (software, Zenodo, the DOI when known)."""
    names = []
    for fam, given in _people(record):
        initials = " ".join(f"{p[0]}." for p in given.split()) if given else ""
        names.append(f"{fam}, {initials}" if initials else fam)
    if len(names) > 1:
        names = [", ".join(names[:-1]) + ", & " + names[-1]]
    where = f" https://doi.org/{record['doi']}" if record.get("doi") else ""
    return (f"{names[0]} ({_year(record)}). {record['title']} (Version {record['version']}) "
            f"[Computer software]. Zenodo.{where}")
