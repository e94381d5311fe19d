"""Bundles retrieved by their identifier (FAIR A1): DOI -> resolver -> Zenodo record -> cache.

A DOI (`10.5281/zenodo.N`, `doi:...`, `https://doi.org/...`) is resolved the standard way:
the DOI resolver answers a redirect to the record's landing page (`{site}/records/{id}`),
and the record comes from the site's records API (`GET {site}/api/records/{id}`; a concept
DOI, whose id the records API does not serve, through `/api/records/{id}/versions/latest`).
A Zenodo record URL skips the resolver. The record's bundle archive (`NAME-VERSION.zip`) is
downloaded with a progress bar, resumed with an HTTP Range request after an interruption,
checked against the record's MD5, unpacked without letting any member out of its folder
(no absolute paths, no `..`, no links, size limits), verified (every byte of the bundle,
`servable.bundle.manifest`) and only then moved into the cache in one rename: a failure
leaves no half-written entry, only the resumable partial download.

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
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from servable.bundle.archive import MAX_BUNDLE_BYTES, unpack
from servable.bundle.cache_limit import evict, mark_used, max_bytes
from servable.bundle.manifest import BundleError, verify
from servable.bundle.record import DOI_RE
from servable.errors import ServableError
from servable.version import __version__

CACHE_ENV, RESOLVER_ENV = "SERVABLE_CACHE", "SERVABLE_DOI_RESOLVER"
RESOLVER = "https://doi.org"
TIMEOUT = 60.0
DOI_PREFIXES = ("doi:", "https://doi.org/", "http://doi.org/", "https://dx.doi.org/",
                "http://dx.doi.org/")
RECORD_URL = re.compile(r"^(https?://[^/?#]+)/(?:api/)?records?/(\d+)(?:[/?#].*)?$")


class RetrievalError(ServableError):
    """A bundle that could not be retrieved by its identifier."""


@dataclass(frozen=True)
class Identifier:
    """A DOI, or a record (site and id) on a Zenodo-like site."""

    doi: str | None = None
    site: str | None = None
    record_id: str | None = None

    def __str__(self) -> str:
        return self.doi or f"{self.site}/records/{self.record_id}"


def identifier(ref: str) -> Identifier | None:
    """The identifier `ref` names, or None when it is neither a DOI nor a record URL."""
    text = ref.strip()
    for prefix in DOI_PREFIXES:
        if text.lower().startswith(prefix):
            doi = urllib.parse.unquote(text[len(prefix):])
            if not DOI_RE.match(doi):
                raise RetrievalError(f"{ref}: {doi!r} is not a DOI (10.NNNN/suffix)")
            return Identifier(doi=doi)
    if DOI_RE.match(text):
        return Identifier(doi=text)
    m = RECORD_URL.match(text)
    if m:
        return Identifier(site=m.group(1), record_id=m.group(2))
    return None


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
        if (isinstance(entry, dict) and isinstance(entry.get("bundle"), str)
                and re.fullmatch(r"[0-9]{1,19}", str(entry.get("record_id")))):
            entry["dir"], entry["path"] = str(path.parent), str(path.parent / entry["bundle"])
            out.append(entry)
    return out


def _names(entry: dict, ident: Identifier) -> bool:
    """Whether a cache entry is what `ident` names (its DOI, concept DOI or record)."""
    if ident.doi:
        return ident.doi.lower() in (str(entry.get("doi")).lower(),
                                     str(entry.get("concept_doi")).lower())
    return entry.get("key") == _entry_key(ident.site, ident.record_id)


def _cached(ident: Identifier) -> Path | None:
    hits = [e for e in cache_entries() if _names(e, ident)]
    if not hits:
        return None
    newest = max(hits, key=lambda e: int(e["record_id"]))  # a concept: newest held
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


# -- HTTP --------------------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise RetrievalError(f"{url}: refusing a non-HTTPS address (only the local machine "
                             "may serve over plain HTTP)")


def _open(url: str, headers: dict | None = None, follow: bool = True):
    """The response to GET `url` (an HTTPError is returned too: callers read its status)."""
    _check_url(url)
    request = urllib.request.Request(url, headers={
        "User-Agent": f"servable/{__version__}", **(headers or {})})
    opener = urllib.request.build_opener(*([] if follow else [_NoRedirect]))
    try:
        response = opener.open(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        return exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RetrievalError(f"{url}: no answer ({reason}); check the network and run again")\
            from None
    _check_url(response.geturl())  # where redirects led
    return response


def _json(url: str, what: str, missing_ok: bool = False) -> dict | None:
    """The record at `url`; None for a 404 when `missing_ok`."""
    response = _open(url, {"Accept": "application/json"})
    status = response.status
    if status == 410:
        raise RetrievalError(f"{what}: the record was deleted (410 Gone at {url})")
    if status == 404:
        if missing_ok:
            return None
        raise RetrievalError(f"{what}: no such record (404 at {url})")
    if status != 200:
        raise RetrievalError(f"{what}: the records API answered {status} at {url}; run "
                             "again later")
    try:
        body = json.loads(response.read(16 << 20))
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        raise RetrievalError(f"{what}: {url} did not answer JSON") from None
    if not isinstance(body, dict):
        raise RetrievalError(f"{what}: {url} answered JSON that is not a record")
    return body


def _landing(doi: str) -> tuple[str, str]:
    """(site, record id) of the landing page a DOI resolves to."""
    resolver = os.environ.get(RESOLVER_ENV, RESOLVER).rstrip("/")
    url = f"{resolver}/{urllib.parse.quote(doi, safe='/')}"
    response = _open(url, follow=False)
    if response.status == 404:
        raise RetrievalError(f"{doi}: the DOI resolver does not know this DOI (404); check it")
    location = response.headers.get("Location")
    if response.status not in (301, 302, 303, 307, 308) or not location:
        raise RetrievalError(f"{doi}: the DOI resolver answered {response.status} without "
                             "a redirect to a landing page")
    m = RECORD_URL.match(urllib.parse.urljoin(url, location))
    if not m:
        raise RetrievalError(f"{doi}: resolves to {location}, which is not a Zenodo record; "
                             "servable loads bundles archived on Zenodo or InvenioRDM sites")
    return m.group(1), m.group(2)


def fetch_record(ident: Identifier) -> tuple[str, dict]:
    """(site, record JSON) of an identifier: a concept resolves to its newest version."""
    site, rid = (ident.site, ident.record_id) if ident.record_id else _landing(ident.doi)
    api = f"{site}/api/records/{rid}"
    record = _json(api, str(ident), missing_ok=True)
    if record is None:  # a concept id: the records API serves only versions
        record = _json(f"{api}/versions/latest", str(ident))
    return site, record


def _shown(value) -> str:
    """A value from the record as one short line of a message."""
    return value[:80] if isinstance(value, str) and value.isprintable() else repr(value)[:80]


def _bundle_file(record: dict, what: str) -> dict:
    """The record's bundle archive: a `.zip` among its files (`NAME-VERSION.zip` first),
    with a plausible size and an MD5 checksum. Any JSON may arrive here: every field is
    checked for its type before it is used."""
    listed = record.get("files")
    listed = [f for f in listed if isinstance(f, dict)] if isinstance(listed, list) else []
    files = [f for f in listed if isinstance(f.get("key"), str) and f["key"].endswith(".zip")]
    metadata = record.get("metadata")
    version = str(metadata.get("version", "")) if isinstance(metadata, dict) else ""
    files.sort(key=lambda f: (not f["key"].endswith(f"-{version}.zip"), f["key"]))
    if not files:
        names = ", ".join(_shown(f.get("key")) for f in listed[:20]) or "none"
        raise RetrievalError(f"{what}: the record holds no servable bundle (no .zip among "
                             f"its files: {names})")
    f = files[0]
    key = _shown(f["key"])
    size = f.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_BUNDLE_BYTES:
        raise RetrievalError(f"{what}: {key} declares size {size!r:.40}; at most "
                             f"{MAX_BUNDLE_BYTES >> 20} MiB is accepted")
    checksum = f.get("checksum")
    if not (isinstance(checksum, str) and re.fullmatch(r"md5:[0-9a-f]{32}", checksum)):
        raise RetrievalError(f"{what}: {key} has no md5 checksum (md5:<32 hex digits>) in the "
                             "record")
    return f


def _record_id(record: dict, what: str) -> str:
    """The record's id: decimal digits (ASCII only: it names the cache entry)."""
    rid = record.get("id") or record.get("recid")
    rid = str(rid) if isinstance(rid, (int, str)) and not isinstance(rid, bool) else ""
    if not re.fullmatch(r"[0-9]{1,19}", rid):
        raise RetrievalError(f"{what}: the record has no numeric id")
    return rid


def _file_url(f: dict, site: str, rid: str, what: str) -> str:
    """Where the archive is downloaded from: the record's `links.self`, else the records
    API's content route; an address that is not one (not text, spaces or control
    characters, no host) is refused here, before any request."""
    links = f.get("links")
    url = links.get("self") if isinstance(links, dict) else None
    if url is None:
        url = f"{site}/api/records/{rid}/files/{urllib.parse.quote(f['key'])}/content"
    try:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    except ValueError:  # an unbalanced [ in the host
        parts = None
    if (parts is None or not parts.hostname or parts.scheme not in ("http", "https")
            or re.search(r"[\x00-\x20\x7f]", url) or len(url) > 2000):
        raise RetrievalError(f"{what}: the record's download link {url!r:.100} is not an "
                             "address of a file")
    return url


def _download(url: str, part: Path, size: int, md5: str, label: str) -> None:
    """Download `url` into `part`, resuming from its current length; checks size and MD5."""
    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    if have >= size:
        part.unlink()
        have = 0
    response = _open(url, {"Range": f"bytes={have}-"} if have else {})
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
    site, record = fetch_record(ident)
    what = str(ident)
    rid = _record_id(record, what)
    key = _entry_key(site, rid)
    root = _bundles()
    held = _cached(Identifier(site=site, record_id=rid))  # e.g. a concept's newest, held
    if held is not None:
        return held
    f = _bundle_file(record, what)
    url = _file_url(f, site, rid, what)
    downloads = cache_root() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    part = downloads / f"{key}-{re.sub(r'[^A-Za-z0-9._-]', '_', f['key'])}.part"
    _download(url, part, f["size"], f["checksum"].removeprefix("md5:"), f["key"])
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))  # not an entry until renamed
    try:
        folder = unpack(part, tmp / "bundle", f["key"])
        try:
            manifest = verify(folder)
        except BundleError as exc:
            raise RetrievalError(f"{what}: the archived bundle does not verify: {exc}") \
                from None
        doi = record.get("doi")
        if manifest.get("doi") and doi and manifest["doi"].lower() != str(doi).lower():
            raise RetrievalError(f"{what}: the archived bundle names DOI {manifest['doi']} "
                                 f"but sits in the record of {doi}; refusing it")
        entry = {"key": key, "doi": doi, "concept_doi": record.get("conceptdoi"),
                 "record_id": rid, "site": site, "file": f["key"], "md5": f["checksum"],
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
