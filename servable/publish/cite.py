"""How to cite the exact model in a bundle: BibTeX, CFF or APA, from its record."""

from __future__ import annotations

from servable.bundle.citation import CITATION_FORMATS


def citation(bundle, fmt: str = "bibtex") -> tuple[str, str | None]:
    """(citation text, a warning or None) for the bundle `bundle` (a path, name, DOI or
    record URL)."""
    from servable.bundle.bundle import resolve
    from servable.bundle.citation import CITATION, apa, bibtex
    from servable.bundle.manifest import verify
    from servable.bundle.record import record_from_manifest
    from servable.errors import ServableError

    if fmt not in CITATION_FORMATS:
        raise ServableError(f"citation format must be one of {', '.join(CITATION_FORMATS)}, "
                            f"not {fmt!r}")
    path = resolve(bundle)
    manifest = verify(path)
    record = record_from_manifest(manifest)
    warning = None if record.get("doi") else (
        f"{manifest['name']} {manifest['version']} has no DOI yet: publish it (servable "
        "publish zenodo) so the citation names the exact model")
    if fmt == "cff":
        return (path / CITATION).read_text().rstrip(), warning
    return (bibtex(record) if fmt == "bibtex" else apa(record)), warning
