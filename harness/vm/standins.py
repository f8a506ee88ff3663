"""Boot without udev's coldplug and systemd-tmpfiles: run vng (and so QEMU's 9p server,
which shows the host's root to the guest) in a private mount namespace where udevd/udevadm
are replaced by udev-standin.sh and systemd-tmpfiles by true(1). The host's own files and
mounts are untouched.

Measured under TCG (Debian 6.12 guest): udev start -> settle took 5.5-7 s of a ~15 s boot;
with the stand-in it takes ~0.1 s, and the agent modprobes the few drivers its disks need.
systemd-tmpfiles (virtme-ng-init runs it to create the host's /run, /var and /tmp entries
in the guest's fresh tmpfs mounts) took 1.0 s of a lean 6.12 boot; nothing the agent runs
(fio, losetup, mkfs, dmsetup --noudevsync, cp) needs those entries.
Used only where it can work: as root, with unshare(1), on a host that has udevd.

    python -m harness.vm.standins -- ARGV...   (what wrap_argv() puts in front of vng)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

UDEV_STANDIN = Path(__file__).resolve().parent / "udev-standin.sh"
UDEV_PATHS = ("/usr/lib/systemd/systemd-udevd", "/lib/systemd/systemd-udevd")
TMPFILES_PATHS = ("/usr/bin/systemd-tmpfiles", "/bin/systemd-tmpfiles")


def real_files(paths: Sequence[str], commands: Sequence[str] = ()) -> list[str]:
    """The real files behind paths and commands on PATH (symlinks resolved, deduped)."""
    found = [p for p in paths if os.path.exists(p)]
    found += [p for p in (shutil.which(c) for c in commands) if p]
    return sorted({os.path.realpath(p) for p in found})


def udev_binaries() -> list[str]:
    return real_files(UDEV_PATHS, ("udevd", "udevadm"))


def binds() -> list[tuple[str, str]]:
    """(stand-in, target) pairs: udev's daemon gets the script that names the virtio ports;
    udevadm (virtme-ng-init's trigger and settle) and systemd-tmpfiles get true(1), which
    answers at once without starting a shell. Where udevd and udevadm are one file (udev
    252+ ships udevd as a link to udevadm), the script serves both: it answers anything but
    --daemon with success."""
    true = os.path.realpath(shutil.which("true") or "/bin/true")
    daemons = set(real_files(UDEV_PATHS, ("udevd",)))
    pairs = [(str(UDEV_STANDIN), t) for t in sorted(daemons)]
    pairs += [(true, t) for t in real_files((), ("udevadm",)) if t not in daemons]
    return pairs + [(true, t) for t in real_files(TMPFILES_PATHS)]


def available() -> bool:
    """True where the stand-ins can be used: root, unshare present, udev installed."""
    return (
        os.geteuid() == 0
        and shutil.which("unshare") is not None
        and UDEV_STANDIN.is_file()
        and bool(udev_binaries())
    )


def wrap_argv(argv: Sequence[str], python: str = sys.executable) -> list[str]:
    """argv run in a private mount namespace with the stand-ins in place."""
    return ["unshare", "--mount", "--propagation", "private", "--",
            python, "-m", "harness.vm.standins", "--", *argv]  # fmt: skip


def bind_argv(source: Path | str, target: str) -> list[str]:
    return ["mount", "--bind", str(source), target]


def main(argv: Sequence[str]) -> int:
    """Inside the namespace: bind the stand-ins over their targets, then exec argv."""
    args = list(argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m harness.vm.standins -- ARGV...", file=sys.stderr)
        return 2
    for source, target in binds():
        subprocess.run(bind_argv(source, target), check=True, timeout=30)
    os.execvp(args[0], args)
    return 2  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
