"""Sealed bundles: every byte of every file, servable.yaml included, and one content digest."""

import re
import shutil
from pathlib import Path

import pytest
import yaml

from servable.bundle.manifest import MANIFEST, BundleError, verify
from servable.errors import ServableError
from tests.cli_helpers import assert_user_error, run_cli


@pytest.fixture(scope="module")
def sealed(random_bundle) -> Path:
    return random_bundle


@pytest.fixture()
def copy(sealed, tmp_path) -> Path:
    return Path(shutil.copytree(sealed, tmp_path / "mlp"))


def test_every_file_is_listed_and_the_digest_is_in_the_citation_documents(sealed):
    manifest = verify(sealed)
    on_disk = {p.name for p in sealed.iterdir()}
    assert set(manifest["files"]) | {MANIFEST} == on_disk
    digest = manifest["digest"]
    assert digest.startswith("sha256:") and len(digest) == 71
    for name in ("CITATION.cff", "codemeta.json", "ro-crate-metadata.json", "MODEL_CARD.md"):
        assert digest in (sealed / name).read_text(), name
    cff = yaml.safe_load((sealed / "CITATION.cff").read_text())
    assert {"type": "other", "value": digest} in [
        {k: i[k] for k in ("type", "value")} for i in cff["identifiers"]]


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_one_byte_flipped_in_any_file_is_refused_naming_it(sealed, tmp_path, where):
    names = sorted(p.name for p in sealed.iterdir())
    for name in names:
        bundle = Path(shutil.copytree(sealed, tmp_path / f"{where}-{name}"))
        data = bytearray((bundle / name).read_bytes())
        i = {"start": 0, "middle": len(data) // 2, "end": len(data) - 2}[where]
        data[i] ^= 0x01
        (bundle / name).write_bytes(bytes(data))
        with pytest.raises(BundleError) as err:
            verify(bundle)
        assert name in str(err.value), (name, str(err.value))
        assert "\n" not in str(err.value)


def test_a_feature_renamed_in_the_manifest_is_refused(copy):
    text = (copy / MANIFEST).read_text()
    assert "trackBTag_Sip3dSig" in text
    (copy / MANIFEST).write_text(text.replace("trackBTag_Sip3dSig", "trackBTag_Sip2dSig", 1))
    with pytest.raises(BundleError, match=f"file {MANIFEST} was modified"):
        verify(copy)


def test_a_file_added_removed_or_replaced_by_a_link_is_refused(copy, tmp_path):
    (copy / "notes.txt").write_text("added later")
    with pytest.raises(BundleError, match="notes.txt is not part of the sealed bundle"):
        verify(copy)
    (copy / "notes.txt").unlink()
    (copy / "schema.json").unlink()
    with pytest.raises(BundleError, match="schema.json is missing"):
        verify(copy)
    outside = tmp_path / "schema.json"
    outside.write_text("{}")
    (copy / "schema.json").symlink_to(outside)
    with pytest.raises(BundleError, match="schema.json is not a regular file"):
        verify(copy)


def test_a_resealed_forgery_passes_alone_but_not_against_the_expected_digest(sealed, copy):
    """Someone who edits a file and seals the bundle anew gets a self-consistent bundle: only
    the digest a user holds (from a paper or the DOI record) tells it apart."""
    from servable.bundle.manifest import read_manifest, seal

    digest = verify(sealed)["digest"]
    manifest, _ = read_manifest(copy)
    manifest["inputs"][0]["features"][0]["unit"] = "furlong"
    seal(copy, manifest)
    forged = verify(copy)["digest"]
    assert forged != digest
    with pytest.raises(BundleError, match="not the expected"):
        verify(copy, expect=digest)
    assert verify(sealed, expect=digest.removeprefix("sha256:"))["digest"] == digest


def test_cli_verify_prints_the_digest_and_checks_expect(sealed, copy):
    digest = verify(sealed)["digest"]
    r = run_cli("bundle", "verify", sealed, "--expect", digest)
    assert r.returncode == 0, r.stderr
    assert f"content digest {digest} (as expected)" in r.stdout
    other = "sha256:" + "1" * 64
    assert_user_error(run_cli("bundle", "verify", sealed, "--expect", other), "not the expected")
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes()[:-1])
    assert_user_error(run_cli("bundle", "verify", copy), "model.onnx")


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(files=["model.safetensors"]), "files must be a mapping, not list"),
    (lambda m: m.update(model="mlp"), "model must be a mapping, not str"),
    (lambda m: m.pop("outputs"), "missing outputs"),
    (lambda m: m["model"].update(weights="/etc/passwd"), "model.weights '/etc/passwd' is not"),
    (lambda m: m["model"].update(weights="../model.safetensors"), "is not among the files"),
    (lambda m: m["files"].update({"../x": "0" * 64}), "not a plain relative path"),
    (lambda m: m["files"].pop("model.safetensors"), "is not among the files"),
    (lambda m: m.update(format_version=1), "bundle format 1"),
    (lambda m: m["inputs"][0].update(shape=[None, -5]), "positive sizes"),
])
def test_manifests_are_validated_as_data(copy, change, message):
    """Read as data before any checksum: each change names the field (and would, after a
    reseal, still be refused)."""
    from servable.bundle.manifest import read_manifest

    manifest, _ = read_manifest(copy)
    change(manifest)
    raw = yaml.safe_dump(manifest, sort_keys=False)
    (copy / MANIFEST).write_text(raw)
    with pytest.raises(BundleError, match=re.escape(message)):
        verify(copy)
    r = run_cli("bundle", "verify", copy)
    assert_user_error(r, "servable.yaml")


def test_an_alias_bomb_is_refused_before_it_expands(copy):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    (copy / MANIFEST).write_text(bomb)
    with pytest.raises(ServableError, match="YAML aliases"):
        verify(copy)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["hyperparameters"].update(hidden=[128, -5]),
     "model.config.hyperparameters.hidden must be a list of positive integers"),
    (lambda c: c.update(n_classes=1), "model.config.n_classes must be an integer of at least 2"),
    (lambda c: c.update(kind="gbdt"), "model.config.kind must be one of"),
    (lambda c: c.update(track_features="track_pt"),
     "track_features must be a list of feature names"),
])
def test_an_impossible_model_configuration_names_the_field(copy, test_file, change, message):
    """Sealed anew, so the checksums pass: the configuration itself is what is refused."""
    import servable
    from servable.bundle.manifest import read_manifest, seal

    manifest, _ = read_manifest(copy)
    change(manifest["model"]["config"])
    seal(copy, manifest)
    r = run_cli("predict", copy, test_file, "-o", copy.parent / "scores.h5")
    assert_user_error(r, message)
    with pytest.raises(BundleError, match=re.escape(message)):
        _ = servable.load(copy).tagger
