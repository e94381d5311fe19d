#!/usr/bin/env python3
"""Fuzz target: retrieval by record (`servable.bundle.retrieve.retrieve`) from a hostile
server: the records API's JSON, and the bundle archive it points to.

    fuzz/records_json.py WORKDIR fuzz/corpus/records_json -max_total_time=60

A local HTTP server in this process answers `GET /api/records/1` and every other path (the
archive's download). An input whose first byte is even is the record's JSON (`http://SERVER`
in it becomes the server's address), served with a real bundle archive; one whose first byte
is odd is the archive (zip bytes), served under a record that declares its true size and MD5,
so the fuzzer reaches unpacking and verification; the archive is also unpacked directly
(`unpack`). Name lookups other than the local machine fail at once, so no record can send the
client onto the network. The bundle is a random MLP, built at start-up (kept under
$SERVABLE_FUZZ_CACHE when set); a valid record and archive join the working corpus.

Contract (fuzz/contract.py): a one-line ServableError, or a bundle in the cache that
verifies; nothing is written outside the cache (or the unpacking folder), no unpacking in
progress is left behind, and a refused archive leaves no cache entry.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["servable"]):
    from fuzz.contract import obey, record_for
    from servable.bundle import retrieve as r
    from servable.bundle.manifest import verify

WORK = Path(tempfile.mkdtemp(prefix="fuzz-records-"))
CACHE, UNPACK = WORK / "cache", WORK / "unpack"
os.environ["SERVABLE_CACHE"] = str(CACHE)
os.environ.pop("SERVABLE_CACHE_MAX", None)
SERVED = {"record": b"{}", "zip": b""}
_getaddrinfo = socket.getaddrinfo


def _local_only(host, *args, **kwargs):
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise socket.gaierror(socket.EAI_NONAME, "the fuzz target resolves no other names")
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _local_only


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server name
        body, kind = (SERVED["record"], "application/json") if self.path == "/api/records/1" \
            else (SERVED["zip"], "application/zip")
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


SERVER = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
URL = f"http://127.0.0.1:{SERVER.server_address[1]}"
threading.Thread(target=SERVER.serve_forever, daemon=True).start()


def _archive() -> bytes:
    from servable.bundle.bundle import export_zip

    cache = os.environ.get("SERVABLE_FUZZ_CACHE")
    where = Path(cache) if cache else WORK / "base"
    built = where / "mlp-random.zip"
    if not built.is_file():
        import torch

        from servable.bundle.bundle import save_bundle
        from servable.models.taggers import MLPTagger

        torch.manual_seed(0)
        shutil.rmtree(where / "mlp", ignore_errors=True)
        export_zip(save_bundle(MLPTagger({"kind": "mlp"}), where / "mlp", name="mlp-random"),
                   built)
    return built.read_bytes()


ARCHIVE = _archive()


def _inside(root: Path, allowed: tuple[Path, ...]) -> None:
    """Every path under `root` is one of `allowed` or under one; none is a link."""
    for p in root.rglob("*"):
        assert not p.is_symlink(), f"a link was written: {p}"
        assert any(p == a or a in p.parents or p in a.parents for a in allowed), \
            f"written outside: {p}"


def fetch(record: bytes, archive: bytes) -> None:
    SERVED["record"], SERVED["zip"] = record.replace(b"http://SERVER", URL.encode()), archive
    path = obey(lambda: r.retrieve(r.Identifier(site=URL, record_id="1"), refresh=True))
    bundles = CACHE / "bundles"
    assert not list(bundles.glob(".incoming-*")), "an unpacking was left behind"
    if path is None:
        assert not list(bundles.glob("*/entry.json")), "a refused bundle entered the cache"
    else:
        assert bundles in path.parents and verify(path), path
    _inside(WORK, (CACHE / "bundles", CACHE / "downloads", UNPACK, WORK / "base"))


def test_one_input(data: bytes) -> None:
    shutil.rmtree(CACHE, ignore_errors=True)
    shutil.rmtree(UNPACK, ignore_errors=True)
    if data[:1] and data[0] % 2:
        archive = data[1:]
        fetch(json.dumps(record_for(archive)).encode(), archive)
        (UNPACK / "dest").mkdir(parents=True)
        (UNPACK / "archive.zip").write_bytes(archive)
        obey(lambda: r.unpack(UNPACK / "archive.zip", UNPACK / "dest"))
        _inside(UNPACK, (UNPACK / "dest", UNPACK / "archive.zip"))
    else:
        fetch(data[1:], ARCHIVE)


def main() -> None:
    argv = list(sys.argv)
    dirs = [i for i, a in enumerate(argv[1:], 1) if not a.startswith("-")]
    if dirs:  # a valid record and archive of this run join the working corpus
        corpus = Path(argv[dirs[0]])
        corpus.mkdir(parents=True, exist_ok=True)
        (corpus / "fresh-record.json").write_bytes(b"\0" + json.dumps(record_for(ARCHIVE))
                                                   .encode())
        (corpus / "fresh-archive.zip").write_bytes(b"\1" + ARCHIVE)
    atheris.Setup(argv, test_one_input)
    try:
        atheris.Fuzz()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
