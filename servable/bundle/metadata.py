"""Citation and discovery metadata of a bundle, generated from its manifest (one source).

CITATION.cff (CFF 1.2.0, validated with cffconvert's Python API: its CLI exits 0 on an
invalid file), codemeta.json (CodeMeta 3.0), ro-crate-metadata.json (RO-Crate 1.1,
describing every file of the bundle) and MODEL_CARD.md.
"""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
from pathlib import Path

import yaml

from servable.bundle.record import reference_url
from servable.errors import ServableError

CITATION, CODEMETA, CRATE, CARD = ("CITATION.cff", "codemeta.json", "ro-crate-metadata.json",
                                   "MODEL_CARD.md")
GENERATED = (CITATION, CODEMETA, CRATE, CARD)
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
    if record.get("doi"):
        cff["doi"] = record["doi"]
        cff["identifiers"] = [{"type": "doi", "value": record["doi"],
                               "description": "this version"}]
        if record.get("concept_doi"):
            cff["identifiers"].append({"type": "doi", "value": record["concept_doi"],
                                       "description": "all versions"})
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
    related = record.get("related_identifiers", [])
    based = [reference_url(r) for r in related if r["relation"] == "isDerivedFrom"]
    papers = [reference_url(r) for r in related if r.get("resource_type") == "publication"]
    if based:
        doc["isBasedOn"] = based
    if papers:
        doc["referencePublication"] = papers
    return json.dumps(doc, indent=2)


def ro_crate(bundle: Path, manifest: dict, checksums: dict[str, str]) -> str:
    """RO-Crate 1.1: the root dataset (with its authors and identifiers) and one File entity
    per bundle file."""
    from servable.bundle.record import record_from_manifest

    record = record_from_manifest(manifest)
    parts = []
    for name in sorted(set(checksums) | {"servable.yaml"}):
        entity = {"@id": name, "@type": "File", "name": name,
                  "encodingFormat": _format(name)}
        if name in checksums:
            entity["sha256"] = checksums[name]
            entity["contentSize"] = str((bundle / name).stat().st_size)
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
    if record.get("doi"):
        root["identifier"] = [f"https://doi.org/{record['doi']}"] + (
            [f"https://doi.org/{record['concept_doi']}"] if record.get("concept_doi") else [])
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
    suffix = Path(name).suffix
    return special.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def model_card(manifest: dict) -> str:
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
        f"- DOI: {manifest.get('doi') or 'not yet minted'}", "",
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


def write_metadata(bundle: Path, manifest: dict, checksums: dict[str, str]) -> None:
    """Write CITATION.cff, codemeta.json, MODEL_CARD.md, then the RO-Crate over all files."""
    from servable.bundle.bundle import sha256_path
    from servable.bundle.record import record_from_manifest

    record = record_from_manifest(manifest)
    (bundle / CITATION).write_text(citation_cff(record))
    (bundle / CODEMETA).write_text(codemeta(record, manifest.get("dependencies")))
    (bundle / CARD).write_text(model_card(manifest))
    for name in (CITATION, CODEMETA, CARD):
        checksums[name] = sha256_path(bundle / name)
    (bundle / CRATE).write_text(ro_crate(bundle, manifest, checksums))
