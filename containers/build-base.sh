#!/usr/bin/env bash
# Build a local Debian bookworm base image with Python 3.11 for podman, without a registry:
# debootstrap --variant=minbase, then `podman import`. The image stands in for python:3.11-slim
# (the Dockerfiles' default BASE_IMAGE) on machines that cannot reach a container registry.
set -euo pipefail
IMAGE=${1:-localhost/servable-base:bookworm}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$(dirname "$0")/containers.conf}
if podman image exists "$IMAGE"; then
    echo "base image $IMAGE exists"
    exit 0
fi
# the Debian mirror this machine's apt already uses
MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
    || true)}
[ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
ROOT=$(mktemp -d /var/tmp/servable-rootfs.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 \
    || { tail -20 "$ROOT.log"; exit 1; }
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
tar -C "$ROOT" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE"
rm -f "$ROOT.log"
echo "built base image $IMAGE"
