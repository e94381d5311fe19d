"""Container recipes: generated from one table, linted, parsed, and built and run for real."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHES = ("x86_64", "aarch64", "ppc64le", "cuda")


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
    assert {"x86_64": "python:3.11-slim", "aarch64": "python:3.11-slim",
            "ppc64le": "debian:bookworm-slim", "cuda": "nvcr.io/nvidia/tensorrt:"}[arch] == base \
        or base.startswith("nvcr.io/nvidia/tensorrt:")
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user == ["1000:1000"]
    assert 'ENTRYPOINT ["servable"]' in text
    import servable

    assert f'org.opencontainers.image.version="{servable.__version__}"' in text
    assert "org.servable.doi=" in text


def _dockerfile_env(docker: str) -> dict[str, str]:
    block = re.search(r"^ENV (.*?)\n(?=\S)", docker, re.M | re.S).group(1)
    return dict(item.strip().split("=", 1) for item in block.split("\\\n"))


@pytest.mark.parametrize("arch", ARCHES)
def test_definitions_parse_consistent_with_the_dockerfile(arch):
    """spython (the Singularity recipe parser) reads every section, and each agrees with the
    Dockerfile generated beside it."""
    from spython.main.parse.parsers import SingularityParser

    path = ROOT / "containers" / arch / "servable.def"
    text = path.read_text()
    assert re.search(r"^Bootstrap: docker$", text, re.M)
    for section in ("%files", "%post", "%environment", "%runscript", "%test", "%labels"):
        assert re.search(f"^{section}$", text, re.M), section
    recipe = SingularityParser(str(path)).recipe["spython-base"]
    docker = (ROOT / "containers" / arch / "Dockerfile").read_text()
    assert recipe.fromHeader == re.search(r"^ARG BASE_IMAGE=(\S+)", docker, re.M).group(1)
    assert recipe.cmd.split()[:2] == ["exec", "servable"]  # %runscript runs the CLI
    assert recipe.test == "/bin/bash /tests.sh"
    assert any("servable selftest" in line for line in recipe.install)  # %test's script
    # %post: one command, the Dockerfile's RUN with the same SERVABLE_ARCH and script
    post = [line for line in recipe.install if "install.sh" in line]
    run = re.search(r"^RUN (.*install\.sh)$", docker, re.M).group(1)
    assert len(post) == 1 and post[0].startswith(f"SERVABLE_ARCH={arch} ")
    assert run.startswith(f"SERVABLE_ARCH={arch} ") and post[0].endswith(
        "/opt/servable/install.sh")
    # %files: what the Dockerfile COPYs
    copied = {dst.rstrip("/") for dst in re.findall(r"^COPY .* (\S+)$", docker, re.M)}
    assert {f.split()[1] for f in recipe.files} - {"/opt/servable/src/pyproject.toml",
                                                   "/opt/servable/src/README.md"} <= copied
    # %environment: the Dockerfile's ENV (the bundle path overridable at run time)
    environ = dict(item.split("=", 1) for item in recipe.environ)
    env = _dockerfile_env(docker)
    assert set(environ) == set(env)
    bundles = env["SERVABLE_BUNDLE_PATH"]
    assert environ["SERVABLE_BUNDLE_PATH"] == "${SERVABLE_BUNDLE_PATH:-" + bundles + "}"
    assert all(environ[k] == v for k, v in env.items() if k != "SERVABLE_BUNDLE_PATH")
    # %labels: the Dockerfile's LABELs
    labels = dict(label.split(" ", 1) for label in recipe.labels)
    for key in ("org.opencontainers.image.version", "org.servable.doi", "org.servable.arch"):
        assert f'{key}="{labels[key]}"' in docker, key
    assert labels["org.servable.arch"] == arch
    assert ("apptainer run --nv" in text.split("%help")[1]) == (arch == "cuda")


def test_converted_definition_is_a_buildable_dockerfile():
    """The x86_64 definition as spython converts it (what container_test.py builds): FROM
    the given base, the settings before the single %post RUN, no HEALTHCHECK without CMD."""
    sys.path.insert(0, str(ROOT / "containers"))
    try:
        from container_test import converted_dockerfile
    finally:
        sys.path.pop(0)
    text = converted_dockerfile(ROOT / "containers" / "x86_64" / "servable.def",
                                "localhost/base:test", {"TORCH_INDEX": "", "PIP_CERT": "/c"})
    lines = text.splitlines()
    assert lines[:3] == ["FROM localhost/base:test AS spython-base", 'ENV TORCH_INDEX=""',
                         'ENV PIP_CERT="/c"']
    runs = [line for line in lines if line.startswith("RUN ") and "install.sh" in line]
    assert len(runs) == 1 and "SERVABLE_ARCH=x86_64" in runs[0]
    assert 'TORCH_INDEX="${TORCH_INDEX-https://download.pytorch.org/whl/cpu}"' in runs[0]
    assert not any(line.startswith("HEALTHCHECK") for line in lines)
    assert "ADD containers/install.sh /opt/servable/install.sh" in lines
    assert lines.index("ADD containers/install.sh /opt/servable/install.sh") < lines.index(
        runs[0])
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    r = subprocess.run([hadolint, "--no-fail", "-"], input=text, capture_output=True,
                       text=True)
    assert "DL1000" not in r.stdout  # parses as a Dockerfile


def test_an_emulated_aarch64_container_is_given_the_cpuinfo_of_qemus_cpu(tmp_path):
    """qemu-user 7.2 passes the host's x86 /proc/cpuinfo to aarch64 guests, on which
    `import onnxruntime` segfaults; container_test.py mounts one that describes qemu's CPU:
    MIDR_EL1 0x000f0510, as `mrs x0, midr_el1` read it inside the emulated image."""
    sys.path.insert(0, str(ROOT / "containers"))
    try:
        from container_test import emulated_cpuinfo
    finally:
        sys.path.pop(0)
    assert emulated_cpuinfo(tmp_path) == ["-v", f"{tmp_path / 'cpuinfo'}:/proc/cpuinfo:ro"]
    entries = [dict(line.split(":", 1) for line in block.splitlines())
               for block in (tmp_path / "cpuinfo").read_text().strip().split("\n\n")]
    entries = [{k.strip(): v.strip() for k, v in e.items()} for e in entries]
    assert [e["processor"] for e in entries] == [
        str(i) for i in range(os.sysconf("SC_NPROCESSORS_ONLN"))]
    for e in entries:
        midr = (int(e["CPU implementer"], 16) << 24 | int(e["CPU variant"], 16) << 20
                | 0xF << 16 | int(e["CPU part"], 16) << 4 | int(e["CPU revision"]))
        assert midr == 0x000F0510 and e["CPU architecture"] == "8"  # as the kernel prints it


@pytest.mark.slow
def test_container_build_predict_and_apptainer_sections():
    """`make container-test`: podman build of the x86_64 image from a debootstrap base,
    predict as the non-root user without network (equal to the host to 1e-6), the
    Apptainer definition's %runscript and %test inside the image, and the definition
    converted by spython, built, its %test and %runscript run."""
    r = subprocess.run([sys.executable, ROOT / "containers" / "container_test.py"],
                       capture_output=True, text=True, timeout=2400)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
    passes = [line for line in r.stdout.splitlines() if line.startswith("PASS")]
    assert len(passes) == 5, r.stdout[-2000:]
    assert "converted by spython builds" in passes[3]
    assert "no network" in passes[0] and "uid 1000" in passes[0]
