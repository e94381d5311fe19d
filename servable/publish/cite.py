"""How to cite the exact model in a bundle: BibTeX, CFF or APA, from its record."""

from __future__ import annotations

import re

FORMATS = ("bibtex", "cff", "apa")


def _year(record: dict) -> str:
    return str(record.get("date_released") or "")[:4] or "n.d."


def _people(record: dict) -> list[tuple[str, str]]:
    """(family or organisation, given) per author."""
    return [(a["family-names"], a["given-names"]) if "family-names" in a else (a["name"], "")
            for a in record["authors"]]


def bibtex(record: dict) -> str:
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
    names = []
    for fam, given in _people(record):
        initials = " ".join(f"{p[0]}." for p in given.split()) if given else ""
        names.append(f"{fam}, {initials}" if initials else fam)
    if len(names) > 1:
        names = [", ".join(names[:-1]) + ", & " + names[-1]]
    where = f" https://doi.org/{record['doi']}" if record.get("doi") else ""
    return (f"{names[0]} ({_year(record)}). {record['title']} (Version {record['version']}) "
            f"[Computer software]. Zenodo.{where}")


def citation(bundle, fmt: str = "bibtex") -> tuple[str, str | None]:
    """(citation text, a warning or None) for the bundle `bundle` (a path, name, DOI or
    record URL)."""
    from servable.bundle.bundle import resolve
    from servable.bundle.citation import CITATION
    from servable.bundle.manifest import verify
    from servable.bundle.record import record_from_manifest
    from servable.errors import ServableError

    if fmt not in FORMATS:
        raise ServableError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    path = resolve(bundle)
    manifest = verify(path)
    record = record_from_manifest(manifest)
    warning = None if record.get("doi") else (
        f"{manifest['name']} {manifest['version']} has no DOI yet: publish it (servable "
        "publish zenodo) so the citation names the exact model")
    if fmt == "cff":
        return (path / CITATION).read_text().rstrip(), warning
    return (bibtex(record) if fmt == "bibtex" else apa(record)), warning
