"""Bundles retrieved by their identifier (FAIR A1): DOI -> record -> download -> verified cache.

The identifier is resolved to a record of a Zenodo or InvenioRDM site by
`servable.bundle.doi` (the redirect chain hop by hop, then the records API in either JSON
form). The record's bundle archive (`NAME-VERSION.zip`) is downloaded with a progress bar,
resumed with an HTTP Range request after an interruption, checked against the record's MD5,
unpacked without letting any member out of its folder (no absolute paths, no `..`, no links,
size limits), verified (every byte of the bundle, `servable.bundle.manifest`) and only then
moved into the cache in one rename: a failure leaves no half-written entry, only the
resumable partial download.

The cache is `$SERVABLE_CACHE` or the user cache directory (platformdirs); one entry per
record, `{site}-{id}/` holding `entry.json` and the bundle folder; `$SERVABLE_CACHE_MAX`
bounds its size (`servable.bundle.cache_limit`: the least recently used entries go). A
second load of the same DOI, or of a concept DOI already retrieved, makes no request (and
the loader verifies the bundle again). `servable pull` asks the network again (a concept
DOI's newest version).
The resolver is `$SERVABLE_DOI_RESOLVER` (default https://doi.org); plain HTTP is accepted
only from the local machine (test servers).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import tempfile
import urllib.parse
from pathlib import Path

from servable.bundle.archive import MAX_BUNDLE_BYTES, unpack
from servable.bundle.cache_limit import evict, mark_used, max_bytes
from servable.bundle.doi import (  # noqa: F401 - the retrieval API, re-exported
    RESOLVER,
    RESOLVER_ENV,
    ArchivedFile,
    Identifier,
    Record,
    RetrievalError,
    fetch_record,
    follow,
    identifier,
)
from servable.bundle.manifest import BundleError, verify

CACHE_ENV = "SERVABLE_CACHE"


# -- the cache -------------------------------------------------------------------------
def cache_root() -> Path:
    """The cache folder: `$SERVABLE_CACHE`, else the platform's user cache directory."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("servable"))


def _bundles() -> Path:
    return cache_root() / "bundles"


def _entry_key(site: str, record_id: str) -> str:
    host = urllib.parse.urlsplit(site).netloc
    return re.sub(r"[^A-Za-z0-9.-]", "_", host) + f"-{record_id}"


def cache_entries() -> list[dict]:
    """What the cache holds: one dict per retrieved record (entry.json plus its path)."""
    out = []
    for path in sorted(_bundles().glob("*/entry.json")):
        if path.parent.name.startswith("."):  # an unpacking in progress or interrupted
            continue
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(entry, dict) and isinstance(entry.get("bundle"), str):
            entry["dir"], entry["path"] = str(path.parent), str(path.parent / entry["bundle"])
            out.append(entry)
    return out


def _names(entry: dict, ident: Identifier) -> bool:
    """Whether a cache entry is what `ident` names (its DOI, concept DOI or record)."""
    if ident.doi:
        return ident.doi.lower() in (str(entry.get("doi")).lower(),
                                     str(entry.get("concept_doi")).lower())
    return entry.get("key") == _entry_key(ident.site, ident.record_id)


def _newness(entry: dict) -> tuple[int, int]:
    """Order of a concept's versions: the record's version index, then a numeric id."""
    index, rid = entry.get("version_index"), str(entry.get("record_id") or "")
    return (index if isinstance(index, int) else -1, int(rid) if rid.isdigit() else -1)


def _cached(ident: Identifier) -> Path | None:
    hits = [e for e in cache_entries() if _names(e, ident)]
    if not hits:
        return None
    newest = max(hits, key=_newness)  # a concept: the newest version held
    if not Path(newest["path"]).is_dir():
        return None
    mark_used(Path(newest["dir"]))  # the cache's size limit evicts the least recently used
    return Path(newest["path"])


def clear_cache(ref: str | None = None) -> int:
    """Remove every cached bundle and partial download, or only the entries of `ref`;
    returns how many entries were removed."""
    entries = cache_entries()
    if ref is not None:
        ident = identifier(ref)
        if ident is None:
            raise RetrievalError(f"{ref}: not a DOI or record URL; `servable cache list` "
                                 "shows what the cache holds")
        entries = [e for e in entries if _names(e, ident)]
    for e in entries:
        shutil.rmtree(e["dir"], ignore_errors=True)
    if ref is None:
        shutil.rmtree(cache_root() / "downloads", ignore_errors=True)
        for stale in _bundles().glob(".incoming-*"):  # left by a killed process
            shutil.rmtree(stale, ignore_errors=True)
    return len(entries)


def _bundle_file(record: Record, what: str) -> ArchivedFile:
    """The record's bundle archive: a .zip, `NAME-VERSION.zip` first; size and MD5 checked."""
    files = sorted((f for f in record.files if f.key.endswith(".zip")),
                   key=lambda f: (not f.key.endswith(f"-{record.version}.zip"), f.key))
    if not files:
        names = ", ".join(f.key for f in record.files) or "none"
        raise RetrievalError(f"{what}: the record holds no servable bundle (no .zip among "
                             f"its files: {names})")
    f = files[0]
    if isinstance(f.size, bool) or not isinstance(f.size, int) or \
            not 0 < f.size <= MAX_BUNDLE_BYTES:
        raise RetrievalError(f"{what}: {f.key} declares size {f.size!r}; at most "
                             f"{MAX_BUNDLE_BYTES >> 20} MiB is accepted")
    if not re.fullmatch(r"md5:[0-9a-f]{32}", f.checksum):
        raise RetrievalError(f"{what}: {f.key} has no md5 checksum in the record")
    return f


def _download(url: str, part: Path, size: int, md5: str, label: str) -> None:
    """Download `url` into `part`, resuming from its current length; checks size and MD5."""
    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    if have >= size:
        part.unlink()
        have = 0
    url, response = follow(url, label, {"Range": f"bytes={have}-"} if have else {})
    if response.status == 206 and str(response.headers.get("Content-Range", "")).startswith(
            f"bytes {have}-"):
        flags = os.O_WRONLY | os.O_APPEND
    elif response.status == 200:
        have, flags = 0, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    else:
        raise RetrievalError(f"{label}: download answered {response.status} at {url}")
    fd = os.open(part, flags | os.O_NOFOLLOW, 0o600)
    done = have
    with os.fdopen(fd, "wb") as out, tqdm(total=size, initial=have, unit="B", unit_scale=True,
                                          desc=label, disable=None, leave=False) as bar:
        try:
            while chunk := response.read(1 << 20):
                done += len(chunk)
                if done > size:
                    raise RetrievalError(f"{label}: the server sent more than the {size} "
                                         "bytes the record declares")
                out.write(chunk)
                bar.update(len(chunk))
        except (OSError, ValueError, http.client.HTTPException) as exc:  # dropped mid-body
            raise RetrievalError(f"{label}: the download stopped at {done} of {size} bytes "
                                 f"({exc.__class__.__name__}); run again to resume") from None
    if done < size:
        raise RetrievalError(f"{label}: the download stopped at {done} of {size} bytes; run "
                             "again to resume")
    h = hashlib.md5()  # noqa: S324 - the record's checksum, then the bundle's SHA-256s
    with open(part, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    if h.hexdigest() != md5:
        part.unlink()
        raise RetrievalError(f"{label}: MD5 {h.hexdigest()} does not match the record's "
                             f"{md5}; the file was corrupted in transit (run again)")


def retrieve(ident: Identifier, refresh: bool = False) -> Path:
    """The cached bundle folder of `ident`, retrieved first when the cache lacks it (or,
    with `refresh`, when the newest record is not the one cached)."""
    if not refresh:
        cached = _cached(ident)
        if cached is not None:
            return cached
    limit = max_bytes()  # a bad $SERVABLE_CACHE_MAX is refused before any request
    record = fetch_record(ident)
    what, site, rid = str(ident), record.site, record.id
    key = _entry_key(site, rid)
    root = _bundles()
    held = _cached(Identifier(site=site, record_id=rid))  # e.g. a concept's newest, held
    if held is not None:
        return held
    f = _bundle_file(record, what)
    downloads = cache_root() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    part = downloads / f"{key}-{re.sub(r'[^A-Za-z0-9._-]', '_', f.key)}.part"
    _download(f.url, part, f.size, f.checksum.removeprefix("md5:"), f.key)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))  # not an entry until renamed
    try:
        folder = unpack(part, tmp / "bundle", f.key)
        try:
            manifest = verify(folder)
        except BundleError as exc:
            raise RetrievalError(f"{what}: the archived bundle does not verify: {exc}") \
                from None
        doi = record.doi
        if manifest.get("doi") and doi and manifest["doi"].lower() != str(doi).lower():
            raise RetrievalError(f"{what}: the archived bundle names DOI {manifest['doi']} "
                                 f"but sits in the record of {doi}; refusing it")
        entry = {"key": key, "doi": doi, "concept_doi": record.concept_doi,
                 "record_id": rid, "version_index": record.version_index, "site": site,
                 "file": f.key, "md5": f.checksum,
                 "bundle": f"bundle/{folder.name}", "name": manifest["name"],
                 "version": str(manifest["version"]), "digest": manifest["digest"]}
        (tmp / "entry.json").write_text(json.dumps(entry, indent=2))
        try:
            os.rename(tmp, root / key)
        except OSError:  # another process cached it meanwhile
            if not (root / key / "entry.json").is_file():
                raise
    finally:  # complete and MD5-checked: kept or refused, it is not needed again
        shutil.rmtree(tmp, ignore_errors=True)
        part.unlink(missing_ok=True)
    evict(root, keep=root / key, limit=limit)
    return root / key / "bundle" / folder.name
