#!/usr/bin/env python3
"""`make container-test`: build the x86_64 image with podman and check it end to end.

1. podman, runc and debootstrap are installed if missing (apt; needs root, as on CI).
2. A local Debian bookworm base (debootstrap + podman import) stands in for python:3.11-slim,
   since registries are unreachable; pip inside the build uses this machine's pip settings
   (passed as build arguments, their directories mounted read-only).
3. `servable predict` runs in the image as the non-root user with no network, on jets
   generated on the host, with a bundle mounted read-only; its scores must equal the host's
   to 1e-6.
4. The Apptainer definition's %runscript and %test run inside the same image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IMAGE = "localhost/servable:x86_64"
BASE = "localhost/servable-base:bookworm"
ENV = {**os.environ, "CONTAINERS_CONF": str(HERE / "containers.conf")}


def run(*cmd, check=True, capture=False, env=None, **kw):
    """Run a command with ENV (plus `env`, added on top); exit with its output on failure."""
    print("+", " ".join(map(str, cmd))[:300], flush=True)
    r = subprocess.run([str(c) for c in cmd], env={**ENV, **(env or {})}, text=True,
                       check=False, capture_output=capture, **kw)
    if check and r.returncode != 0:
        sys.exit(f"FAILED ({r.returncode}): {' '.join(map(str, cmd))[:200]}\n"
                 f"{(r.stdout or '')[-3000:]}{(r.stderr or '')[-3000:]}")
    return r


def ensure_tools() -> None:
    missing = [t for t in ("podman", "runc", "debootstrap") if shutil.which(t) is None]
    if missing:
        run("apt-get", "update", "-qq")
        run("apt-get", "install", "-y", "-qq", "podman", "runc", "debootstrap",
            env={"DEBIAN_FRONTEND": "noninteractive"})


def pip_build_args() -> tuple[list[str], list[str]]:
    """This machine's pip settings as build arguments, and the mounts they need."""
    args, mounts = [], set()
    pip = [sys.executable, "-m", "pip", "config", "get"]
    for var, key in (("PIP_INDEX_URL", "global.index-url"),
                     ("PIP_EXTRA_INDEX_URL", "global.extra-index-url"),
                     ("PIP_FIND_LINKS", "global.find-links"),
                     ("PIP_CONSTRAINT", "global.constraint"), ("PIP_CERT", "global.cert")):
        value = os.environ.get(var) or subprocess.run(
            [*pip, key], capture_output=True, text=True).stdout.strip()
        if not value:
            continue
        args += ["--build-arg", f"{var}={value}"]
        for item in value.split():
            path = Path(item.removeprefix("file://"))
            if path.is_absolute() and path.exists():
                path = path if path.is_dir() else path.parent
                # a local index's pages link to files beside it: mount the index's root
                mounts.add(path.parent if path.name == "simple" else path)
    volumes = []
    for m in sorted(mounts):
        volumes += ["-v", f"{m}:{m}:ro"]
    return args, volumes


def sections(definition: Path) -> dict[str, str]:
    """The %sections of an Apptainer definition file."""
    out, name = {}, None
    for line in definition.read_text().splitlines():
        m = re.match(r"^%(\w+)", line)
        if m:
            name = m.group(1)
            out[name] = ""
        elif name:
            out[name] += line.strip() + "\n"
    return out


def main() -> int:
    ensure_tools()
    run("bash", HERE / "build-base.sh", BASE)
    args, volumes = pip_build_args()
    run("podman", "build", "--network", "host", "-f", HERE / "x86_64" / "Dockerfile",
        "--build-arg", f"BASE_IMAGE={BASE}", "--build-arg", "TORCH_INDEX=", *args, *volumes,
        "-t", IMAGE, ROOT)
    run("podman", "image", "prune", "-f")  # earlier builds' layers: keep the disk in bounds

    with tempfile.TemporaryDirectory(prefix="servable-ct-") as tmp:
        tmp = Path(tmp)
        data, bundle = tmp / "data", tmp / "bundle"
        data.mkdir()
        data.chmod(0o777)  # the image's user (uid 1000) writes its scores here
        servable = [sys.executable, "-m", "servable"]
        run(*servable, "data", "generate", "--signal", 60, "--background", 60, "--seed", 7,
            "--workers", 2, "-o", data / "jets.h5")
        fixtures = ROOT / "tests" / "fixtures" / "published-in"
        run(*servable, "bundle", "import-checkpoint", fixtures / "gnn_baseline_best.pth",
            "--metadata", fixtures / "gnn_baseline_model_metadata.json", "-o", bundle)
        run(*servable, "predict", bundle, data / "jets.h5", "-o", tmp / "host.h5", "--quiet")

        who = run("podman", "run", "--rm", "--network", "none", "--entrypoint", "id", IMAGE,
                  "-u", capture=True).stdout.strip()
        assert who != "0", f"the image runs as root (uid {who})"
        mounts = ["-v", f"{bundle}:/bundles/hbb:ro", "-v", f"{data}:/data"]
        run("podman", "run", "--rm", "--network", "none", *mounts, IMAGE, "predict",
            "/bundles/hbb", "/data/jets.h5", "-o", "/data/image.h5", "--quiet")

        import h5py
        import numpy as np

        with h5py.File(tmp / "host.h5") as a, h5py.File(data / "image.h5") as b:
            diff = float(np.abs(a["scores"][:] - b["scores"][:]).max())
            n = len(a["scores"])
        assert diff <= 1e-6, f"image and host scores differ by {diff:.2e}"
        print(f"PASS predict in the image as uid {who}, no network: {n} jets, "
              f"max |p_image - p_host| = {diff:.1e}")

        # the image's ENV is the definition's %environment (both generated from one table)
        parts = sections(HERE / "x86_64" / "servable.def")
        run("podman", "run", "--rm", "--network", "none", *mounts, "--entrypoint",
            "/bin/sh", IMAGE, "-c", parts["runscript"], "runscript", "predict",
            "/bundles/hbb", "/data/jets.h5", "-o", "/data/runscript.h5", "--quiet")
        with h5py.File(tmp / "host.h5") as a, h5py.File(data / "runscript.h5") as b:
            assert np.abs(a["scores"][:] - b["scores"][:]).max() <= 1e-6
        print("PASS %runscript: apptainer run IMAGE predict ... equals the host")
        r = run("podman", "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh",
                IMAGE, "-c", parts["test"], capture=True)
        assert "selftest ok" in r.stdout, r.stdout
        print(f"PASS %test: {r.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
