"""A bundle's manifest (`servable.yaml`) and its seal: every byte of every file covered.

The manifest lists the SHA-256 of every other file of the bundle and carries the bundle's
**content digest** (`digest: sha256:...`): the SHA-256 of the bundle's file listing (one
line `<sha256>  <name>` per file, sorted by name, `servable.yaml` included). The digest is
also written into the documents that cite the bundle (CITATION.cff, codemeta.json,
ro-crate-metadata.json, MODEL_CARD.md), so those files and the manifest are hashed with
the digest itself replaced by 64 zeros (a hash cannot contain itself; Nix treats
self-references the same way). The SHA-256 listed for those five files is therefore the
hash of their digest-blanked bytes; every other file's is the hash of its bytes.

`verify` refuses any change: a byte of any file (servable.yaml first), a file added, removed
or replaced by a link, a manifest that is not valid data. A user who holds the digest from
a paper or a DOI record passes it as `expect` and so detects a bundle rewritten and sealed
anew.
"""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path, PurePosixPath

from servable import safe_yaml
from servable.bundle.citation import CRATE, GENERATED, bundle_documents, ro_crate
from servable.errors import ServableError
from servable.files import BUNDLE_MANIFEST
from servable.files import sha256_file as sha256_path  # refuses a named pipe, never blocks

MANIFEST = BUNDLE_MANIFEST  # servable.yaml; the base layer knows it to keep outputs out
FORMAT_VERSION = 2
DIGEST_PREFIX = "sha256:"
BLANK = "0" * 64
CARRY_DIGEST = (MANIFEST, *GENERATED)  # the files that carry the digest: hashed blanked
HEX64 = re.compile(r"^[0-9a-f]{64}$")


class BundleError(ServableError):
    """A bundle that cannot be trusted or read: tampered, incomplete, not a bundle."""


def sha256_bytes(data: bytes) -> str:
    """The SHA-256 of `data` (hex)."""
    return hashlib.sha256(data).hexdigest()


def digest_of(hashes: dict[str, str]) -> str:
    """The content digest (hex) of a bundle whose files have these (blanked) SHA-256s."""
    listing = "".join(f"{hashes[name]}  {name}\n" for name in sorted(hashes))
    return sha256_bytes(listing.encode())


# -- the manifest as data --------------------------------------------------------------
_TYPE_NAMES = {str: "a string", int: "an integer", dict: "a mapping", list: "a list",
               float: "a number", type(None): "null", bool: "true/false"}


def _expect(value, types, field: str, where: str):
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        wanted = " or ".join(_TYPE_NAMES[t] for t in types)
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise BundleError(f"{where}: {field} must be {wanted}, not {type(value).__name__} "
                          f"{shown}; the manifest is damaged: fetch the bundle again")
    return value


# field -> accepted types; required fields first
REQUIRED = {"format_version": int, "name": str, "version": (str, int, float), "model": dict,
            "inputs": list, "outputs": list, "files": dict, "digest": str}
OPTIONAL = {"doi": (str, type(None)), "concept_doi": (str, type(None)), "description": str,
            "authors": list, "task": str, "license": str, "methods": list, "runtimes": dict,
            "dependencies": dict, "provenance": dict, "metrics": (dict, type(None)),
            "record": (dict, type(None)), "zenodo": (dict, type(None)),
            "previous_doi": (str, type(None)), "date_released": (str, type(None))}


def validate_manifest(manifest, where: str) -> dict:
    """Check the manifest's structure against its declared schema (REQUIRED, OPTIONAL and
    the entries below); errors name the field, what it must be and what it is."""
    _expect(manifest, dict, "the manifest", where)
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise BundleError(f"{where}: not a servable manifest (missing {', '.join(missing)})")
    for key, types in (*REQUIRED.items(), *OPTIONAL.items()):
        if key in manifest:
            _expect(manifest[key], types, key, where)
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(f"{where}: bundle format {manifest['format_version']}; this servable "
                          f"reads format {FORMAT_VERSION} (sealed manifests): rebuild or "
                          "re-import the bundle with this version")
    model = manifest["model"]
    for key, types in (("kind", str), ("config", dict), ("weights", str)):
        _expect(model.get(key), types, f"model.{key}", where)
    for i, entry in enumerate(manifest["inputs"]):
        _expect(entry, dict, f"inputs[{i}]", where)
        _expect(entry.get("name"), str, f"inputs[{i}].name", where)
        shape = _expect(entry.get("shape"), list, f"inputs[{i}].shape", where)
        if len(shape) not in (2, 3) or not all(isinstance(s, int) and s > 0
                                               for s in shape[1:]):
            raise BundleError(f"{where}: inputs[{i}].shape must be [null, features, slots] or "
                              f"[null, features] with positive sizes, not {shape}")
        features = _expect(entry.get("features"), list, f"inputs[{i}].features", where)
        for j, f in enumerate(features):
            _expect(_expect(f, dict, f"inputs[{i}].features[{j}]", where).get("name"), str,
                    f"inputs[{i}].features[{j}].name", where)
        if len(features) != shape[1]:
            raise BundleError(f"{where}: inputs[{i}] lists {len(features)} features for a "
                              f"shape of {shape[1]}")
    for i, entry in enumerate(manifest["outputs"]):
        _expect(_expect(entry, dict, f"outputs[{i}]", where).get("name"), str,
                f"outputs[{i}].name", where)
    for name, value in manifest["files"].items():
        _expect(name, str, "a name in files", where)
        if not isinstance(value, str) or not HEX64.match(value):
            raise BundleError(f"{where}: files.{name} must be a SHA-256 (64 hex digits), "
                              f"not {value!r:.40}")
        _check_member(name, where)
    if not manifest["digest"].startswith(DIGEST_PREFIX) or not HEX64.match(
            manifest["digest"].removeprefix(DIGEST_PREFIX)):
        raise BundleError(f"{where}: digest must be sha256:<64 hex digits>, not "
                          f"{manifest['digest']!r:.80}")
    if model["weights"] not in manifest["files"]:
        raise BundleError(f"{where}: model.weights {model['weights']!r} is not among the files "
                          "the manifest checksums; the bundle is incomplete or tampered")
    return manifest


def _check_member(name: str, where: str) -> None:
    """A file name of a bundle: relative, inside it, not the manifest."""
    p = PurePosixPath(name)
    if (not name or p.is_absolute() or "\\" in name or any(part in ("..", ".", "")
                                                           for part in name.split("/"))
            or name == MANIFEST):
        raise BundleError(f"{where}: files lists {name!r}, which is not a plain relative path "
                          "inside the bundle")


def read_manifest(path) -> tuple[dict, bytes]:
    """(manifest, its raw bytes) of the bundle directory `path`, validated as data."""
    path = Path(path)
    if path.is_file():
        raise BundleError(f"{path}: a bundle is a directory (unpack a .zip first)")
    manifest_path = path / MANIFEST
    if manifest_path.is_symlink() or (manifest_path.exists() and not manifest_path.is_file()):
        raise BundleError(f"{manifest_path}: not a regular file; a bundle holds no links")
    if not manifest_path.exists():
        raise BundleError(f"{path}: not a servable bundle (no {MANIFEST})")
    raw = manifest_path.read_bytes()
    where = str(manifest_path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{where}: not UTF-8 text; the manifest is damaged") from None
    try:
        data = safe_yaml.load(text, where)
    except ServableError as exc:  # damaged text: a bundle error, as every other damage
        raise BundleError(f"{exc}; the manifest is damaged") from None
    return validate_manifest(data, where), raw


# -- sealing and verifying ---------------------------------------------------------------
def seal(out: Path, manifest: dict) -> str:
    """Write the bundle's citation documents and its manifest with the SHA-256 of every file
    and the content digest; returns the digest (`sha256:...`).

    CITATION.cff, codemeta.json and MODEL_CARD.md come from the manifest; the RO-Crate lists
    every file (with its SHA-256, except the files that carry the digest).
    """
    out = Path(out)
    manifest["format_version"] = FORMAT_VERSION
    manifest["digest"] = DIGEST_PREFIX + BLANK
    hashes, sizes = {}, {}
    for p in sorted(out.rglob("*")):
        name = p.relative_to(out).as_posix()
        if p.is_symlink():
            raise BundleError(f"{out}: {name} is a link; a bundle holds only regular files")
        if p.is_file() and name not in CARRY_DIGEST:
            hashes[name], sizes[name] = sha256_path(p), p.stat().st_size
    texts = bundle_documents(manifest)
    listed = dict(hashes)  # the crate gives real hashes only: taken before the documents
    for name, text in texts.items():
        hashes[name], sizes[name] = sha256_bytes(text.encode()), len(text.encode())
    texts[CRATE] = ro_crate(manifest, listed, sizes)
    hashes[CRATE] = sha256_bytes(texts[CRATE].encode())
    manifest["files"] = {name: hashes[name] for name in sorted(hashes)}
    texts[MANIFEST] = safe_yaml.dump(manifest)
    digest = digest_of({**hashes, MANIFEST: sha256_bytes(texts[MANIFEST].encode())})
    for name, text in texts.items():  # the blank replaced by the digest: same length
        (out / name).write_text(text.replace(BLANK, digest))
    manifest["digest"] = DIGEST_PREFIX + digest
    return manifest["digest"]


def _blanked_sha256(path: Path, digest: str) -> str:
    return sha256_bytes(path.read_bytes().replace(digest.encode(), BLANK.encode()))


def verify(path, expect: str | None = None) -> dict:
    """Check every byte of the bundle at `path` (see the module docstring); returns the
    manifest. `expect` is a content digest (`sha256:...` or the bare hex) the bundle must
    have."""
    path = Path(path)
    manifest, raw = read_manifest(path)
    digest = manifest["digest"].removeprefix(DIGEST_PREFIX)
    files = manifest["files"]
    own = sha256_bytes(raw.replace(digest.encode(), BLANK.encode()))
    if digest_of({**files, MANIFEST: own}) != digest:
        raise BundleError(f"{path}: file {MANIFEST} was modified after the bundle was sealed "
                          "(its content no longer matches its digest): do not use it, fetch "
                          "the bundle again")
    present = {}
    for p in sorted(path.rglob("*")):
        name = p.relative_to(path).as_posix()
        mode = p.lstat().st_mode
        if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise BundleError(f"{path}: {name} is not a regular file (a link or a device); a "
                              "bundle holds only regular files: fetch it again")
        if stat.S_ISREG(mode):
            present[name] = p
    extra = sorted(set(present) - set(files) - {MANIFEST})
    if extra:
        raise BundleError(f"{path}: file {extra[0]} is not part of the sealed bundle (added "
                          f"after sealing; {len(extra)} such file(s)): remove it or fetch the "
                          "bundle again")
    for name, expected in files.items():
        if name not in present:
            raise BundleError(f"{path}: file {name} is missing (listed in {MANIFEST})")
        actual = (_blanked_sha256(present[name], digest) if name in CARRY_DIGEST
                  else sha256_path(present[name]))
        if actual != expected:
            raise BundleError(
                f"{path}: file {name} does not match its SHA-256 in {MANIFEST} "
                f"(expected {expected[:12]}..., found {actual[:12]}...); the bundle was "
                "modified or corrupted: do not use it, fetch it again")
    if expect is not None:
        wanted = str(expect).strip().lower().removeprefix(DIGEST_PREFIX)
        if wanted != digest:
            raise BundleError(f"{path}: content digest sha256:{digest[:16]}... is not the "
                              f"expected sha256:{wanted[:16]}...: this is not the bundle you "
                              "asked for (or it was modified and sealed anew)")
    return manifest
