"""Boot without udev's coldplug and systemd-tmpfiles: run vng (and so QEMU's 9p server,
which shows the host's root to the guest) in a private mount namespace where udevd, udevadm
and systemd-tmpfiles are replaced by a stand-in: udev-standin.c compiled static into the
cache, or where no compiler works, udev-standin.sh for udevd and true(1) for the rest. The
host's own files and mounts are untouched.

Measured under TCG (Debian 6.12 guest): udev start -> settle took 5.5-7 s of a ~15 s boot;
with the stand-in it takes ~0.1 s, and the agent modprobes the few drivers its disks need.
systemd-tmpfiles (virtme-ng-init runs it to create the host's /run, /var and /tmp entries
in the guest's fresh tmpfs mounts) took 1.0 s of a lean 6.12 boot; nothing the agent runs
(fio, losetup, mkfs, dmsetup --noudevsync, cp) needs those entries.
The shell stand-in still cost 0.4 s of a lean boot and 0.75-1.1 s of a Debian one (sh plus
one ln(1) per port, each exec over 9p); the compiled one is one exec of a static binary.
Used only where it can work: as root, with unshare(1), on a host that has udevd.

    python -m harness.vm.standins -- ARGV...   (what wrap_argv() puts in front of vng)
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.paths import GUEST_DIR, cache_subdir

log = logging.getLogger(__name__)

UDEV_STANDIN = GUEST_DIR / "boot" / "udev-standin.sh"
STANDIN_SOURCE = UDEV_STANDIN.with_suffix(".c")
UDEV_PATHS = ("/usr/lib/systemd/systemd-udevd", "/lib/systemd/systemd-udevd")
TMPFILES_PATHS = ("/usr/bin/systemd-tmpfiles", "/bin/systemd-tmpfiles")


def real_files(paths: Sequence[str], commands: Sequence[str] = ()) -> list[str]:
    """The real files behind paths and commands on PATH (symlinks resolved, deduped)."""
    found = [p for p in paths if os.path.exists(p)]
    found += [p for p in (shutil.which(c) for c in commands) if p]
    return sorted({os.path.realpath(p) for p in found})


def udev_binaries() -> list[str]:
    return real_files(UDEV_PATHS, ("udevd", "udevadm"))


def compile_argv(source: Path, output: Path) -> list[str]:
    return ["gcc", "-static", "-Os", "-s", "-o", str(output), str(source)]


def compiled() -> Path | None:
    """The static stand-in, compiled once into the cache (keyed by its source); None where
    gcc is missing or fails (the shell stand-in then serves)."""
    key = hashlib.sha256(STANDIN_SOURCE.read_bytes()).hexdigest()[:16]
    binary = cache_subdir("standins") / f"udev-standin-{key}"
    failed = binary.with_suffix(".failed")  # tried once with this source: not every boot
    if binary.is_file():
        return binary
    if shutil.which("gcc") is None or failed.exists():
        return None
    tmp = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
    done = subprocess.run(
        compile_argv(STANDIN_SOURCE, tmp), capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        log.warning(
            "static udev stand-in did not compile (the shell one serves; remove %s "
            "to try again): %s",
            failed,
            done.stderr.strip().splitlines()[-1:],
        )
        failed.write_text(done.stderr)
        tmp.unlink(missing_ok=True)
        return None
    tmp.rename(binary)
    return binary


def binds() -> list[tuple[str, str]]:
    """(stand-in, target) pairs. With the compiled stand-in: it serves udevd, udevadm and
    systemd-tmpfiles (it names the virtio ports on --daemon and answers the rest). Without:
    udev's daemon gets the script that names the ports; udevadm (virtme-ng-init's trigger
    and settle) and systemd-tmpfiles get true(1), which answers at once without starting a
    shell. Where udevd and udevadm are one file (udev 252+ ships udevd as a link to
    udevadm), the script serves both: it answers anything but --daemon with success."""
    binary = compiled()
    if binary is not None:
        targets = sorted({*udev_binaries(), *real_files(TMPFILES_PATHS)})
        return [(str(binary), t) for t in targets]
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
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        python,
        "-m",
        "harness.vm.standins",
        "--",
        *argv,
    ]


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
