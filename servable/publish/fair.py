"""Score a bundle against the FAIR principles for AI models.

One check per principle (F1-F4, A1-A2, I1-I2, R1-R3, following the structure of Table 1 of
Duarte et al., "FAIR AI models in high energy physics"; the wording of each check is ours).
Each check looks at the bundle on disk (a published bundle carries its DOI, concept DOI and
repository record: the evidence for F1, F3 and F4) except A1, whose evidence is a retrieval:
the DOI resolved and its archived bundle downloaded (or found in the cache, where an earlier
retrieval put it), verified, and found to have this bundle's content digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml


@dataclass
class Check:
    """One principle's result: its id (F1, ...), title, whether it is met and the evidence."""

    principle: str
    title: str
    ok: bool
    evidence: str


def _check(principle, title, ok, good, bad) -> Check:
    return Check(principle, title, bool(ok), good if ok else bad)


def _retrieval(doi: str, digest: str) -> tuple[bool, str]:
    """(retrieved with this digest, evidence) for A1."""
    from servable.bundle.manifest import verify
    from servable.bundle.retrieve import Identifier, retrieve
    from servable.errors import ServableError

    if not doi:
        return False, "no DOI to retrieve the model by: publish it (servable publish zenodo)"
    try:
        path = retrieve(Identifier(doi=doi))
        found = verify(path)["digest"]
    except ServableError as exc:
        return False, f"retrieving {doi} failed: {exc}"
    if found != digest:
        return False, f"{doi} retrieves a bundle with another content digest ({found})"
    return True, (f"servable.load('{doi}') retrieves this bundle (DOI resolver, records "
                  f"API, download, MD5 and SHA-256 verified; content digest {digest}), "
                  f"cached at {path}")


def fair_checks(bundle) -> list[Check]:
    """One `Check` per FAIR principle (F1-F4, A1-A2, I1-I2, R1-R3) for a bundle (a path,
    name, DOI or record URL), verified first; A1 is a retrieval by the bundle's DOI.
    """
    from servable.bundle.bundle import ONNX_FILE, resolve
    from servable.bundle.citation import CARD, CITATION, CODEMETA, CRATE
    from servable.bundle.manifest import verify
    from servable.bundle.record import DOI_RE, LICENSES, record_from_manifest

    bundle = resolve(bundle)  # a path, name, DOI or record URL
    manifest = verify(bundle)  # every byte: a tampered bundle fails here, not later
    record = record_from_manifest(manifest)
    doi = manifest.get("doi") or ""
    cff = yaml.safe_load((bundle / CITATION).read_text())
    code = json.loads((bundle / CODEMETA).read_text())
    crate = json.loads((bundle / CRATE).read_text())
    root = next(e for e in crate["@graph"] if e.get("@id") == "./")
    zenodo = manifest.get("zenodo") or {}
    persons = [a for a in record["authors"] if "family-names" in a]
    features = [f for i in manifest["inputs"] for f in i["features"]]
    prov = manifest.get("provenance", {})
    checks = [
        _check("F1", "a globally unique, persistent identifier", DOI_RE.match(doi),
               f"DOI {doi} (concept DOI {manifest.get('concept_doi') or 'none'})",
               "no DOI: publish the bundle (servable publish zenodo)"),
        _check("F2", "rich metadata", len(record["description"]) >= 50
               and len(record["keywords"]) >= 3 and all(a.get("orcid") and a.get("affiliation")
                                                        for a in persons),
               f"title, {len(record['description'])}-character description, "
               f"{len(record['keywords'])} keywords, {len(record['authors'])} authors with "
               "ORCID and affiliation",
               "description under 50 characters, fewer than 3 keywords, or a person without "
               "ORCID/affiliation (servable bundle describe --record metadata/NAME.yaml)"),
        _check("F3", "metadata name the identifier of the model", doi and cff.get("doi") == doi
               and doi in str(code.get("identifier")) and doi in json.dumps(root.get(
                   "identifier", "")),
               f"{CITATION}, {CODEMETA} and {CRATE} carry {doi}",
               f"the DOI is missing from {CITATION}, {CODEMETA} or {CRATE}"),
        _check("F4", "registered in a searchable resource", zenodo.get("url"),
               f"repository record {zenodo.get('url')}",
               "no repository record (publish with servable publish zenodo)"),
        Check("A1", "retrievable by its identifier through an open protocol",
              *_retrieval(doi if DOI_RE.match(doi) else "", manifest["digest"])),
        _check("A2", "metadata available apart from the model", all(
            (bundle / n).is_file() for n in (CITATION, CODEMETA, CRATE, CARD)),
               f"{CITATION}, {CODEMETA}, {CRATE} and {CARD} stand apart from the weights "
               "(and the repository record keeps them)", "a metadata file is missing"),
        _check("I1", "a formal, shared language for the model and its metadata",
               (bundle / ONNX_FILE).is_file() and "@context" in code and "@context" in crate,
               f"{ONNX_FILE} (ONNX), JSON-LD metadata (CodeMeta 3.0, RO-Crate 1.1), CFF 1.2.0",
               f"{ONNX_FILE} or a JSON-LD @context is missing"),
        _check("I2", "shared vocabularies for inputs and references",
               features and all(f.get("name") and "unit" in f and f.get("meaning") is not None
                                for f in features)
               and all(r["scheme"] in ("doi", "arxiv", "url")
                       for r in record.get("related_identifiers", [])),
               f"{len(features)} input features named with units and meanings (CMS H->bb "
               "open-data names), references by DOI/arXiv",
               "an input feature lacks a name, unit or meaning"),
        _check("R1", "richly described for use", manifest.get("inputs") and manifest.get(
            "outputs") and (bundle / CARD).is_file() and manifest["model"].get("config"),
               "input/output shapes, dtypes, padding and preprocessing in servable.yaml; "
               f"architecture and hyperparameters; {CARD}"
               + ("; validation metrics" if manifest.get("metrics") else ""),
               "inputs, outputs, model configuration or model card missing"),
        _check("R2", "a clear licence", record["license"] in LICENSES
               and cff.get("license") == record["license"]
               and str(code.get("license", "")).endswith(record["license"]),
               f"{record['license']} (SPDX) in servable.yaml, {CITATION} and {CODEMETA}",
               "no SPDX licence, or the metadata files disagree"),
        _check("R3", "detailed provenance", (prov.get("training_data_doi") or prov.get(
            "generator") or prov.get("training")) and (prov.get("code_commit") or prov.get(
                "upstream")) and manifest.get("files"),
               "training data ("
               + (prov.get("training_data_doi") or "generator settings and seeds")
               + "), code (" + (prov.get("code_commit") or (prov.get("upstream") or {}).get(
                   "commit", "")) + "), SHA-256 of every file verified",
               "training data or code version missing from the provenance"),
    ]
    return checks


def format_report(bundle, checks: list[Check]) -> str:
    """The FAIR checks as text: how many principles are met, then one line per principle (PASS
    or MISS, its title and the evidence)."""
    passed = sum(c.ok for c in checks)
    lines = [f"FAIR report for {bundle}: {passed}/{len(checks)} principles met"]
    for c in checks:
        lines.append(f"  {c.principle:3s} {'PASS' if c.ok else 'MISS'}  {c.title}: {c.evidence}")
    return "\n".join(lines)
