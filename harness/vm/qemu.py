"""Which QEMU boots the guests: the system's, or one `harness qemu install` unpacked into the
cache (Debian's bookworm-backports build, never installed into the host), or $HARNESS_QEMU.

An unpacked QEMU finds its firmware through a small launcher script beside it: `-L` first on
the newer SeaBIOS that came with it (bookworm's 1.16.2 makes QEMU 10 spend ~30 s before the
kernel's first line), then on its own data directory, then the system's search path.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from harness.errors import UserError
from harness.paths import cache_dir
from harness.vm.pathsafe import check_vng_path

SYSTEM = "qemu-system-x86_64"  # also the launcher's name: virtme-ng reads the arch from it
QEMU_ENV = "HARNESS_QEMU"  # a path to a qemu-system-x86_64, or "system"


def installed_dir() -> Path:
    """Where `harness qemu install` keeps the unpacked QEMU (its launcher in bin/)."""
    return cache_dir() / "qemu"


def installed_launcher() -> Path:
    return installed_dir() / "bin" / SYSTEM


def binary() -> str:
    """The qemu-system-x86_64 to run: $HARNESS_QEMU (a path, or 'system'), else the
    installed one when there is one, else the system's (found on PATH)."""
    chosen = os.environ.get(QEMU_ENV, "").strip()
    if chosen == "system":
        return SYSTEM
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise UserError(
                f"{QEMU_ENV}={chosen!r} is not an executable file: point it at a "
                f"qemu-system-x86_64, or set it to 'system'"
            )
        check_vng_path(chosen, QEMU_ENV)
        return chosen
    launcher = installed_launcher()
    return str(launcher) if launcher.is_file() else SYSTEM


def for_vng() -> str:
    """The chosen QEMU for virtme-ng's --qemu, or '' for the system's (its own default)."""
    chosen = binary()
    return "" if chosen == SYSTEM else chosen


def launcher_text(qemu: Path, firmware_dirs: tuple[Path, ...]) -> str:
    """The launcher script: `qemu` with each firmware directory searched first."""
    search = [w for d in firmware_dirs for w in ("-L", str(d))]
    return "#!/bin/sh\n" + f'exec {shlex.join([str(qemu), *search])} "$@"\n'
