#!/usr/bin/env bash
# Build a local Debian base image with Python 3 for podman, without a registry:
# debootstrap --variant=minbase, then `podman import`. The image stands in for the Dockerfiles'
# default BASE_IMAGE on machines that cannot reach a container registry.
#   build-base.sh [IMAGE] [ARCH] [SUITE] [EXTRA_PACKAGES]
# ARCH is x86_64 (default), aarch64 or ppc64le; a foreign ARCH runs under qemu-user-static
# (binfmt handlers registered by containers/binfmt.sh). EXTRA_PACKAGES (comma separated) are
# Debian packages added to the base, e.g. the ppc64le image's Python libraries.
set -euo pipefail
IMAGE=${1:-localhost/servable-base:bookworm}
ARCH=${2:-x86_64}
SUITE=${3:-bookworm}
EXTRA=${4:-}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$(dirname "$0")/containers.conf}
if podman image exists "$IMAGE"; then
    echo "base image $IMAGE exists"
    exit 0
fi
case "$ARCH" in  # Debian's and OCI's names of the architecture
  x86_64) DEB=amd64 OCI=amd64 ;;
  aarch64) DEB=arm64 OCI=arm64 ;;
  ppc64le) DEB=ppc64el OCI=ppc64le ;;
  *) echo "unknown ARCH=$ARCH (x86_64, aarch64 or ppc64le)" >&2; exit 2 ;;
esac
if [ "$ARCH" != "$(uname -m)" ]; then
    bash "$(dirname "$0")/binfmt.sh" "$ARCH"
fi
# the Debian mirror this machine's apt already uses
MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
    || true)}
[ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
ROOT=$(mktemp -d /var/tmp/servable-rootfs.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
INCLUDE=python3,python3-venv,ca-certificates${EXTRA:+,$EXTRA}
debootstrap --arch="$DEB" --variant=minbase --include="$INCLUDE" \
    "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 \
    || { tail -20 "$ROOT.log"; exit 1; }
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
tar -C "$ROOT" -c . | podman import --arch "$OCI" --change 'CMD ["/bin/bash"]' - "$IMAGE"
rm -f "$ROOT.log"
echo "built base image $IMAGE ($ARCH, Debian $SUITE)"
