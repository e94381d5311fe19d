#!/bin/sh
# The one list of what every servable image installs (Dockerfile RUN and Apptainer %post both
# run this script). SERVABLE_ARCH: x86_64 | ppc64le | cuda. The repository is at /opt/servable/src.
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
  x86_64)
    # CPU-only torch: TORCH_INDEX is the PyTorch CPU wheel index (empty: pip's own settings)
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --upgrade pip
    if [ -n "${TORCH_INDEX:-}" ]; then
        "$VENV/bin/pip" install --index-url "$TORCH_INDEX" "torch==${TORCH_VERSION}"
    else
        "$VENV/bin/pip" install "torch==${TORCH_VERSION}"
    fi
    "$VENV/bin/pip" install "$SRC[all]"
    ;;
  cuda)
    # the TensorRT image's Python keeps its tensorrt package (system site packages)
    python3 -m venv --system-site-packages "$VENV"
    "$VENV/bin/pip" install --upgrade pip
    "$VENV/bin/pip" install "torch==${TORCH_VERSION}" onnxruntime-gpu
    "$VENV/bin/pip" install "$SRC[train,explain,publish]"
    ;;
  ppc64le)
    # no PyPI wheels of torch/onnxruntime for Power: conda-forge (or Open-CE with
    # CONDA_CHANNELS="-c https://ftp.osuosl.org/pub/open-ce/current -c conda-forge")
    conda create -y -p "$VENV" ${CONDA_CHANNELS:--c conda-forge} python=3.11 pytorch-cpu \
        onnx onnxruntime numpy h5py scikit-learn xgboost matplotlib pyyaml requests
    conda clean -afy
    # the generator's pythia8mc/fastjet wheels are x86_64/aarch64 only: inference image
    "$VENV/bin/pip" install --no-deps "$SRC"
    "$VENV/bin/pip" install awkward uproot vector safetensors captum shap lime typer tqdm \
        onnxmltools "cffconvert>=2"
    ;;
  *)
    echo "unknown SERVABLE_ARCH=$ARCH (x86_64, ppc64le or cuda)" >&2
    exit 2
    ;;
esac

# Globus Compute endpoint engines and their Parsl, as on the client: a second step
# (pyproject.toml's `remote` extra says why)
"$VENV/bin/pip" install "$SRC[remote]"
"$VENV/bin/python" -c "import servable, globus_compute_endpoint.engines, parsl"
mkdir -p /opt/servable/bundles /work
chown servable /work
rm -rf "$SRC/.git" /root/.cache
