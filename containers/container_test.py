#!/usr/bin/env python3
"""`make container-test [ARCH=x86_64|aarch64|ppc64le|cuda]`: build an image with podman and
check it end to end.

1. podman, runc, debootstrap (and qemu-user-static for a foreign ARCH) are installed if
   missing (apt; needs root, as on CI); a foreign ARCH's binfmt handler is registered
   (containers/binfmt.sh) so that its binaries run under emulation.
2. A local Debian base (debootstrap + podman import, containers/build-base.sh) stands in for
   the Dockerfile's BASE_IMAGE, since registries are unreachable; pip inside the build uses
   this machine's pip settings (passed as build arguments, their directories mounted
   read-only).
3. `servable predict` runs in the image as the non-root user with no network, on jets
   generated on the host, with a bundle mounted read-only; its scores must equal the host's
   (1e-6 natively, 1e-5 under emulation, where another CPU's kernels sum differently), the
   host on the unfused fast path that the compiler-less images run.
   Emulated aarch64 containers get an aarch64 /proc/cpuinfo, which qemu-user 7.2 does not
   provide (`emulated_cpuinfo`: without it `import onnxruntime` segfaults under qemu).
4. The Apptainer definition's %runscript and %test run inside the same image; for x86_64 the
   definition itself is also converted to a Dockerfile by spython (the Singularity recipe
   parser), built, and its %test and %runscript run (`--skip-def` leaves that out).
Build time, image size and prediction wall times (image and host) are printed as one
`RESULT` line, the numbers docs/benchmarks.md records.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENV = {**os.environ, "CONTAINERS_CONF": str(HERE / "containers.conf")}
# per image: the local base (tag, its architecture, Debian suite), podman's platform
BASES = {
    "x86_64": ("localhost/servable-base:bookworm", "x86_64", "linux/amd64"),
    "aarch64": ("localhost/servable-base:bookworm-aarch64", "aarch64", "linux/arm64"),
    "ppc64le": ("localhost/servable-base:bookworm-ppc64le", "ppc64le", "linux/ppc64le"),
    "cuda": ("localhost/servable-base:bookworm", "x86_64", "linux/amd64"),
}


def run(*cmd, check=True, capture=False, env=None, **kw):
    """Run a command with ENV (plus `env`, added on top); exit with its output on failure."""
    print("+", " ".join(map(str, cmd))[:300], flush=True)
    r = subprocess.run([str(c) for c in cmd], env={**ENV, **(env or {})}, text=True,
                       check=False, capture_output=capture, **kw)
    if check and r.returncode != 0:
        sys.exit(f"FAILED ({r.returncode}): {' '.join(map(str, cmd))[:200]}\n"
                 f"{(r.stdout or '')[-3000:]}{(r.stderr or '')[-3000:]}")
    return r


def ensure_tools(foreign: bool) -> None:
    """podman, runc, debootstrap (and qemu-user-static for a foreign architecture)."""
    tools = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
    if foreign:
        tools["qemu-aarch64-static"] = "qemu-user-static"
    missing = [pkg for tool, pkg in tools.items() if shutil.which(tool) is None]
    if missing:
        run("apt-get", "update", "-qq")
        run("apt-get", "install", "-y", "-qq", *missing,
            env={"DEBIAN_FRONTEND": "noninteractive"})


def pip_settings() -> dict[str, str]:
    """This machine's pip settings (environment first, then pip's configuration)."""
    out = {}
    pip = [sys.executable, "-m", "pip", "config", "get"]
    for var, key in (("PIP_INDEX_URL", "global.index-url"),
                     ("PIP_EXTRA_INDEX_URL", "global.extra-index-url"),
                     ("PIP_FIND_LINKS", "global.find-links"),
                     ("PIP_CONSTRAINT", "global.constraint"), ("PIP_CERT", "global.cert")):
        value = os.environ.get(var) or subprocess.run(
            [*pip, key], capture_output=True, text=True).stdout.strip()
        if value:
            out[var] = value
    return out


def pip_build_args() -> tuple[list[str], list[str]]:
    """This machine's pip settings as build arguments, and the mounts they need."""
    args, mounts = [], set()
    for var, value in pip_settings().items():
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


def converted_dockerfile(definition: Path, base: str, env: dict[str, str]) -> str:
    """The Apptainer definition as spython converts it to a Dockerfile, made buildable here:
    FROM the local base (as --build-arg BASE_IMAGE does for the Dockerfile), `env` (pip
    settings, TORCH_INDEX) set before the %post steps, and spython's `HEALTHCHECK <%test>`
    dropped: Docker wants `HEALTHCHECK CMD ...`, and the %test script (/tests.sh) is run
    explicitly instead."""
    from spython.main.parse.parsers import SingularityParser
    from spython.main.parse.writers import DockerWriter

    text = DockerWriter(SingularityParser(str(definition)).recipe).convert()
    lines = text.splitlines()
    assert lines[0].startswith("FROM "), lines[0]
    out = [f"FROM {base} AS spython-base"]
    out += [f"ENV {k}={json.dumps(v)}" for k, v in env.items()]
    out += [ln for ln in lines[1:] if not ln.startswith("HEALTHCHECK ")]
    assert len(out) == len(lines) + len(env) - 1, "spython wrote no HEALTHCHECK for %test"
    return "\n".join(out) + "\n"


def emulated_cpuinfo(folder: Path) -> list[str]:
    """podman options that give an emulated aarch64 container an aarch64 /proc/cpuinfo.

    qemu-user before 8.2 (Debian bookworm's qemu-user-static is 7.2) does not emulate
    /proc/cpuinfo for aarch64 guests (qemu commit a55b9e7226708 added that): the guest reads
    the host's x86 file. ONNX Runtime's module runs pytorch/cpuinfo when it loads, whose
    aarch64 Linux code finds no processor it knows there and dereferences NULL: `import
    onnxruntime` dies with SIGSEGV ("qemu: uncaught target signal 11"). Mounted over
    /proc/cpuinfo (runc allows that one file, as for lxcfs), this file says what qemu 8.2+
    writes for its default CPU (-cpu max: MIDR_EL1 0x000f0510, implementer 0 "software",
    part 0x051): one entry per processor the host has online, with the MIDR fields cpuinfo
    reads. The Features line is left out: on aarch64 cpuinfo takes the ISA from
    getauxval(AT_HWCAP), which qemu 7.2 does emulate. Nothing of this enters the image; on
    aarch64 hardware the kernel's own file is there."""
    entry = ("processor\t: {}\nBogoMIPS\t: 100.00\nCPU implementer\t: 0x00\n"
             "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0x051\n"
             "CPU revision\t: 0\n\n")
    path = folder / "cpuinfo"
    path.write_text("".join(entry.format(i) for i in range(os.sysconf("SC_NPROCESSORS_ONLN"))))
    return ["-v", f"{path}:/proc/cpuinfo:ro"]


def image_size_mb(image: str) -> float:
    """The image's size as podman reports it (uncompressed layers), MB."""
    size = run("podman", "image", "inspect", "--format", "{{.Size}}", image,
               capture=True).stdout.strip()
    return int(size) / 1e6


def scores(path: Path):
    import h5py

    with h5py.File(path) as f:
        return f["scores"][:]


def check_scores(host: Path, other: Path, tolerance: float, what: str) -> float:
    import numpy as np

    a, b = scores(host), scores(other)
    assert a.shape == b.shape, f"{what}: {b.shape} scores, the host has {a.shape}"
    diff = float(np.abs(a - b).max())
    assert diff <= tolerance, f"{what} and host scores differ by {diff:.2e} > {tolerance:g}"
    return diff


def build_def(base: str, platform: str, volumes: list[str], tmp: Path, mounts: list[str],
              host: Path) -> None:
    """x86_64's servable.def, converted by spython, built; its %test and %runscript run."""
    env = {**pip_settings(), "TORCH_INDEX": ""}  # download.pytorch.org is not reachable here
    dockerfile = tmp / "Dockerfile.from-def"
    dockerfile.write_text(converted_dockerfile(HERE / "x86_64" / "servable.def", base, env))
    image = "localhost/servable:x86_64-def"
    run("podman", "build", "--platform", platform, "--network", "host", "-f", dockerfile,
        *volumes, "-t", image, ROOT)
    r = run("podman", "run", "--rm", "--network", "none", "--entrypoint", "/bin/bash", image,
            "/tests.sh", capture=True)
    assert "selftest ok" in r.stdout, r.stdout
    print(f"PASS servable.def converted by spython builds; its %test: {r.stdout.strip()}")
    parts = sections(HERE / "x86_64" / "servable.def")
    run("podman", "run", "--rm", "--network", "none", *mounts, "--entrypoint", "/bin/sh",
        image, "-c", parts["runscript"], "runscript", "predict", "/bundles/hbb",
        "/data/jets.h5", "-o", "/data/def.h5", "--quiet")
    diff = check_scores(host, tmp / "data" / "def.h5", 1e-6, "the .def image")
    print(f"PASS servable.def image's %runscript predicts as the host (max diff {diff:.1e})")
    run("podman", "rmi", "-f", image, check=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=os.environ.get("ARCH") or "x86_64",
                        choices=sorted(BASES))
    parser.add_argument("--jets", type=int, default=150, help="signal and background jets each")
    parser.add_argument("--skip-def", action="store_true",
                        help="do not build the spython-converted x86_64 .def")
    args = parser.parse_args(argv)
    arch = args.arch
    base, base_arch, platform = BASES[arch]
    foreign = base_arch != os.uname().machine
    tolerance = 1e-5 if foreign else 1e-6
    image = f"localhost/servable:{arch}"
    ensure_tools(foreign)
    start = time.perf_counter()
    run("bash", HERE / "build-base.sh", base, base_arch)
    base_s = time.perf_counter() - start
    build_args, volumes = pip_build_args()
    if arch == "x86_64":
        build_args += ["--build-arg", "TORCH_INDEX="]  # download.pytorch.org: unreachable
    if arch == "cuda":
        # the CUDA builds come from PyPI: the local indexes' CPU torch must not win; TensorRT's
        # wheels live on pypi.nvidia.com, unreachable here
        pairs = [build_args[i:i + 2] for i in range(0, len(build_args), 2)]
        build_args = [x for pair in pairs if not pair[1].startswith(
            ("PIP_EXTRA_INDEX_URL=", "PIP_FIND_LINKS=")) for x in pair]
        build_args += ["--build-arg", "TENSORRT_PIP="]
    start = time.perf_counter()
    run("podman", "build", "--platform", platform, "--network", "host",
        "-f", HERE / arch / "Dockerfile", "--build-arg", f"BASE_IMAGE={base}", *build_args,
        *volumes, "-t", image, ROOT)
    build_s = time.perf_counter() - start
    size = image_size_mb(image)
    run("podman", "image", "prune", "-f")  # earlier builds' layers: keep the disk in bounds

    with tempfile.TemporaryDirectory(prefix="servable-ct-") as tmp:
        tmp = Path(tmp)
        data, bundle = tmp / "data", tmp / "bundle"
        data.mkdir()
        data.chmod(0o777)  # the image's user (uid 1000) writes its scores here
        servable = [sys.executable, "-m", "servable"]
        run(*servable, "data", "generate", "--signal", args.jets, "--background", args.jets,
            "--seed", 7, "--workers", 2, "-o", data / "jets.h5")
        fixtures = ROOT / "tests" / "fixtures" / "published-in"
        run(*servable, "bundle", "import-checkpoint", fixtures / "gnn_baseline_best.pth",
            "--metadata", fixtures / "gnn_baseline_model_metadata.json", "-o", bundle)
        start = time.perf_counter()
        # the images carry no C++ compiler, so their IN runs the unfused fast path: the host
        # runs the same implementation (its fused kernel agrees to ~1e-6, not bit for bit)
        run(*servable, "predict", bundle, data / "jets.h5", "-o", tmp / "host.h5", "--quiet",
            "--runtime", "torch", env={"SERVABLE_FUSED": "0"})
        host_s = time.perf_counter() - start

        # every run of the image: its platform, no network, and under qemu-user an aarch64
        # /proc/cpuinfo (emulated_cpuinfo says why)
        podman_run = ["podman", "run", "--rm", "--platform", platform, "--network", "none",
                      *(emulated_cpuinfo(tmp) if foreign and base_arch == "aarch64" else [])]
        who = run(*podman_run, "--entrypoint", "id", image, "-u", capture=True).stdout.strip()
        assert who != "0", f"the image runs as root (uid {who})"
        machine = run(*podman_run, "--entrypoint", "uname", image, "-m",
                      capture=True).stdout.strip()
        assert machine == base_arch, f"the image runs as {machine}, not {base_arch}"
        mounts = ["-v", f"{bundle}:/bundles/hbb:ro", "-v", f"{data}:/data"]
        start = time.perf_counter()
        run(*podman_run, *mounts, image, "predict", "/bundles/hbb", "/data/jets.h5", "-o",
            "/data/image.h5", "--quiet", "--runtime", "torch")
        image_s = time.perf_counter() - start
        n = len(scores(tmp / "host.h5"))
        diff = check_scores(tmp / "host.h5", data / "image.h5", tolerance, "image")
        print(f"PASS predict in the {arch} image ({machine}{', emulated' if foreign else ''}) "
              f"as uid {who}, no network: {n} jets, max |p_image - p_host| = {diff:.1e}")

        # the image's ENV is the definition's %environment (both generated from one table)
        parts = sections(HERE / arch / "servable.def")
        run(*podman_run, *mounts, "--entrypoint", "/bin/sh", image, "-c", parts["runscript"],
            "runscript", "predict", "/bundles/hbb", "/data/jets.h5", "-o",
            "/data/runscript.h5", "--quiet", "--runtime", "torch")
        check_scores(tmp / "host.h5", data / "runscript.h5", tolerance, "%runscript")
        print("PASS %runscript: apptainer run IMAGE predict ... equals the host")
        r = run(*podman_run, "--entrypoint", "/bin/sh", image, "-c", parts["test"],
                capture=True)
        assert "selftest ok" in r.stdout, r.stdout
        print(f"PASS %test: {r.stdout.strip()}")
        if arch == "x86_64" and not args.skip_def:
            build_def(base, platform, volumes, tmp, mounts, tmp / "host.h5")
    result = {"arch": arch, "emulated": foreign, "base_s": round(base_s, 1),
              "build_s": round(build_s, 1), "size_mb": round(size), "jets": n,
              "image_predict_s": round(image_s, 2), "host_predict_s": round(host_s, 2),
              "image_jets_per_s": round(n / image_s, 1), "host_jets_per_s": round(n / host_s, 1)}
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
