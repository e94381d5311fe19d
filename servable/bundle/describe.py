"""Describing a bundle with a metadata record (`servable bundle describe --record`)."""

from __future__ import annotations

from pathlib import Path

from servable.bundle.manifest import seal, verify
from servable.bundle.record import RecordError


def describe(bundle, record: dict) -> dict:
    """Make `record` the bundle's metadata (name, version, authors, ...) and regenerate its
    CITATION.cff, codemeta.json, RO-Crate and checksums. A published version is frozen."""
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
    seal(bundle, manifest)
    return manifest
