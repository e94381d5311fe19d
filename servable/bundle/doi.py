"""Identifiers resolved to an archived record: DOI or record URL -> redirect chain -> records API.

The forms users paste: `10.5281/zenodo.N`, `doi:...`, `https://doi.org/...` (or dx.doi.org),
a site's DOI resolver `https://zenodo.org/doi/10.5281/zenodo.N` (what Zenodo's badges link
to), and record URLs `https://zenodo.org/records/N`, `.../record/N` (the old form),
`.../api/records/N`, on zenodo.org, sandbox.zenodo.org or any InvenioRDM site (record ids
such as `cbc2k-q9x58`).

How a DOI resolves today: doi.org answers 302 to the site's DOI resolver
(`https://zenodo.org/doi/10.5281/zenodo.N`), which answers 302 to the record's landing page
`/records/<id>` (for a concept DOI, the newest version's record). The chain is followed one
hop at a time, never assuming the first redirect is the record: every hop must be HTTPS (or
plain HTTP on this machine's loopback, for test servers), at most `MAX_HOPS` redirects, a URL
seen twice is a loop; the chain must end at a record URL of the site, whose records API
(`{site}/api/records/<id>`) then describes the record. The records API answers in one of the
two JSON forms InvenioRDM sites serve: Zenodo's `files: [{key, size, checksum, links}]` or
InvenioRDM's `files: {enabled, entries: {key: {...}}}` (entries omitted: the record's files
endpoint `/api/records/<id>/files` lists them). Both are read into one `Record`.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from servable.bundle.record import DOI_RE
from servable.errors import ServableError
from servable.version import __version__

RESOLVER_ENV, RESOLVER = "SERVABLE_DOI_RESOLVER", "https://doi.org"
TIMEOUT = 60.0
MAX_HOPS = 10
REDIRECTS = (301, 302, 303, 307, 308)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
DOI_PREFIXES = ("doi:", "https://doi.org/", "http://doi.org/", "https://dx.doi.org/",
                "http://dx.doi.org/")
RECORD_ID = r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"  # Zenodo: digits; InvenioRDM: cbc2k-q9x58
# a record's landing page, its old form, its API URL, or one of its files
RECORD_PATH = re.compile(rf"^/(?:api/)?records?/({RECORD_ID})(?:/files/.*|/)?$")
SITE_DOI_PATH = re.compile(r"^/doi/(10\..+)$")


class RetrievalError(ServableError):
    """A bundle that could not be retrieved by its identifier."""


@dataclass(frozen=True)
class Identifier:
    """A DOI (optionally with the site resolver URL it was given as), or a record on a
    Zenodo or InvenioRDM site (site root and record id)."""

    doi: str | None = None
    site: str | None = None
    record_id: str | None = None
    url: str | None = None  # where to start resolving the DOI instead of the DOI resolver

    def __str__(self) -> str:
        return self.doi or f"{self.site}/records/{self.record_id}"


@dataclass(frozen=True)
class ArchivedFile:
    """One file of a record: name, size, checksum as the record states it, content URL."""

    key: str
    size: object
    checksum: str
    url: str


@dataclass(frozen=True)
class Record:
    """What retrieval needs of a record, whichever JSON form the records API answered."""

    site: str
    id: str
    doi: str | None
    concept_doi: str | None
    version: str
    version_index: int | None  # position among the concept's versions (newest: highest)
    files: list[ArchivedFile] = field(default_factory=list)


def _doi(text: str, ref: str) -> str:
    doi = urllib.parse.unquote(text)
    if not DOI_RE.match(doi):
        raise RetrievalError(f"{ref}: {doi!r} is not a DOI (10.NNNN/suffix)")
    return doi


def identifier(ref: str) -> Identifier | None:
    """The identifier `ref` names, or None when it is neither a DOI nor a record or DOI URL
    of a site."""
    text = ref.strip()
    for prefix in DOI_PREFIXES:
        if text.lower().startswith(prefix):
            return Identifier(doi=_doi(text[len(prefix):], ref))
    if DOI_RE.match(text):
        return Identifier(doi=text)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    site = f"{parts.scheme}://{parts.netloc}"
    m = SITE_DOI_PATH.match(parts.path)
    if m:  # a site's own DOI resolver (Zenodo's badge URL)
        doi = _doi(m.group(1), ref)
        return Identifier(doi=doi, url=f"{site}/doi/{urllib.parse.quote(doi, safe='/')}")
    m = RECORD_PATH.match(parts.path)
    return Identifier(site=site, record_id=m.group(1)) if m else None


def record_at(url: str) -> tuple[str, str] | None:
    """(site, record id) when `url` is a record URL (landing page, old form, API, file)."""
    parts = urllib.parse.urlsplit(url)
    m = RECORD_PATH.match(parts.path)
    return (f"{parts.scheme}://{parts.netloc}", m.group(1)) if m and parts.netloc else None


# -- HTTP, one hop at a time ----------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # each hop is checked by `follow`, not followed by urllib


def check_url(url: str) -> None:
    """Refuse anything but HTTPS, except plain HTTP on this machine's loopback (tests)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
        raise RetrievalError(f"{url}: refusing a non-HTTPS address (only the local machine "
                             "may serve over plain HTTP)")


def _get(url: str, headers: dict | None):
    """One GET, redirects not followed (an HTTPError is returned: callers read its status)."""
    request = urllib.request.Request(url, headers={
        "User-Agent": f"servable/{__version__}", **(headers or {})})
    try:
        return urllib.request.build_opener(_NoRedirect).open(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        return exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RetrievalError(f"{url}: no answer ({reason}); check the network and run again")\
            from None


def follow(start: str, what: str, headers: dict | None = None, stop=None):
    """GET `start` following redirects hop by hop, each hop checked (`check_url`), at most
    `MAX_HOPS`, a loop refused. Returns (url, response) of the first answer that is not a
    redirect, or (url, stop(url)) as soon as `stop` recognises a URL of the chain."""
    url, seen = start, []
    while True:
        check_url(url)
        if stop is not None and (found := stop(url)) is not None:
            return url, found
        response = _get(url, headers)
        if response.status not in REDIRECTS:
            return url, response
        location = response.headers.get("Location")
        response.close()
        if not location:
            raise RetrievalError(f"{what}: {url} answered {response.status} without a "
                                 "Location to redirect to")
        seen.append(url)
        url = urllib.parse.urljoin(url, location)
        if url in seen:
            raise RetrievalError(f"{what}: the redirects from {start} loop back to {url} "
                                 f"after {len(seen)} hop(s); the resolver or the site is "
                                 "misconfigured (report it to the site)")
        if len(seen) > MAX_HOPS:
            raise RetrievalError(f"{what}: more than {MAX_HOPS} redirects from {start}; "
                                 "refusing to follow further (report it to the site)")


# -- resolution and the records API ---------------------------------------------------------
def landing(ident: Identifier) -> tuple[str, str]:
    """(site, record id) the DOI of `ident` resolves to, through the whole redirect chain."""
    doi = ident.doi
    start = ident.url or (os.environ.get(RESOLVER_ENV, RESOLVER).rstrip("/") + "/"
                          + urllib.parse.quote(doi, safe="/"))
    url, answer = follow(start, doi, stop=record_at)
    if isinstance(answer, tuple):
        return answer
    status = answer.status
    answer.close()
    if status == 404 and url == start:
        who = "the DOI resolver" if ident.url is None else start
        raise RetrievalError(f"{doi}: {who} does not know this DOI (404); check it")
    if status == 410:
        raise RetrievalError(f"{doi}: the record was deleted (410 Gone at {url})")
    raise RetrievalError(f"{doi}: resolves to {url} ({status}), which is not a record of a "
                         "Zenodo or InvenioRDM site; servable loads bundles archived on "
                         "Zenodo or InvenioRDM sites")


def _json(url: str, what: str, missing_ok: bool = False) -> dict | None:
    """The JSON object at `url`; None for a 404 when `missing_ok`."""
    url, response = follow(url, what, {"Accept": "application/json"})
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
    except ValueError:
        raise RetrievalError(f"{what}: {url} did not answer JSON; it is not the records API "
                             "of a Zenodo or InvenioRDM site") from None
    if not isinstance(body, dict):
        raise RetrievalError(f"{what}: {url} answered JSON that is not a record")
    return body


def fetch_record(ident: Identifier) -> Record:
    """The record an identifier names; a concept (its id or DOI) gives its newest version."""
    site, rid = (ident.site, ident.record_id) if ident.record_id else landing(ident)
    api = f"{site}/api/records/{rid}"
    body = _json(api, str(ident), missing_ok=True)
    if body is None:  # a concept id: the records API serves only versions
        body = _json(f"{api}/versions/latest", str(ident))
    return read_record(site, body, str(ident))


def _dict(body: dict, key: str) -> dict:
    """`body[key]` when it is a mapping, else {}: any field of a records API answer may be
    missing or of another type."""
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _pid(value) -> str | None:
    """A DOI as the records API gives it: a string, or InvenioRDM's {identifier: ...}."""
    if isinstance(value, dict):
        value = value.get("identifier")
    return value if isinstance(value, str) and value else None


def read_record(site: str, body: dict, what: str) -> Record:
    """A records API answer in either JSON form (Zenodo's or InvenioRDM's) as a `Record`."""
    rid = str(body.get("id") or body.get("recid") or "")
    if not re.fullmatch(RECORD_ID, rid):
        raise RetrievalError(f"{what}: the records API answered a record without an id")
    meta, pids, parent, versions, links = (_dict(body, k) for k in (
        "metadata", "pids", "parent", "versions", "links"))
    relations = _dict(meta, "relations").get("version")  # Zenodo's form: [{index, ...}]
    relation = relations[0] if isinstance(relations, list) and relations and \
        isinstance(relations[0], dict) else {}
    index = versions.get("index", relation.get("index"))
    files = body.get("files")
    if isinstance(files, dict):  # InvenioRDM: {enabled, entries: {key: {...}}}
        entries = files.get("entries")
        if entries is None and files.get("enabled", True):
            link = links.get("files") or f"{site}/api/records/{rid}/files"
            entries = _json(str(link), what).get("entries")
        if isinstance(entries, dict):
            entries = [{"key": k, **v} for k, v in entries.items() if isinstance(v, dict)]
        files = entries
    out = []
    for f in files if isinstance(files, list) else []:
        if not isinstance(f, dict) or not isinstance(f.get("key"), str):
            continue
        content, own = _dict(f, "links").get("content"), str(_dict(f, "links").get("self"))
        # InvenioRDM: links.content; Zenodo: links.self is the content; else the API's route
        url = content if isinstance(content, str) and content else own if own.endswith(
            "/content") else f"{site}/api/records/{rid}/files/{urllib.parse.quote(f['key'])}" \
            "/content"
        out.append(ArchivedFile(f["key"], f.get("size"), str(f.get("checksum") or ""), url))
    return Record(site=site, id=rid, doi=_pid(body.get("doi")) or _pid(pids.get("doi")),
                  concept_doi=_pid(body.get("conceptdoi")) or _pid(_dict(parent, "pids")
                                                                   .get("doi")),
                  version=str(meta.get("version") or ""),
                  version_index=index if isinstance(index, int) else None, files=out)
