"""Publishing to a Zenodo-compatible deposit API, citing, FAIR self-assessment."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from servable.bundle.manifest import sha256_path, verify
from tests.cli_helpers import assert_user_error, run_cli
from tests.zenodo_server import ZenodoLike

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token-0123456789"


@pytest.fixture(scope="module")
def described(published_dir, tmp_path_factory) -> Path:
    """The published baseline imported with its metadata record (not yet published)."""
    out = tmp_path_factory.mktemp("described") / "bundle"
    r = run_cli("bundle", "import-checkpoint", published_dir / "gnn_baseline_best.pth",
                "--metadata", published_dir / "gnn_baseline_model_metadata.json",
                "--record", ROOT / "metadata" / "hbb-in-baseline.yaml", "-o", out)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture()
def bundle(described, tmp_path) -> Path:
    target = tmp_path / "hbb-in-baseline"
    shutil.copytree(described, target)
    return target


def publish(bundle, server, *extra, token=TOKEN, timeout=300):
    env = {**os.environ, "ZENODO_TOKEN": token}
    return subprocess.run([sys.executable, "-m", "servable", "publish", "zenodo", str(bundle),
                           "--base-url", server.url, *map(str, extra)],
                          capture_output=True, text=True, env=env, timeout=timeout)


def bundle_files(bundle: Path) -> list[Path]:
    manifest = yaml.safe_load((bundle / "servable.yaml").read_text())
    return [bundle / n for n in manifest["files"]] + [bundle / "servable.yaml"]


def test_publish_one_deposition_checksums_and_doi_everywhere(bundle):
    import hashlib

    with ZenodoLike(token=TOKEN) as z:
        r = publish(bundle, z)
        assert r.returncode == 0, r.stderr
        assert len(z.depositions) == 1
        (dep,) = z.depositions.values()
        assert dep["submitted"]
        stored = {name: f["md5"].removeprefix("md5:") for name, f in dep["files"].items()}
        after = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in bundle_files(bundle)}
        assert {k: v for k, v in stored.items() if not k.endswith(".zip")} == after
        assert any(k.endswith(".zip") for k in stored)
        assert len(z.uploads) == len(stored)  # every file exactly once
        meta = dep["metadata"]
        assert meta["upload_type"] == "software" and meta["access_right"] == "open"
        assert meta["creators"][0]["orcid"] == "0000-0002-5076-7096"
        doi = dep["doi"]
        # the DOI was reserved and sealed into the bundle before anything was uploaded
        archived = yaml.safe_load(dep["files"]["servable.yaml"]["data"])
        assert archived["doi"] == doi
        assert yaml.safe_load(dep["files"]["CITATION.cff"]["data"])["doi"] == doi
    manifest = verify(bundle)
    assert manifest["doi"] == doi and manifest["concept_doi"].startswith("10.5072/zenodo.")
    assert yaml.safe_load((bundle / "CITATION.cff").read_text())["doi"] == doi
    assert json.loads((bundle / "codemeta.json").read_text())["identifier"][0].endswith(doi)
    crate = json.loads((bundle / "ro-crate-metadata.json").read_text())
    root = next(e for e in crate["@graph"] if e["@id"] == "./")
    assert f"https://doi.org/{doi}" in root["identifier"]
    assert manifest["digest"] in root["identifier"]
    entry = next(e for e in crate["@graph"] if e["@id"] == "model.onnx")
    assert entry["sha256"] == sha256_path(bundle / "model.onnx")
    assert "sha256" not in next(e for e in crate["@graph"] if e["@id"] == "CITATION.cff")
    assert TOKEN not in r.stdout + r.stderr
    # the same version again: refused, nothing sent
    with ZenodoLike(token=TOKEN) as z:
        r = publish(bundle, z)
        assert_user_error(r, "already published", doi)
        assert z.log == []


def test_fair_report_and_cite_on_published_bundle(bundle, tmp_path, monkeypatch):
    r = run_cli("fair-report", bundle)
    assert r.returncode == 0
    assert "7/11" in r.stdout.splitlines()[0]  # F1, F3, F4, A1 need the DOI and the record
    for p in ("F1", "F3", "F4", "A1"):
        assert f"{p}  MISS" in r.stdout
    assert "R3  PASS" in r.stdout and "F2  PASS" in r.stdout
    r = run_cli("fair-report", bundle, "--min", "0.95")
    assert r.returncode == 1 and "below --min" in r.stderr
    monkeypatch.setenv("SERVABLE_CACHE", str(tmp_path / "cache"))
    with ZenodoLike(token=TOKEN) as z:
        assert publish(bundle, z).returncode == 0
        monkeypatch.setenv("SERVABLE_DOI_RESOLVER", z.resolver)
        r = run_cli("fair-report", bundle, "--min", "1")  # A1: retrieved by its DOI
    assert r.returncode == 0, r.stdout
    lines = r.stdout.strip().splitlines()
    assert "11/11" in lines[0] and len(lines) == 12
    assert all(" PASS " in line for line in lines[1:])
    doi = verify(bundle)["doi"]
    r = subprocess.run([sys.executable, "-c", f"import servable; print(servable.load('{doi}')"
                        ".name)"], capture_output=True, text=True,
                       env={**os.environ, "SERVABLE_BUNDLE_PATH": str(bundle.parent)})
    assert r.stdout.strip() == "hbb-in-baseline", r.stderr  # an offline endpoint's copy
    r = run_cli("cite", bundle, "--format", "bibtex")
    assert r.returncode == 0 and r.stdout.startswith("@software{Duarte")
    assert f"doi = {{{doi}}}" in r.stdout and "Zhu, Ruike" in r.stdout
    assert f"note = {{content digest {verify(bundle)['digest']}}}" in r.stdout
    r = run_cli("cite", bundle, "--format", "apa")
    assert r.stdout.startswith("Duarte, J. M., Li, B., Roy, A., & Zhu, R. (2026).")
    assert r.stdout.strip().endswith(f"https://doi.org/{doi}")
    r = run_cli("cite", bundle, "--format", "cff")
    assert yaml.safe_load(r.stdout)["doi"] == doi
    assert_user_error(run_cli("cite", bundle, "--format", "mla"), "--format must be one of")


def test_bad_token_is_one_line_and_never_printed(bundle):
    with ZenodoLike(token=TOKEN) as z:
        r = publish(bundle, z, token="wrong-token-abcdef")
        assert_user_error(r, "refused the token", "ZENODO_TOKEN")
        assert "wrong-token-abcdef" not in r.stdout + r.stderr
        assert z.depositions == {}
    r = subprocess.run([sys.executable, "-m", "servable", "publish", "zenodo", str(bundle),
                        "--base-url", "http://127.0.0.1:9"], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if not k.startswith("ZENODO")})
    assert_user_error(r, "no token", "ZENODO_TOKEN")


def publish_killed_at(bundle, server, step: str) -> int:
    """Run a publish that is killed (SIGKILL) when its request for `step` reaches the server;
    returns the client's exit status."""
    env = {**os.environ, "ZENODO_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "servable", "publish", "zenodo",
                             str(bundle), "--base-url", server.url], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server.fail[step] = [lambda: os.kill(proc.pid, signal.SIGKILL)]
    proc.communicate(timeout=300)
    return proc.returncode


def test_killed_after_upload_resumes_without_duplicates(bundle):
    """The client is killed (SIGKILL) when its metadata request arrives, after every upload."""
    with ZenodoLike(token=TOKEN) as z:
        assert publish_killed_at(bundle, z, "metadata") == -signal.SIGKILL
        uploads_before = list(z.uploads)
        assert len(uploads_before) == len(bundle_files(bundle)) + 1  # files and the zip
        state = json.loads((bundle.parent / f"{bundle.name}.zenodo.json").read_text())
        (entry,) = state.values()
        assert "upload" in entry["steps"] and "metadata" not in entry["steps"]
        r = publish(bundle, z)
        assert r.returncode == 0, r.stderr
        assert len(z.depositions) == 1 and z.uploads == uploads_before
        assert next(iter(z.depositions.values()))["submitted"]


def test_killed_while_publishing_completes_without_publishing_twice(bundle):
    """Killed when the publish request arrives (the server still publishes): the bundle
    already holds the reserved DOI; the rerun finds the published deposition and records it,
    without publishing anything again."""
    with ZenodoLike(token=TOKEN) as z:
        assert publish_killed_at(bundle, z, "publish") == -signal.SIGKILL
        (dep,) = z.depositions.values()
        assert dep["submitted"] and verify(bundle)["doi"] == dep["doi"]
        r = publish(bundle, z)
        assert r.returncode == 0, r.stderr
        assert "published by the interrupted run" in r.stdout
        assert verify(bundle)["doi"] == dep["doi"] and len(z.depositions) == 1
        assert sum(1 for m, p in z.log if p.endswith("/actions/publish")) == 1


@pytest.mark.parametrize("step", ["create", "upload", "metadata", "publish"])
def test_failure_at_each_step_then_resume(bundle, step):
    """A server error that outlasts the retries stops the run with one line; rerunning
    completes with one deposition and each file uploaded once."""
    with ZenodoLike(token=TOKEN) as z:
        z.fail[step] = [503] * 4  # first try + 3 retries
        r = publish(bundle, z)
        assert_user_error(r, "503", "run the same command again to resume")
        assert TOKEN not in r.stderr
        r = publish(bundle, z)
        assert r.returncode == 0, r.stderr
        assert len(z.depositions) == 1
        names = [n for _, n in z.uploads]
        assert len(names) == len(set(names)) == len(bundle_files(bundle)) + 1
        assert verify(bundle)["doi"] == next(iter(z.depositions.values()))["doi"]


@pytest.mark.parametrize("lost_after, found_by", [("create", "found by title and version"),
                                                   ("metadata", "its DOI is in the bundle")])
def test_lost_state_finds_the_draft_instead_of_creating_another(bundle, lost_after, found_by):
    """The state file is lost after the deposition was created (killed as it was created),
    or after its DOI was reserved into the bundle: the rerun adopts the same draft."""
    with ZenodoLike(token=TOKEN) as z:
        if lost_after == "create":
            assert publish_killed_at(bundle, z, "create") == -signal.SIGKILL
        else:
            z.fail["metadata"] = [503] * 4
            assert publish(bundle, z).returncode == 2
        (bundle.parent / f"{bundle.name}.zenodo.json").unlink(missing_ok=True)
        r = publish(bundle, z)
        assert r.returncode == 0, r.stderr
        assert found_by in r.stdout
        assert len(z.depositions) == 1
        names = [n for _, n in z.uploads]
        assert len(names) == len(set(names))  # the bucket's MD5s spared the re-upload


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(access_right="public"), "access_right 'public' is not one of open"),
    (lambda r: r["authors"][0].update({"given-names": "Your", "family-names": "Name"}),
     "authors[0] 'Your Name' is a placeholder"),
    (lambda r: r["authors"][1].update({"given-names": "Li, Billy"}),
     "authors[1].given-names 'Li, Billy' holds a comma"),
    (lambda r: r["authors"][2].update(orcid="https://orcid.org/0000-0002-0116-1013"),
     "authors[2].orcid 'https://orcid.org/0000-0002-0116-1013' is not a valid ORCID iD"),
    (lambda r: r.update(license="WTFPL"), "license 'WTFPL' is not one of"),
])
def test_metadata_zenodo_would_refuse_is_refused_before_any_request(bundle, edit, message):
    from servable.bundle.manifest import read_manifest, seal

    manifest, _ = read_manifest(bundle)
    edit(manifest["record"])  # edited by hand, and sealed anew
    seal(bundle, manifest)
    with ZenodoLike(token=TOKEN) as z:
        r = publish(bundle, z)
        assert_user_error(r, message, "servable.yaml", "(metadata/hbb-in-baseline.yaml)",
                          "nothing was sent")
        assert z.log == [] and z.depositions == {}
    assert verify(bundle)["doi"] is None
    assert not (bundle.parent / f"{bundle.name}.zenodo.json").exists()


@pytest.mark.parametrize("change, message", [
    ({"license": None}, "missing license"),
    ({"access_right": "embargoed", "license": ""}, "missing license"),
    ({"authors": [{"name": "TODO: add authors"}]}, "authors[0].name 'TODO: add authors' is a "
                                                   "placeholder"),
    ({"authors": [{"given-names": "Josiah", "family-names": "Carberry\n"}]},
     "authors[0].family-names 'Carberry\\n' has line breaks"),
    ({"authors": [{"name": "---"}]}, "authors[0].name '---' is not a name"),
    ({"authors": [{"given-names": "Josiah", "family-names": "Carberry",
                   "orcid": "0000-0002-1825-0097"}]}, "authors[0].orcid '0000-0002-1825-0097'"),
])
def test_what_a_deposit_would_refuse_is_named_by_field(change, message):
    from servable.bundle.record import RecordError, check_publishable

    record = {"name": "x", "title": "t", "version": "1", "description": "d",
              "keywords": ["k"], "license": "MIT", "access_right": "open",
              "authors": [{"given-names": "Josiah", "family-names": "Carberry"}]}
    assert check_publishable(dict(record), "rec") == record
    record = {k: v for k, v in {**record, **change}.items() if v is not None}
    with pytest.raises(RecordError) as err:
        check_publishable(record, "metadata/x.yaml")
    assert str(err.value).startswith("metadata/x.yaml: ") and message in str(err.value)


def test_a_validation_error_from_the_server_names_the_field():
    """What the local check does not know, the deposit API refuses: its field errors."""
    from servable.publish.zenodo import ZenodoClient, ZenodoError

    with ZenodoLike(token=TOKEN) as z:
        client = ZenodoClient(z.url, TOKEN)
        dep = client.create({})
        metadata = {"upload_type": "software", "title": "t", "description": "d",
                    "creators": [{"name": "Carberry, Josiah"}], "access_right": "open",
                    "license": "mit", "publication_date": "13/45/2026"}
        with pytest.raises(ZenodoError, match=r"answered 400 .*Validation error.*"
                                              r"metadata\.publication_date: Not a valid date"):
            client.set_metadata(dep["id"], metadata)


def test_new_version_replaces_files_and_keeps_concept(bundle, tmp_path):
    with ZenodoLike(token=TOKEN) as z:
        assert publish(bundle, z).returncode == 0
        first = verify(bundle)
        record = yaml.safe_load((ROOT / "metadata" / "hbb-in-baseline.yaml").read_text())
        record["version"] = "1.0.1"
        (tmp_path / "v2.yaml").write_text(yaml.safe_dump(record))
        r = run_cli("bundle", "describe", bundle, "--record", tmp_path / "v2.yaml")
        assert r.returncode == 0, r.stderr
        assert verify(bundle)["doi"] is None
        r = publish(bundle, z, "--new-version-of", first["zenodo"]["record_id"])
        assert r.returncode == 0, r.stderr
        second = verify(bundle)
        assert second["doi"] != first["doi"] and second["concept_doi"] == first["concept_doi"]
        new = z.depositions[int(second["zenodo"]["record_id"])]
        assert new["metadata"]["version"] == "1.0.1"
        assert "hbb-in-baseline-1.0.1.zip" in new["files"]
        assert "hbb-in-baseline-1.0.0.zip" not in new["files"]  # the old version's zip left


def test_rate_limit_answers_are_waited_out(bundle):
    """429 with Retry-After: the client waits and carries on; one deposition, all files."""
    with ZenodoLike(token=TOKEN, rate_limit=6, window=1.0) as z:
        r = publish(bundle, z)
        assert r.returncode == 0, r.stderr
        assert z.throttled > 0 and len(z.depositions) == 1
        names = [n for _, n in z.uploads]
        assert len(names) == len(set(names)) == len(bundle_files(bundle)) + 1


def test_dry_run_prints_requests_and_sends_nothing(bundle):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENODO")}
    r = subprocess.run([sys.executable, "-m", "servable", "publish", "zenodo", str(bundle),
                        "--dry-run", "--sandbox"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "POST https://sandbox.zenodo.org/api/deposit/depositions" in out
    assert "PUT https://sandbox.zenodo.org/api/files/{bucket}/model.safetensors" in out
    assert '"upload_type": "software"' in out and "actions/publish" in out
    assert "Bearer ***" in out and "nothing was sent" in out
    assert not (bundle.parent / f"{bundle.name}.zenodo.json").exists()
    assert verify(bundle)["doi"] is None
