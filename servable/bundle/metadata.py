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

from servable.errors import ServableError

CITATION, CODEMETA, CRATE, CARD = ("CITATION.cff", "codemeta.json", "ro-crate-metadata.json",
                                   "MODEL_CARD.md")
GENERATED = (CITATION, CODEMETA, CRATE, CARD)
DEFAULT_AUTHORS = [{"name": "The servable developers"}]


def _authors(manifest: dict) -> list[dict]:
    return manifest.get("authors") or DEFAULT_AUTHORS


def _related(manifest: dict) -> list[dict]:
    prov = manifest.get("provenance", {})
    out = []
    data_doi = prov.get("training_data_doi")
    if data_doi:
        out.append({"type": "data", "doi": data_doi, "title": "Training data",
                    "authors": [{"name": "CMS Collaboration"}]})
    up = prov.get("upstream")
    if up:
        out.append({"type": "software", "doi": up["code_doi"], "title": "Upstream code",
                    "repository-code": up["repository"], "authors": [{"name": "FAIR4HEP"}]})
    return out


def citation_cff(manifest: dict) -> str:
    cff = {
        "cff-version": "1.2.0",
        "message": "If you use this model, please cite it as below.",
        "type": "software",
        "title": f"{manifest['name']}: {manifest.get('description') or manifest['task']}",
        "version": str(manifest["version"]),
        "authors": _authors(manifest),
        "license": manifest.get("license", "MIT"),
        "keywords": ["jet tagging", "H->bb", "high-energy physics", "FAIR",
                     manifest["model"]["kind"]],
        "date-released": manifest.get("date_released", dt.date.today().isoformat()),
    }
    if manifest.get("doi"):
        cff["doi"] = manifest["doi"]
        cff["identifiers"] = [{"type": "doi", "value": manifest["doi"],
                               "description": "this version"}]
        if manifest.get("concept_doi"):
            cff["identifiers"].append({"type": "doi", "value": manifest["concept_doi"],
                                       "description": "all versions"})
    related = _related(manifest)
    if related:
        cff["references"] = related
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


def codemeta(manifest: dict) -> str:
    doc = {
        "@context": "https://w3id.org/codemeta/3.0",
        "@type": "SoftwareSourceCode",
        "name": manifest["name"],
        "version": str(manifest["version"]),
        "description": manifest.get("description") or manifest["task"],
        "license": "https://spdx.org/licenses/" + manifest.get("license", "MIT"),
        "author": [{"@type": "Person" if "family-names" in a else "Organization",
                    **({"givenName": a.get("given-names"), "familyName": a["family-names"]}
                       if "family-names" in a else {"name": a["name"]})}
                   for a in _authors(manifest)],
        "keywords": ["jet tagging", "H->bb", "high-energy physics", "FAIR"],
        "programmingLanguage": "Python",
        "runtimePlatform": [f"{k} {v}" for k, v in manifest.get("dependencies", {}).items()],
        "softwareRequirements": sorted(manifest.get("dependencies", {})),
    }
    if manifest.get("doi"):
        doc["identifier"] = f"https://doi.org/{manifest['doi']}"
    related = _related(manifest)
    if related:
        doc["isBasedOn"] = [f"https://doi.org/{r['doi']}" for r in related]
    return json.dumps(doc, indent=2)


def ro_crate(bundle: Path, manifest: dict, checksums: dict[str, str]) -> str:
    """RO-Crate 1.1: the root dataset and one File entity per bundle file."""
    parts = []
    for name in sorted(set(checksums) | {"servable.yaml"}):
        entity = {"@id": name, "@type": "File", "name": name,
                  "encodingFormat": _format(name)}
        if name in checksums:
            entity["sha256"] = checksums[name]
            entity["contentSize"] = str((bundle / name).stat().st_size)
        parts.append(entity)
    root = {
        "@id": "./", "@type": "Dataset", "name": manifest["name"],
        "description": manifest.get("description") or manifest["task"],
        "version": str(manifest["version"]),
        "datePublished": manifest.get("date_released", dt.date.today().isoformat()),
        "license": {"@id": "https://spdx.org/licenses/" + manifest.get("license", "MIT")},
        "hasPart": [{"@id": p["@id"]} for p in parts],
    }
    if manifest.get("doi"):
        root["identifier"] = f"https://doi.org/{manifest['doi']}"
    descriptor = {"@id": CRATE, "@type": "CreativeWork",
                  "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"},
                  "about": {"@id": "./"}}
    return json.dumps({"@context": "https://w3id.org/ro/crate/1.1/context",
                       "@graph": [descriptor, root, *parts]}, indent=2)


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

    (bundle / CITATION).write_text(citation_cff(manifest))
    (bundle / CODEMETA).write_text(codemeta(manifest))
    (bundle / CARD).write_text(model_card(manifest))
    for name in (CITATION, CODEMETA, CARD):
        checksums[name] = sha256_path(bundle / name)
    (bundle / CRATE).write_text(ro_crate(bundle, manifest, checksums))
