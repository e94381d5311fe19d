"""`servable metadata sync`: the repository's files generated from `metadata/*.yaml`.

`metadata/servable.yaml` gives the repository's CITATION.cff and codemeta.json; each model
record gives `metadata/generated/<name>/` (CITATION.cff, codemeta.json, zenodo.json,
datacite.json, dlhub.json). With `check`, nothing is written and a stale file is an error.
"""

from __future__ import annotations

import json
from pathlib import Path

from servable.bundle.bundle import io_spec
from servable.bundle.citation import (
    citation_cff,
    codemeta,
    datacite,
    dlhub_document,
    zenodo_metadata,
)
from servable.bundle.record import RecordError, load_record
from servable.data import schema
from servable.models.taggers import TAGGERS, build_tagger
from servable.version import __version__


def record_io(record: dict) -> tuple[list[dict], list[dict]]:
    """Inputs and outputs of the model a record describes (its `model` block)."""
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
