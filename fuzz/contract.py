"""The contract every fuzz target and property test asserts, and the valid inputs they start
from.

Bad input gives a `ServableError` whose message is one line, or the call succeeds with a
valid result; any other exception is a finding. Inputs are never changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from servable.data.jets import Jets
from servable.errors import ServableError

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "tests" / "fixtures" / "published-in"
RECORDS = sorted((ROOT / "metadata").glob("*.yaml"))


def obey(call: Callable[[], Any]) -> Any:
    """The call's result, or None when it refused its input with a one-line ServableError.
    Any other exception propagates: that is what the fuzzers look for."""
    try:
        return call()
    except ServableError as exc:
        message = str(exc)
        assert message.strip(), f"{type(exc).__name__} with an empty message"
        assert len(message.splitlines()) == 1, f"{type(exc).__name__} over several lines: " \
                                               f"{message!r}"
        return None


def _digests(root: Path) -> dict[str, str]:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@contextmanager
def unchanged(*paths: Path) -> Iterator[None]:
    """Assert that the files at (or under) `paths` are byte for byte the same afterwards,
    and that no file appeared or went away."""
    before = {p: _digests(Path(p)) for p in paths}
    yield
    for p, digests in before.items():
        assert _digests(Path(p)) == digests, f"{p} changed"


def small_jets(n: int = 3, seed: int = 0, truth: bool = True) -> Jets:
    """Valid jets in the full CMS layout, labelled, with spectators and generator truth."""
    rng = np.random.default_rng(seed)
    tracks = np.zeros((n, 30, 60), np.float32)
    vertices = np.zeros((n, 14, 5), np.float32)
    for i in range(n):
        tracks[i, :, :1 + (3 * i) % 60] = rng.normal(1, 0.3, (30, 1 + (3 * i) % 60))
        vertices[i, :, :i % 6] = rng.normal(1, 0.3, (14, i % 6))
    labels = np.eye(2, dtype=np.float32)[np.arange(n) % 2]
    extras = {"n_b_hadrons": np.full(n, 2, np.int32),
              "track_origin": np.zeros((n, 60), np.int8),
              "b_hadron_pt_eta_phi": np.ones((n, 4, 3), np.float32)} if truth else {}
    return Jets.cms(tracks, vertices, rng.normal(size=(n, 27)).astype(np.float32), labels,
                rng.normal(size=(n, 11)).astype(np.float32), extras=extras)


def check_jets(jets: Jets) -> None:
    """What a valid result of the reader is: validated groups of either layout, finite,
    one-hot labels."""
    from servable.data.jets import LAYOUTS, Jets, validate_group

    assert set(jets.groups) <= set(LAYOUTS[jets.layout])
    for g in jets.groups.values():
        validate_group(g.name, g.values, g.features, slotted=g.slotted)
        assert g.values.dtype == np.float32 and np.isfinite(g.values).all()
    Jets(jets.groups, jets.labels, jets.spectators, class_names=jets.class_names)
    assert jets.spectators is None or (jets.spectators.dtype == np.float32
                                       and np.isfinite(jets.spectators).all())


def blank_documents(bundle: Path) -> None:
    """Prepare a sealed bundle for `reseal`: the citation documents carry the digest blanked
    (which verifies under any digest: they are hashed blanked anyway)."""
    from servable.bundle.citation import GENERATED
    from servable.bundle.manifest import BLANK, read_manifest

    digest = read_manifest(bundle)[0]["digest"].removeprefix("sha256:")
    for name in GENERATED:
        path = bundle / name
        path.write_text(path.read_text().replace(digest, BLANK))


def reseal(manifest) -> bytes:
    """The manifest's bytes with a content digest that verifies against the bundle's other
    files (as a forger who edits servable.yaml and seals it anew would write it), so that
    fuzzing reaches what comes after the seal; a manifest that is not a mapping with a
    `files` mapping is returned as plain YAML (the seal check refuses it first)."""
    from servable import safe_yaml
    from servable.bundle.manifest import BLANK, MANIFEST, digest_of, sha256_bytes

    if not (isinstance(manifest, dict) and isinstance(manifest.get("files"), dict)
            and all(isinstance(v, str) for v in manifest["files"].values())):
        return safe_yaml.dump(manifest).encode()
    manifest = {**manifest, "digest": f"sha256:{BLANK}"}
    text = safe_yaml.dump(manifest)
    digest = digest_of({**{str(k): v for k, v in manifest["files"].items()},
                        MANIFEST: sha256_bytes(text.encode())})
    return text.replace(BLANK, digest).encode()


def read_everything(path: Path) -> None:
    """Read a jet file every way the product does: whole, in chunks, its attributes."""
    from servable.data.h5io import JetFile, iter_jets, read_jets

    jets = obey(lambda: read_jets(path))
    if jets is not None:
        check_jets(jets)
        chunks = obey(lambda: list(iter_jets(path, chunk_size=2)))
        assert chunks is not None and sum(map(len, chunks)) == len(jets)
        with JetFile(path) as f:
            assert isinstance(f.attrs, dict)  # the provenance JSON parses


def read_everything_root(path: Path) -> None:
    """Read a JetClass ROOT file every way the product does: its size, whole, in chunks,
    through `servable.data.io`, its provenance."""
    from servable.data import io
    from servable.data.jetclass import count_jets, iter_jetclass, read_jetclass, read_provenance

    n = obey(lambda: count_jets(path))
    jets = obey(lambda: read_jetclass(path))
    if jets is not None:
        assert n == len(jets), (n, len(jets))
        check_jets(jets)
        chunks = obey(lambda: list(iter_jetclass(path, 2)))
        assert chunks is not None and sum(map(len, chunks)) == len(jets)
        first = obey(lambda: io.read_jets(path, 0, 1))
        assert first is not None and len(first) == min(1, len(jets))
    obey(lambda: read_provenance(path))


def record_for(archive: bytes, key: str = "mlp-random-1.0.zip") -> dict:
    """The records API's answer (as zenodo.org writes it) for a record holding `archive`,
    downloaded from `http://SERVER` (the records_json target puts its server there)."""
    return {"id": 1, "recid": "1", "doi": None, "conceptrecid": "2", "status": "published",
            "metadata": {"title": "a record", "version": "1.0"},
            "files": [{"id": "f1", "key": key, "size": len(archive),
                       "checksum": "md5:" + hashlib.md5(archive).hexdigest(),  # noqa: S324
                       "links": {"self": f"http://SERVER/api/records/1/files/{key}/content"}}]}
