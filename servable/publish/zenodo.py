"""Mint a DOI for a bundle through Zenodo's deposit API (or any compatible InvenioRDM instance).

Steps: create a deposition (or `actions/newversion` of a published one), which reserves its
DOI (`metadata.prereserve_doi`); write that DOI and the concept DOI into the bundle
(servable.yaml, CITATION.cff, codemeta.json, RO-Crate, model card) and seal it anew; upload
the bundle's zip and its files to the deposition's bucket; set the metadata (from the
bundle's record, with its content digest); publish. The archived files are byte-identical
to the local bundle, and each carries the DOI under which it is archived.

Resumable and idempotent: a state file beside the bundle (`BUNDLE.zenodo.json`) records each
completed step; a rerun after an interruption reuses the deposition (found by the state or,
if the state was lost with the creating request in flight, by its title and version among
the account's drafts), skips files already in the bucket with the same MD5, and refuses to
publish a version twice. The token comes from the environment and never appears in output.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

from servable.errors import ServableError

ZENODO = "https://zenodo.org"
SANDBOX = "https://sandbox.zenodo.org"
TOKEN_ENV, SANDBOX_TOKEN_ENV = "ZENODO_TOKEN", "ZENODO_SANDBOX_TOKEN"


class ZenodoError(ServableError):
    """The deposit API refused a request (message and field errors from its JSON body)."""


def md5_path(path: Path) -> str:
    """The MD5 (hex) of a file, read in 1 MiB blocks: the checksum Zenodo reports for an upload."""
    h = hashlib.md5()  # noqa: S324 - Zenodo's checksum, not a security measure
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class ZenodoClient:
    """Thin client of the legacy deposit API: bearer token, retries, rate limits, dry runs."""

    def __init__(self, base_url: str = ZENODO, token: str | None = None, *,
                 dry_run: bool = False, echo=print, retries: int = 3, backoff: float = 1.0,
                 timeout: float = 120.0):
        if not dry_run and not token:
            raise ZenodoError(f"no token: set {TOKEN_ENV} (or {SANDBOX_TOKEN_ENV} with "
                              "--sandbox) to a personal access token with the scopes "
                              "deposit:write and deposit:actions")
        self.base = base_url.rstrip("/")
        self.api = f"{self.base}/api"
        self._token, self.dry_run, self.echo = token or "", dry_run, echo
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self._dry_ids = 0

    # -- transport ---------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def request(self, method: str, url: str, *, json_body=None, file: Path | None = None,
                expect=(200,)) -> dict:
        """One API request with retries on server errors and rate limits; the JSON answer.
        An unexpected status is a `ZenodoError` naming Zenodo's message (the token redacted).
        """
        if self.dry_run:
            return self._dry(method, url, json_body, file)
        import requests

        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        for attempt in range(self.retries + 1):
            try:
                if file is not None:
                    with open(file, "rb") as f:
                        r = requests.request(method, url, data=f, timeout=self.timeout,
                                             headers={**headers, "Content-Type":
                                                      "application/octet-stream"})
                else:
                    r = requests.request(method, url, json=json_body, headers=headers,
                                         timeout=self.timeout)
            except requests.RequestException as exc:
                if attempt == self.retries:
                    raise ZenodoError(self._redact(f"{method} {url}: no answer "
                                                   f"({exc.__class__.__name__}); run the "
                                                   "same command again to resume")) from None
                time.sleep(self.backoff * 2 ** attempt)
                continue
            if r.status_code == 429 or (r.status_code >= 500 and attempt < self.retries):
                if attempt == self.retries:
                    break
                time.sleep(self._wait(r, attempt))
                continue
            break
        if r.status_code in expect:
            return r.json() if r.content else {}
        raise ZenodoError(self._redact(self._explain(method, url, r)))

    def _wait(self, r, attempt: int) -> float:
        if r.status_code == 429:
            retry_after = r.headers.get("Retry-After")
            reset = r.headers.get("X-RateLimit-Reset")
            if retry_after and retry_after.isdigit():
                return min(float(retry_after), 60.0)
            if reset and reset.isdigit():
                return min(max(float(reset) - time.time(), 0.5), 60.0)
        return self.backoff * 2 ** attempt

    def _explain(self, method: str, url: str, r) -> str:
        try:
            body = r.json()
        except ValueError:
            body = {}
        message = body.get("message") or r.reason or "no message"
        fields = "; ".join(f"{e.get('field', '?')}: {e.get('message') or e.get('messages')}"
                           for e in body.get("errors") or [])
        where = f"{method} {url.replace(self.base, '') or '/'}"
        if r.status_code in (401, 403):
            return (f"Zenodo refused the token ({r.status_code} on {where}: {message}); create "
                    f"a personal access token with the scopes deposit:write and "
                    f"deposit:actions and set {TOKEN_ENV} (or {SANDBOX_TOKEN_ENV})")
        return (f"Zenodo answered {r.status_code} to {where}: {message}"
                + (f" ({fields})" if fields else "")
                + ("; run the same command again to resume" if r.status_code >= 500 else ""))

    def _dry(self, method, url, json_body, file) -> dict:
        lines = [f"{method} {url}", "  Authorization: Bearer ***"]
        if file is not None:
            lines.append(f"  Content-Type: application/octet-stream  <{file.name}: "
                         f"{file.stat().st_size} bytes, md5 {md5_path(file)}>")
        elif json_body is not None:
            lines.append("  Content-Type: application/json")
            lines += ["  " + ln for ln in json.dumps(json_body, indent=2).splitlines()]
        self.echo("\n".join(lines))
        self._dry_ids += 1
        dep = "{deposition_id}"
        return {"id": dep, "conceptrecid": "{concept_id}", "files": [],
                "links": {"bucket": f"{self.api}/files/{{bucket}}",
                          "self": f"{self.api}/deposit/depositions/{dep}",
                          "latest_draft": f"{self.api}/deposit/depositions/{dep}"},
                "metadata": {}, "doi": "{doi}", "conceptdoi": "{concept_doi}",
                "submitted": False, "state": "unsubmitted",
                "checksum": f"md5:{md5_path(file)}" if file is not None else None}

    # -- deposit API -------------------------------------------------------------------
    def depositions_url(self, dep_id=None) -> str:
        """The depositions endpoint, or one deposition's."""
        url = f"{self.api}/deposit/depositions"
        return url if dep_id is None else f"{url}/{dep_id}"

    def create(self, metadata: dict) -> dict:
        """Create a deposition (its DOI is reserved with it)."""
        return self.request("POST", self.depositions_url(), json_body={"metadata": metadata},
                            expect=(201,))

    def get(self, dep_id) -> dict:
        """One deposition."""
        return self.request("GET", self.depositions_url(dep_id))

    def drafts(self) -> list:
        """The account's unpublished depositions."""
        if self.dry_run:
            return []
        return self.request("GET", self.depositions_url() + "?status=draft&size=100")

    def new_version(self, dep_id) -> dict:
        """A new version of a published deposition: its draft."""
        record = self.request("POST", self.depositions_url(dep_id) + "/actions/newversion",
                              expect=(201,))
        return self.request("GET", record["links"]["latest_draft"])

    def upload(self, bucket: str, name: str, path: Path) -> dict:
        """Upload a file into a deposition's bucket."""
        return self.request("PUT", f"{bucket}/{name}", file=path, expect=(200, 201))

    def delete_file(self, dep_id, file_id) -> None:
        """Delete a file from an unpublished deposition."""
        self.request("DELETE", f"{self.depositions_url(dep_id)}/files/{file_id}",
                     expect=(204,))

    def set_metadata(self, dep_id, metadata: dict) -> dict:
        """Set a deposition's metadata (Zenodo validates it)."""
        return self.request("PUT", self.depositions_url(dep_id),
                            json_body={"metadata": metadata})

    def publish(self, dep_id) -> dict:
        """Publish a deposition: the reserved DOI is minted."""
        return self.request("POST", self.depositions_url(dep_id) + "/actions/publish",
                            expect=(202,))


def state_path(bundle: Path) -> Path:
    """The publish state file beside the bundle, `<bundle>.zenodo.json`: the steps done per
    server, bundle name and version, so that an interrupted publish resumes."""
    return bundle.parent / f"{bundle.name}.zenodo.json"


def _load_state(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise ZenodoError(f"{path}: the publish state is not valid JSON; if no deposition was "
                          "created, delete it and run again") from None


def _save_state(path: Path, state: dict) -> None:
    from servable.files import write_json

    write_json(path, state, force=True)


def _zip_matches(zip_path: Path, manifest_path: Path) -> bool:
    """Whether an existing zip holds this very manifest (same bundle, same version)."""
    import zipfile

    if not zip_path.exists():
        return False
    try:
        with zipfile.ZipFile(zip_path) as z:
            names = [n for n in z.namelist() if n.endswith("/" + manifest_path.name)]
            return bool(names) and z.read(names[0]) == manifest_path.read_bytes()
    except zipfile.BadZipFile:
        return False


def _upload_files(bundle: Path, manifest: dict, dep: dict, client: ZenodoClient,
                  state: dict, done) -> None:
    """2. The zip and every file of the bundle into the deposition's bucket, each once
    (files already there with the same MD5 are skipped)."""
    from servable.bundle.bundle import export_zip
    from servable.bundle.manifest import MANIFEST

    version = str(manifest["version"])
    zip_dir = Path(tempfile.mkdtemp(prefix="servable-dry-")) if client.dry_run else \
        bundle.parent
    zip_path = zip_dir / f"{manifest['name']}-{version}.zip"
    if not _zip_matches(zip_path, bundle / MANIFEST):  # kept: a resumed run sends the same
        export_zip(bundle, zip_path, overwrite=True)  # bytes
    uploads = [zip_path] + [bundle / name for name in sorted(manifest["files"])] + \
        [bundle / MANIFEST]
    remote = {f.get("filename") or f.get("key"): f for f in dep.get("files") or []}
    uploaded = state.setdefault("uploaded", {})
    for path in uploads:
        digest = md5_path(path)
        have = remote.get(path.name)
        if have and str(have.get("checksum", "")).removeprefix("md5:") == digest:
            uploaded[path.name] = digest
            continue
        if have:  # same name, other bytes (a previous version's file): replace it
            client.delete_file(dep["id"], have["id"])
        answer = client.upload(state["deposition"]["bucket"], path.name, path)
        got = str(answer.get("checksum", "")).removeprefix("md5:")
        if not client.dry_run and got != digest:
            raise ZenodoError(f"{path.name}: the server stored MD5 {got}, the file has "
                              f"{digest}; run again to upload it anew")
        uploaded[path.name] = digest
        done(f"upload {path.name}")
    stale = [n for n in remote if n not in {p.name for p in uploads}]
    for name in stale:  # files inherited from the previous version that this one lacks
        client.delete_file(dep["id"], remote[name]["id"])
    if client.dry_run:
        shutil.rmtree(zip_dir, ignore_errors=True)
    done("upload")



def _reserve(bundle: Path, manifest: dict, dep: dict, client: ZenodoClient) -> str:
    """2. The DOI Zenodo reserved for the deposition, written into the bundle, which is sealed
    anew; returns the DOI. The concept DOI is the reserved DOI's prefix and the concept id."""
    from servable.bundle.manifest import seal

    doi = ((dep.get("metadata") or {}).get("prereserve_doi") or {}).get("doi")
    if not doi:
        raise ZenodoError(f"deposition {dep['id']} has no reserved DOI (metadata."
                          "prereserve_doi); this server cannot mint the DOI before the upload")
    m = re.match(r"^(10\.\d+/zenodo\.)\d+$", doi)
    concept = f"{m.group(1)}{dep['conceptrecid']}" if m and dep.get("conceptrecid") else None
    zenodo = {"record_id": dep["id"], "url": f"{client.base}/records/{dep['id']}",
              "base_url": client.base}
    if (manifest.get("doi"), manifest.get("concept_doi"), manifest.get("zenodo")) != (
            doi, concept, zenodo):
        manifest.update(doi=doi, concept_doi=concept, zenodo=zenodo)
        seal(bundle, manifest)
    return doi


def publish_bundle(bundle, client: ZenodoClient, *, new_version_of: int | str | None = None,
                   echo=print) -> dict:
    """Publish `bundle` (see the module docstring); returns the state of this version."""
    from servable.bundle.citation import zenodo_metadata
    from servable.bundle.manifest import verify
    from servable.bundle.record import record_from_manifest

    bundle = Path(bundle)
    manifest = verify(bundle)
    _check_metadata(bundle, manifest)  # before any request
    version = str(manifest["version"])
    spath = state_path(bundle)
    all_states = _load_state(spath)
    key = f"{client.base}|{manifest['name']}|{version}"
    state = all_states.get(key, {"steps": []})
    draft = None  # the draft whose DOI a run with a lost state sealed into the bundle
    if manifest.get("doi") and not state.get("deposition"):
        draft = _reserved_draft(manifest.get("zenodo") or {}, client)
    if "published" in state["steps"] or (manifest.get("doi") and not state.get("deposition")
                                         and draft is None):
        doi = manifest.get("doi") or state.get("doi")
        raise ZenodoError(f"{bundle}: version {version} is already published as {doi}; raise "
                          "the version (servable bundle describe --record) and publish with "
                          f"--new-version-of {state.get('deposition', {}).get('id', 'ID')}")
    metadata = zenodo_metadata(record_from_manifest(manifest))

    def done(step: str, **values) -> None:
        state.update(values)
        if step not in state["steps"]:
            state["steps"].append(step)
        if not client.dry_run:
            all_states[key] = state
            _save_state(spath, all_states)
            echo(f"[{step}] done")

    # 1. the deposition: resume, adopt a draft the lost state created, or create one
    dep = None
    if state.get("deposition"):
        dep = client.get(state["deposition"]["id"])
    elif draft is not None:
        dep = draft
        echo(f"resuming draft deposition {dep['id']} (its DOI is in the bundle)")
    else:
        for draft in client.drafts():
            m = draft.get("metadata", {})
            if m.get("title") == metadata["title"] and str(m.get("version")) == version:
                dep = draft
                echo(f"resuming draft deposition {draft['id']} (found by title and version)")
                break
    if dep is None:
        if new_version_of is not None:
            dep = client.new_version(new_version_of)
        else:
            dep = client.create(metadata)
    if dep.get("submitted"):  # published by a run that died before it could record it
        if not state.get("deposition") or state["deposition"]["id"] != dep["id"]:
            raise ZenodoError(f"deposition {dep['id']} is already published")
        echo(f"deposition {dep['id']} was published by the interrupted run")
        published = dep
    else:
        done("deposition", deposition={"id": dep["id"], "bucket": dep["links"]["bucket"],
                                       "html": dep["links"].get("html", "")})
        if client.dry_run:
            echo("(the reserved DOI would be written into the bundle and sealed here)")
        else:
            done("reserved", doi=_reserve(bundle, manifest, dep, client))
        _upload_files(bundle, manifest, dep, client, state, done)  # the sealed bytes
        client.set_metadata(dep["id"], zenodo_metadata(record_from_manifest(manifest)))
        done("metadata")
        published = client.publish(dep["id"])  # 4. publish
        if not client.dry_run and published.get("doi") != state["doi"]:
            raise ZenodoError(f"Zenodo published deposition {dep['id']} as "
                              f"{published.get('doi')}, not the reserved {state['doi']} written "
                              "into the bundle; contact the repository's support")
    done("published", doi=published.get("doi"), concept_doi=published.get("conceptdoi"),
         record_url=published.get("links", {}).get("record_html")
         or published.get("links", {}).get("html"), record_id=published.get("id"))
    return state


def _check_metadata(bundle: Path, manifest: dict) -> None:
    """Refuse, before anything is sent, a record Zenodo would reject or a DOI would make
    permanent (`check_publishable`), naming the field and the record file to fix."""
    from servable.bundle.record import RecordError, check_publishable, record_from_manifest

    record = {k: v for k, v in record_from_manifest(manifest).items() if v is not None}
    source = f"metadata/{manifest['name']}.yaml"
    try:
        check_publishable(record, f"{bundle}: the record in servable.yaml")
    except RecordError as exc:
        raise ZenodoError(f"{exc}; fix it in the bundle's record ({source}) and run `servable "
                          f"bundle describe {bundle} --record {source}`; nothing was sent") \
            from None


def _reserved_draft(reserved: dict, client: ZenodoClient) -> dict | None:
    """The unpublished deposition on this server whose reserved DOI the bundle carries (a
    publish interrupted after the reservation, its state file lost), or None."""
    if not reserved.get("record_id") or reserved.get("base_url") != client.base:
        return None
    dep = client.get(reserved["record_id"])
    return None if dep.get("submitted") else dep
