#!/usr/bin/env bash
# Register the qemu-user-static handler for ARCH (aarch64 | ppc64le) with the kernel's
# binfmt_misc, so that foreign binaries (debootstrap's second stage, podman build's RUN) run
# under emulation. Needs root. Without systemd-binfmt (containers, CI sandboxes) nothing
# registers them: binfmt_misc is mounted and Debian's own registration line
# (/usr/lib/binfmt.d/qemu-ARCH.conf, flag F: the interpreter is opened now, so it also works
# inside chroots and containers) is written to the register file.
set -euo pipefail
ARCH=${1:?usage: binfmt.sh aarch64|ppc64le}
if ! command -v qemu-"$ARCH"-static >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ -e /proc/sys/fs/binfmt_misc/qemu-"$ARCH" ]; then
    echo "binfmt handler qemu-$ARCH registered"
    exit 0
fi
CONF=/usr/lib/binfmt.d/qemu-"$ARCH".conf
[ -f "$CONF" ] || { echo "no $CONF: is qemu-user-static installed?" >&2; exit 1; }
grep -v '^#' "$CONF" | head -1 >/proc/sys/fs/binfmt_misc/register
echo "binfmt handler qemu-$ARCH registered: $(head -3 /proc/sys/fs/binfmt_misc/qemu-"$ARCH" | tr '\n' ' ')"
