"""A local server that behaves like Zenodo's legacy deposit API, for the publish tests.

Same routes, status codes and error shape as the real service: bearer-token
check (401), `POST /api/deposit/depositions` (201), `PUT {bucket}/{name}` (201, `md5:`
checksum), `PUT /api/deposit/depositions/{id}` with metadata validation (200, or 400 with
`{"status", "message", "errors": [{"field", "message"}]}`), `actions/publish` (202),
`actions/newversion` (201, draft at `links.latest_draft`), file deletion (204), rate-limit
headers and 429 past the limit. DOIs are sandbox-style (10.5072/zenodo.N).

The public side a reader uses, without a token, is in tests/zenodo_records.py: a doi.org-like
resolver on its own port (`resolver`), the site's DOI resolver and landing pages, the
records API in Zenodo's or InvenioRDM's JSON form (`flavour`), file content.

Tests inject failures per step (`fail[step] = [status, ...]`, or a callable run when the
step's request arrives, e.g. to kill the client), drop a download's connection after
`drop_after` bytes (once), mark records `deleted`, redirect anything (`registry` on the
resolver, `redirects` on the site), and read `log`, `resolver_log`, `ranges` and `uploads`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.zenodo_records import PREFIX, PublicSite, Resolver, rdm_id

UPLOAD_TYPES = {"publication", "poster", "presentation", "dataset", "image", "video",
                "software", "lesson", "physicalobject", "other"}
ACCESS = {"open", "embargoed", "restricted", "closed"}


class ZenodoLike:
    def __init__(self, token: str = "good-token", rate_limit: int = 100,
                 window: float = 60.0, flavour: str = "zenodo"):
        self.token, self.rate_limit, self.window = token, rate_limit, window
        self.flavour = flavour  # the records API's JSON form: "zenodo" or "invenio"
        self.inline_entries = True  # invenio: the record lists its files itself
        self.registry: dict[str, str] = {}  # resolver: DOI -> Location, overriding
        self.redirects: dict[str, str] = {}  # site: path -> Location, overriding
        self.resolver_log: list[str] = []
        self.throttled = 0
        self.depositions: dict[int, dict] = {}
        self.buckets: dict[str, int] = {}
        self.next_id = 1000
        self.fail: dict[str, list] = {}
        self.log: list[tuple[str, str]] = []
        self.uploads: list[tuple[int, str]] = []
        self.ranges: list[str | None] = []  # the Range header of each file download
        self.drop_after: int | None = None
        self.deleted: set[int] = set()
        self._window: list[float] = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"app": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._resolver = Resolver(self)
        self.resolver = self._resolver.url  # what $SERVABLE_DOI_RESOLVER points at

    def __enter__(self):
        self._thread.start()
        self._resolver.start()
        return self

    def __exit__(self, *exc):
        self._resolver.stop()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- state -----------------------------------------------------------------------
    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def view(self, dep: dict) -> dict:
        base, i = self.url, dep["id"]
        links = {"self": f"{base}/api/deposit/depositions/{i}",
                 "html": f"{base}/deposit/{i}",
                 "bucket": f"{base}/api/files/{dep['bucket']}",
                 "publish": f"{base}/api/deposit/depositions/{i}/actions/publish",
                 "newversion": f"{base}/api/deposit/depositions/{i}/actions/newversion",
                 "latest_draft": f"{base}/api/deposit/depositions/{dep['latest_draft']}"}
        if dep["submitted"]:
            links["record_html"] = f"{base}/records/{self.public_id(i)}"
            links["doi"] = f"https://doi.org/{dep['doi']}"
        out = {"id": i, "conceptrecid": str(dep["concept"]), "metadata": dep["metadata"],
               "state": "done" if dep["submitted"] else "unsubmitted",
               "submitted": dep["submitted"], "links": links,
               "files": [{"id": f["id"], "filename": name, "filesize": len(f["data"]),
                          "checksum": f["md5"]} for name, f in dep["files"].items()]}
        if dep["submitted"]:
            out["doi"] = dep["doi"]
            out["conceptdoi"] = f"{PREFIX}{dep['concept']}"
        return out

    def published(self, record_id: int) -> dict | None:
        dep = self.depositions.get(record_id)
        return dep if dep is not None and dep["submitted"] else None

    def latest(self, concept: int) -> dict | None:
        versions = [d for d in self.depositions.values() if d["concept"] == concept
                    and d["submitted"] and d["id"] not in self.deleted]
        return max(versions, key=lambda d: d["id"]) if versions else None

    def public_id(self, i: int) -> str:
        """A record's id as the public side shows it (InvenioRDM: not a number)."""
        return str(i) if self.flavour == "zenodo" else rdm_id(i)

    def internal_id(self, text: str) -> int | None:
        """The deposition or concept id a public id names, or None."""
        if self.flavour == "zenodo":
            return int(text) if text.isdigit() else None
        m = re.fullmatch(r"([0-9a-f]{5})-[0-9a-f]{5}", text)
        return int(m.group(1), 16) if m and rdm_id(int(m.group(1), 16)) == text else None

    def by_doi(self, doi: str) -> dict | None:
        """The published version a DOI names (a concept DOI: its newest version)."""
        m = re.fullmatch(re.escape(PREFIX) + r"(\d+)", doi)
        if not m:
            return None
        i = int(m.group(1))
        dep = self.depositions.get(i)
        if dep is not None and dep["submitted"]:
            return dep
        return self.latest(i)

    def registered(self, doi: str) -> bool:
        """Whether the resolver knows a DOI (minted: a published version or its concept)."""
        m = re.fullmatch(re.escape(PREFIX) + r"(\d+)", doi)
        return bool(m) and any(d["submitted"] and int(m.group(1)) in (d["id"], d["concept"])
                               for d in self.depositions.values())

    def add_record(self, files: dict[str, bytes], version: str = "1.0") -> str:
        """A published record holding `files` as they are (for hostile archives); its DOI."""
        dep = self.new_deposition({"title": "a record", "version": version})
        dep["files"] = {name: {"id": f"{dep['id']}-{name}", "data": data,
                               "md5": "md5:" + hashlib.md5(data).hexdigest()}  # noqa: S324
                        for name, data in files.items()}
        dep["submitted"], dep["doi"] = True, f"{PREFIX}{dep['id']}"
        return dep["doi"]

    def new_deposition(self, metadata: dict, concept: int | None = None,
                       files: dict | None = None) -> dict:
        i = self.new_id()
        bucket = hashlib.sha1(str(i).encode()).hexdigest()[:12]
        dep = {"id": i, "bucket": bucket, "metadata": {**metadata, "prereserve_doi": {
            "doi": f"{PREFIX}{i}", "recid": i}}, "files": dict(files or {}),
            "submitted": False, "concept": concept or self.new_id(), "latest_draft": i}
        self.depositions[i] = dep
        self.buckets[bucket] = i
        return dep


def validate_metadata(m: dict) -> list[dict]:
    errors = []

    def err(field, message):
        errors.append({"field": f"metadata.{field}", "message": message})

    if m.get("upload_type") not in UPLOAD_TYPES:
        err("upload_type", "Missing data for required field." if "upload_type" not in m
            else "Invalid upload type.")
    for field in ("title", "description"):
        if not m.get(field):
            err(field, "Missing data for required field.")
    creators = m.get("creators")
    if not creators:
        err("creators", "Missing data for required field.")
    else:
        for i, c in enumerate(creators):
            if not c.get("name"):
                err(f"creators.{i}.name", "Missing data for required field.")
            if c.get("orcid") and not re.match(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$", c["orcid"]):
                err(f"creators.{i}.orcid", "Not a valid ORCID identifier.")
    if m.get("access_right", "open") not in ACCESS:
        err("access_right", "Invalid access right.")
    if m.get("access_right", "open") in ("open", "embargoed") and not m.get("license"):
        err("license", "Required when access right is open or embargoed.")
    if m.get("publication_date") and not re.match(r"^\d{4}-\d{2}-\d{2}$",
                                                  m["publication_date"]):
        err("publication_date", "Not a valid date.")
    for i, r in enumerate(m.get("related_identifiers", [])):
        if not r.get("identifier") or not r.get("relation"):
            err(f"related_identifiers.{i}", "identifier and relation are required.")
    return errors


class _Handler(PublicSite, BaseHTTPRequestHandler):
    app: ZenodoLike

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body=None, headers=None):
        app = self.app
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        remaining = max(app.rate_limit - len(app._window), 0)
        self.send_header("X-RateLimit-Limit", str(app.rate_limit))
        self.send_header("X-RateLimit-Remaining", str(remaining))
        self.send_header("X-RateLimit-Reset", str(int(time.time() + app.window)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, errors=None):
        body = {"status": status, "message": message}
        if errors:
            body["errors"] = errors
        self._send(status, body)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _step(self, method: str, path: str) -> str:
        if method == "POST" and path == "/api/deposit/depositions":
            return "create"
        if method == "PUT" and path.startswith("/api/files/"):
            return "upload"
        if method == "PUT" and re.fullmatch(r"/api/deposit/depositions/\d+", path):
            return "metadata"
        if path.endswith("/actions/publish"):
            return "publish"
        if path.endswith("/actions/newversion"):
            return "newversion"
        return "other"

    def _handle(self, method: str):
        app = self.app
        path = self.path.split("?")[0]
        body = self._body() if method in ("POST", "PUT") else b""
        with app._lock:
            app.log.append((method, path))
            now = time.time()
            app._window = [t for t in app._window if now - t < app.window]
            if len(app._window) >= app.rate_limit:
                app.throttled += 1
                return self._send(429, {"status": 429, "message": "Too many requests."},
                                  {"Retry-After": "1"})
            app._window.append(now)
            if method == "GET" and (path == "/" or re.match(r"^/(doi|records?|api/records)/",
                                                            path)):
                return self._public(path)
            if self.headers.get("Authorization") != f"Bearer {app.token}":
                return self._error(401, "The server could not verify that you are authorized "
                                        "to access the URL requested.")
            step = self._step(method, path)
            pending = app.fail.get(step)
            if pending:
                action = pending.pop(0)
                if callable(action):
                    action()
                else:
                    return self._error(action, "Internal server error.")
            return self._route(method, path, body)

    def _route(self, method, path, body):
        app = self.app
        if path == "/api/deposit/depositions":
            if method == "GET":
                drafts = [app.view(d) for d in app.depositions.values() if not d["submitted"]]
                return self._send(200, drafts)
            payload = json.loads(body or b"{}")
            dep = app.new_deposition(payload.get("metadata") or {})
            return self._send(201, app.view(dep))
        m = re.fullmatch(r"/api/files/(\w+)/(.+)", path)
        if m:
            dep = app.depositions.get(app.buckets.get(m.group(1), -1))
            if dep is None:
                return self._error(404, "Bucket not found.")
            if dep["submitted"]:
                return self._error(403, "Bucket is locked (the record is published).")
            md5 = "md5:" + hashlib.md5(body).hexdigest()  # noqa: S324
            name = m.group(2)
            dep["files"][name] = {"id": f"{dep['id']}-{len(app.uploads)}", "data": body,
                                  "md5": md5}
            app.uploads.append((dep["id"], name))
            return self._send(201, {"key": name, "size": len(body), "checksum": md5,
                                    "mimetype": "application/octet-stream",
                                    "links": {"self": f"{app.url}{path}"}})
        m = re.fullmatch(r"/api/deposit/depositions/(\d+)(/.*)?", path)
        if not m or int(m.group(1)) not in app.depositions:
            return self._error(404, "PID does not exist.")
        dep, rest = app.depositions[int(m.group(1))], m.group(2) or ""
        if rest == "" and method == "GET":
            return self._send(200, app.view(dep))
        if rest == "" and method == "PUT":
            if dep["submitted"]:
                return self._error(400, "Validation error.", [{"field": "metadata", "message":
                                   "Published depositions must be edited with actions/edit."}])
            metadata = json.loads(body or b"{}").get("metadata") or {}
            errors = validate_metadata(metadata)
            if errors:
                return self._error(400, "Validation error.", errors)
            dep["metadata"] = {**metadata, "prereserve_doi": dep["metadata"].get(
                "prereserve_doi")}
            return self._send(200, app.view(dep))
        fm = re.fullmatch(r"/files/(.+)", rest)
        if fm and method == "DELETE":
            for name, f in list(dep["files"].items()):
                if f["id"] == fm.group(1):
                    del dep["files"][name]
                    return self._send(204)
            return self._error(404, "File does not exist.")
        if rest == "/actions/publish" and method == "POST":
            if dep["submitted"]:
                return self._error(400, "Validation error.", [{"field": "state", "message":
                                   "The deposition is already published."}])
            errors = validate_metadata(dep["metadata"])
            if not dep["files"]:
                errors.append({"field": "files", "message": "Minimum one file must be "
                                                            "provided."})
            if errors:
                return self._error(400, "Validation error.", errors)
            dep["submitted"], dep["doi"] = True, f"{PREFIX}{dep['id']}"
            return self._send(202, app.view(dep))
        if rest == "/actions/newversion" and method == "POST":
            if not dep["submitted"]:
                return self._error(400, "Validation error.", [{"field": "state", "message":
                                   "Only published depositions can get a new version."}])
            meta = {k: v for k, v in dep["metadata"].items() if k != "prereserve_doi"}
            draft = app.new_deposition(meta, concept=dep["concept"], files=dep["files"])
            for d in app.depositions.values():
                if d["concept"] == dep["concept"]:
                    d["latest_draft"] = draft["id"]
            return self._send(201, app.view(dep))
        return self._error(405, "Method not allowed.")

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")
