#!/usr/bin/env bash
# Set up everything the harness needs on a fresh Debian machine (run as root):
# Debian packages for QEMU, fio, filesystems and kernel builds, then .venv with the harness.
# Idempotent: packages already present and an up-to-date venv are left alone.
set -euo pipefail
cd "$(dirname "$0")"

PKGS=(
  qemu-system-x86 qemu-utils fio xfsprogs btrfs-progs e2fsprogs util-linux kmod cpio
  busybox-static dmsetup udev rsync zstd xz-utils python3 python3-venv python3-pip
  openssh-server openssh-client git ccache build-essential flex bison bc libelf-dev
  libssl-dev dwarves
  # peer suites (--suite): blktests needs gawk, its loop tests sfdisk, parted, mkfs.vfat; fstests'
  # build (autotools) needs these headers and libraries
  fdisk parted dosfstools gawk autoconf automake libtool pkg-config xfslibs-dev uuid-dev
  libattr1-dev libacl1-dev libaio-dev liburing-dev libgdbm-dev libcap-dev
  mmdebstrap  # the minimal guest root (--guest-root minimal: harness/vm/guestroot.py)
  chromium
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "bootstrap: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The distribution's Python by default (Debian 12: 3.11.2), not whatever comes first on PATH:
# CI and users then run on the same interpreter. PYTHON=... picks another one.
PY=${PYTHON:-/usr/bin/python3}
stamp=.venv/.bootstrap-stamp
want=$("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')
if [ ! -x .venv/bin/python ] || [ pyproject.toml -nt "$stamp" ] \
   || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: creating .venv with $want" >&2
  "$PY" -m venv --clear .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi

# QEMU: Debian's newer build for this release (bookworm-backports: 10.0), unpacked into the
# harness's cache, never installed into the host (`harness qemu`; figures in the README).
# HARNESS_QEMU=system keeps the system's; a mirror that fails leaves the system's in use.
if [ "${HARNESS_QEMU:-}" != "system" ]; then
  .venv/bin/harness -q qemu install >/dev/null \
    || echo "bootstrap: could not fetch the backports QEMU: guests boot with the system's" >&2
fi
