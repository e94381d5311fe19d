#!/bin/sh
# The one list of what every servable image installs (Dockerfile RUN and Apptainer %post both
# run this script). SERVABLE_ARCH: x86_64 | aarch64 | ppc64le | cuda. The repository is at /opt/servable/src.
set -eu
ARCH=${SERVABLE_ARCH:?set SERVABLE_ARCH}
SRC=/opt/servable/src
VENV=/opt/servable/venv
# empty pip settings (unset build arguments) must not reach pip
for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_CONSTRAINT PIP_CERT; do
    eval "val=\${$v:-}"
    [ -n "$val" ] || unset "$v"
done
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# the non-root user every image runs as
if ! id servable >/dev/null 2>&1; then
    groupadd --gid 1000 servable 2>/dev/null || true
    useradd --uid 1000 --gid 1000 --create-home --shell /bin/sh servable 2>/dev/null \
        || useradd --uid 1000 --create-home --shell /bin/sh servable
fi

case "$ARCH" in
  x86_64|aarch64)
    # x86_64: CPU-only torch from TORCH_INDEX, the PyTorch CPU wheel index (empty: pip's own
    # settings). aarch64: PyPI's torch at TORCH_VERSION 2.10 (its last CPU-only aarch64 build;
    # 2.11+ pull CUDA 13 wheels, and 2.13's nvidia-nccl-cu13 pin has no aarch64 wheel), and no
    # generator: pythia8mc 8.317.2 has no aarch64 wheel for this Python.
    extras=all
    [ "$ARCH" = aarch64 ] && extras=train,explain,publish
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --upgrade pip
    if [ -n "${TORCH_INDEX:-}" ]; then
        "$VENV/bin/pip" install --index-url "$TORCH_INDEX" "torch==${TORCH_VERSION}"
    else
        "$VENV/bin/pip" install "torch==${TORCH_VERSION}"
    fi
    "$VENV/bin/pip" install "$SRC[$extras]"
    ;;
  cuda)
    # the TensorRT image's Python keeps its tensorrt package (system site packages); on any
    # other base (a plain Debian one where nvcr.io is unreachable) TensorRT comes from PyPI
    python3 -m venv --system-site-packages "$VENV"
    "$VENV/bin/pip" install --upgrade pip
    "$VENV/bin/pip" install "torch==${TORCH_VERSION}" onnxruntime-gpu
    # (PyPI's tensorrt-cu12 is a stub that fetches the wheels from pypi.nvidia.com at install
    # time; TENSORRT_PIP="" builds without TensorRT where that host is unreachable)
    if [ -n "${TENSORRT_PIP:-}" ] && ! "$VENV/bin/python" -c "import tensorrt" 2>/dev/null
    then
        "$VENV/bin/pip" install --extra-index-url https://pypi.nvidia.com "$TENSORRT_PIP"
    fi
    "$VENV/bin/pip" install "$SRC[train,explain,publish]"
    ;;
  ppc64le)
    # PyPI has no POWER wheels of torch or onnxruntime, and conda-forge/Open-CE are not
    # reachable from every site: Debian's own ppc64el packages carry the numerical stack
    # (PYTHON_DEBS), pip adds the pure-Python rest. Inference and explanation with the
    # torch runtime; no generator (pythia8mc/fastjet wheels are x86_64/aarch64 only).
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip \
        ${PYTHON_DEBS:?set PYTHON_DEBS}
    rm -rf /var/lib/apt/lists/*
    python3 -m venv --system-site-packages "$VENV"
    "$VENV/bin/pip" install --no-deps "$SRC"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install ${PIP_PURE:?set PIP_PURE}
    # packages whose dependencies PYTHON_DEBS already holds, at versions their pins refuse
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --no-deps ${PYTHON_PIP_NODEPS:?set PYTHON_PIP_NODEPS}
    ;;
  *)
    echo "unknown SERVABLE_ARCH=$ARCH (x86_64, aarch64, ppc64le or cuda)" >&2
    exit 2
    ;;
esac

# Globus Compute endpoint engines and their Parsl, as on the client: a second step
# (pyproject.toml's `remote` extra says why)
if [ "$ARCH" != ppc64le ]; then
    "$VENV/bin/pip" install "$SRC[remote]"
    "$VENV/bin/python" -c "import servable, globus_compute_endpoint.engines, parsl"
fi
# cffconvert: saving a bundle validates its CITATION.cff (servable selftest does)
"$VENV/bin/python" -c "import servable, torch, h5py; from cffconvert import Citation"
mkdir -p /opt/servable/bundles /work
chown servable /work
rm -rf "$SRC/.git" /root/.cache
