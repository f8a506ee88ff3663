"""Boot without udev's coldplug: run vng (and so QEMU's 9p server, which shows the host's
root to the guest) in a private mount namespace where udevd and udevadm are replaced by
udev-standin.sh. The host's own files and mounts are untouched.

Measured under TCG (Debian 6.12 guest): udev start -> settle took 5.5-7 s of a ~15 s boot;
with the stand-in it takes ~0.1 s, and the agent modprobes the few drivers its disks need.
Used only where it can work: as root, with unshare(1), on a host that has udevd.

    python -m harness.vm.noudev -- ARGV...   (what wrap_argv() puts in front of vng)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

STANDIN = Path(__file__).resolve().parent / "udev-standin.sh"
UDEV_PATHS = ("/usr/lib/systemd/systemd-udevd", "/lib/systemd/systemd-udevd")


def udev_binaries() -> list[str]:
    """The real files behind udevd and udevadm on this host (symlinks resolved, deduped)."""
    found = [p for p in UDEV_PATHS if os.path.exists(p)]
    found += [p for p in (shutil.which("udevd"), shutil.which("udevadm")) if p]
    return sorted({os.path.realpath(p) for p in found})


def available() -> bool:
    """True where the stand-in can be used: root, unshare present, udev installed."""
    return (
        os.geteuid() == 0
        and shutil.which("unshare") is not None
        and STANDIN.is_file()
        and bool(udev_binaries())
    )


def wrap_argv(argv: Sequence[str], python: str = sys.executable) -> list[str]:
    """argv run in a private mount namespace with the udev stand-in in place."""
    return ["unshare", "--mount", "--propagation", "private", "--",
            python, "-m", "harness.vm.noudev", "--", *argv]  # fmt: skip


def bind_argv(source: Path, target: str) -> list[str]:
    return ["mount", "--bind", str(source), target]


def main(argv: Sequence[str]) -> int:
    """Inside the namespace: bind the stand-in over udev, then exec argv."""
    args = list(argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m harness.vm.noudev -- ARGV...", file=sys.stderr)
        return 2
    for target in udev_binaries():
        subprocess.run(bind_argv(STANDIN, target), check=True, timeout=30)
    os.execvp(args[0], args)
    return 2  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
