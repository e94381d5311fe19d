"""The public side of the Zenodo-like test server: a doi.org-like resolver, DOI and record
landing pages, the records API in both JSON forms, file content.

Answers as the real services do (what was followed):
- doi.org (DOI Handbook, "DOI Resolution Documentation": the proxy looks the DOI up and sends
  an HTTP redirect to the URL in its handle record; a DOI it does not know is 404):
  `GET /<doi>` -> 302 `Location: {site}/doi/<doi>` (the URL Zenodo registers), 404 otherwise.
- The site's DOI resolver (invenio-app-rdm `records_ui/views/records.py`, `record_from_pid`:
  `redirect(record["links"]["self_html"], code=302)` on the route
  `/<any(doi):pid_scheme>/<path:pid_value>`; a concept (parent) DOI resolves to the newest
  version): `GET /doi/<doi>` -> 302 `{site}/records/<id>`; 404 for an unknown DOI, 410 for
  a deleted record (its tombstone).
- Landing pages: `/records/<id>` 200 (a concept id: 302 to its newest version, as
  zenodo.org does, zenodo/zenodo#2499); the old form `/record/<id>` 301 to `/records/<id>`.
- Records API: `GET /api/records/<id>` (404 for a concept id, zenodo/zenodo#2499; 410 for a
  deleted record), `/versions/latest` (302), `/files` (InvenioRDM's listing:
  `{enabled, entries: [...], links}`) and `/files/<key>/content` (`ETag`, `Accept-Ranges`,
  `Range` answered 206 with `Content-Range`, 416 past the end).
  Two JSON forms (InvenioRDM REST API reference, "Drafts and Records"): `flavour="zenodo"`,
  Zenodo's serialisation (numeric `id`, `doi`, `conceptdoi`, `metadata.relations.version`,
  `files: [{id, key, size, checksum "md5:...", links.self -> content}]`); `flavour="invenio"`,
  a plain InvenioRDM instance (ids like `0a3f1-4c2e9`, `pids.doi.identifier`,
  `parent.pids.doi`, `versions.index`, `files: {enabled, count, total_bytes, entries:
  {key: {key, size, checksum, links: {self, content}}}}`; with `inline_entries=False` the
  record omits `entries` and only the files endpoint lists them).

Tests redirect anything: `registry[doi] = location` on the resolver, `redirects[path] =
location` on the site (loops, chains that end outside a record).
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "10.5072/zenodo."  # sandbox-style DOIs: PREFIX + deposition or concept id


def rdm_id(i: int) -> str:
    """An InvenioRDM-style record id (two groups of five base-32 characters) for id `i`."""
    return f"{i:05x}-{(i * 7919) % 0xFFFFF:05x}"


class PublicSite:
    """Mixed into the site's request handler: the routes anyone may GET."""

    app: object

    def _page(self, status: int, text: str, headers: dict | None = None):
        data = f"<html><body>{text}</body></html>".encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _public(self, path: str):
        app = self.app
        if path in app.redirects:
            return self._page(302, "Redirecting", {"Location": app.redirects[path]})
        if path == "/":
            return self._page(200, "the site's home page")
        m = re.fullmatch(r"/doi/(.+)", path)
        if m:
            dep = app.by_doi(urllib.parse.unquote(m.group(1)))
            if dep is None:
                return self._page(404, "DOI not found")
            if dep["id"] in app.deleted:
                return self._page(410, "Tombstone: the record was deleted")
            return self._page(302, "Redirecting", {
                "Location": f"{app.url}/records/{app.public_id(dep['id'])}"})
        m = re.fullmatch(r"/record/([^/]+)", path)
        if m:  # the old form of the landing page
            return self._page(301, "Moved", {"Location": f"{app.url}/records/{m.group(1)}"})
        m = re.fullmatch(r"/records/([^/]+)", path)
        if m:  # the landing page; a concept id redirects to its newest version
            i = app.internal_id(m.group(1))
            latest = app.latest(i) if i is not None else None
            if latest and not app.published(i):
                return self._page(302, "Redirecting", {
                    "Location": f"{app.url}/records/{app.public_id(latest['id'])}"})
            if i in app.deleted:
                return self._page(410, "Tombstone: the record was deleted")
            return self._page(200 if app.published(i) else 404, f"record {m.group(1)}")
        m = re.fullmatch(r"/api/records/([^/]+)(/versions/latest|/files|/files/(.+)/content)?",
                         path)
        if not m:
            return self._error(404, "Not found.")
        i, rest, key = app.internal_id(m.group(1)), m.group(2) or "", m.group(3)
        if i in app.deleted:
            return self._error(410, "The record has been deleted.")
        if rest == "/versions/latest":
            concept = app.published(i)["concept"] if app.published(i) else i
            latest = app.latest(concept) if concept is not None else None
            if latest is None:
                return self._error(404, "The persistent identifier does not exist.")
            return self._send(302, None, {
                "Location": f"{app.url}/api/records/{app.public_id(latest['id'])}"})
        dep = app.published(i) if i is not None else None
        if dep is None:  # a draft, an unknown id, or a concept id: not a record here
            return self._error(404, "The persistent identifier does not exist.")
        if rest == "/files":
            return self._send(200, {"enabled": True, "entries": list(
                file_entries(app, dep).values()), "links": {
                "self": f"{app.url}/api/records/{app.public_id(dep['id'])}/files"}})
        if key is None:
            return self._send(200, record_json(app, dep))
        f = dep["files"].get(urllib.parse.unquote(key))
        if f is None:
            return self._error(404, "The file does not exist.")
        return self._content(f["data"], f["md5"])

    def _content(self, data: bytes, md5: str):
        app = self.app
        asked = self.headers.get("Range")
        app.ranges.append(asked)
        start = 0
        if asked:
            m = re.fullmatch(r"bytes=(\d+)-", asked)
            start = int(m.group(1)) if m else len(data)
            if start >= len(data):
                return self._send(416, None, {"Content-Range": f"bytes */{len(data)}"})
        body = data[start:]
        self.send_response(206 if asked else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{md5}"')
        if asked:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if app.drop_after is not None:  # the connection drops half-way, once
            cut, app.drop_after = app.drop_after, None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


def _version_index(app, dep: dict) -> int:
    """1-based position of a published deposition among its concept's versions."""
    ids = sorted(d["id"] for d in app.depositions.values()
                 if d["concept"] == dep["concept"] and d["submitted"])
    return ids.index(dep["id"]) + 1


def file_entries(app, dep: dict) -> dict[str, dict]:
    """The record's files as InvenioRDM lists them, by key."""
    base = f"{app.url}/api/records/{app.public_id(dep['id'])}/files"
    return {name: {"id": f["id"], "key": name, "size": len(f["data"]), "checksum": f["md5"],
                   "mimetype": "application/octet-stream", "ext": name.rpartition(".")[2],
                   "storage_class": "L", "metadata": {},
                   "links": {"self": f"{base}/{urllib.parse.quote(name)}",
                             "content": f"{base}/{urllib.parse.quote(name)}/content"}}
            for name, f in dep["files"].items()}


def record_json(app, dep: dict) -> dict:
    """The records API's answer for a published deposition, in the server's flavour."""
    base, i, concept = app.url, dep["id"], dep["concept"]
    meta = {k: v for k, v in dep["metadata"].items() if k != "prereserve_doi"}
    index = _version_index(app, dep)
    latest = app.latest(concept)
    is_latest = latest is not None and latest["id"] == i
    if app.flavour == "zenodo":
        return {"id": i, "recid": str(i), "doi": dep["doi"], "conceptrecid": str(concept),
                "conceptdoi": f"{PREFIX}{concept}", "status": "published",
                "doi_url": f"https://doi.org/{dep['doi']}",
                "metadata": {**meta, "relations": {"version": [{
                    "index": index - 1, "is_last": is_latest,
                    "parent": {"pid_type": "recid", "pid_value": str(concept)}}]}},
                "links": {"self": f"{base}/api/records/{i}", "self_html": f"{base}/records/{i}",
                          "parent": f"{base}/api/records/{concept}",
                          "latest": f"{base}/api/records/{i}/versions/latest"},
                "files": [{"id": e["id"], "key": e["key"], "size": e["size"],
                           "checksum": e["checksum"], "links": {"self": e["links"]["content"]}}
                          for e in file_entries(app, dep).values()]}
    pid, parent = app.public_id(i), app.public_id(concept)
    entries = file_entries(app, dep)
    files = {"enabled": True, "order": [], "count": len(entries),
             "total_bytes": sum(e["size"] for e in entries.values())}
    if app.inline_entries:
        files["entries"] = entries
    return {"id": pid, "is_published": True, "is_draft": False, "status": "published",
            "pids": {"doi": {"identifier": dep["doi"], "provider": "datacite",
                             "client": "datacite"}},
            "parent": {"id": parent, "pids": {"doi": {"identifier": f"{PREFIX}{concept}",
                                                      "provider": "datacite"}}},
            "metadata": {"title": meta.get("title"), "version": meta.get("version"),
                         "publication_date": meta.get("publication_date"),
                         "description": meta.get("description"),
                         "resource_type": {"id": meta.get("upload_type", "software")}},
            "versions": {"index": index, "is_latest": is_latest},
            "files": files,
            "links": {"self": f"{base}/api/records/{pid}", "self_html": f"{base}/records/{pid}",
                      "files": f"{base}/api/records/{pid}/files",
                      "latest": f"{base}/api/records/{pid}/versions/latest",
                      "latest_html": f"{base}/records/{pid}/latest"}}


class _ResolverHandler(BaseHTTPRequestHandler):
    app: object

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        app = self.app
        path = self.path.split("?")[0]
        app.resolver_log.append(path)
        doi = urllib.parse.unquote(path.lstrip("/"))
        location = app.registry.get(doi)
        if location is None and app.registered(doi):
            location = f"{app.url}/doi/{urllib.parse.quote(doi, safe='/')}"
        status, text = (302, "Redirecting") if location else (404, "DOI Not Found")
        data = f"<html><body>{text}</body></html>".encode()
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Resolver:
    """A doi.org-like resolver on its own port, answering for `app`'s DOIs."""

    def __init__(self, app):
        handler = type("ResolverHandler", (_ResolverHandler,), {"app": app})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

