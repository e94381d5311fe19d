"""Container recipes: generated from one table, linted, parsed, and built and run for real."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHES = ("x86_64", "ppc64le", "cuda")


def test_recipes_are_generated_and_current():
    r = subprocess.run([sys.executable, ROOT / "containers" / "generate.py", "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for arch in ARCHES:
        text = (ROOT / "containers" / arch / "Dockerfile").read_text()
        assert "RUN SERVABLE_ARCH=" + arch in text and "/opt/servable/install.sh" in text


@pytest.mark.parametrize("arch", ARCHES)
def test_hadolint_reports_nothing(arch):
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    r = subprocess.run([hadolint, ROOT / "containers" / arch / "Dockerfile"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr


@pytest.mark.parametrize("arch", ARCHES)
def test_dockerfile_runs_non_root_with_labels(arch):
    text = (ROOT / "containers" / arch / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)", text, re.M).group(1)
    assert {"x86_64": "python:3.11-slim", "ppc64le": "condaforge/miniforge3:",
            "cuda": "nvcr.io/nvidia/tensorrt:"}[arch] in base
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user == ["1000:1000"]
    assert 'ENTRYPOINT ["servable"]' in text
    import servable

    assert f'org.opencontainers.image.version="{servable.__version__}"' in text
    assert "org.servable.doi=" in text


@pytest.mark.parametrize("arch", ARCHES)
def test_definitions_parse_and_run_the_cli(arch):
    from spython.main.parse.parsers import SingularityParser

    path = ROOT / "containers" / arch / "servable.def"
    recipe = SingularityParser(str(path)).recipe["spython-base"]
    docker = (ROOT / "containers" / arch / "Dockerfile").read_text()
    assert recipe.fromHeader == re.search(r"^ARG BASE_IMAGE=(\S+)", docker, re.M).group(1)
    assert recipe.cmd.split()[:2] == ["exec", "servable"]  # %runscript runs the CLI
    assert any("servable selftest" in line for line in recipe.install)  # %test
    assert any(label.startswith("org.servable.doi") for label in recipe.labels)
    assert any("install.sh" in line for line in recipe.install)
    text = path.read_text()
    assert ("apptainer run --nv" in text.split("%help")[1]) == (arch == "cuda")


@pytest.mark.slow
def test_container_build_predict_and_apptainer_sections():
    """`make container-test`: podman build of the x86_64 image from a debootstrap base,
    predict as the non-root user without network (equal to the host to 1e-6), and the
    Apptainer definition's %runscript and %test inside the image."""
    r = subprocess.run([sys.executable, ROOT / "containers" / "container_test.py"],
                       capture_output=True, text=True, timeout=2400)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    passes = [line for line in r.stdout.splitlines() if line.startswith("PASS")]
    assert len(passes) == 3, r.stdout[-2000:]
    assert "no network" in passes[0] and "uid 1000" in passes[0]
