"""Files a guest can write (the 9p shared directory, OUT/*/shared): read and written safely.

The guest writes that directory as root (9p, security_model=none), so any name in it may be a
symlink to a host file, a FIFO, a device node, a directory or a file of any size. Every host
read or write of a file there goes through these helpers: no symlink is followed, only a
regular file is read (a FIFO or device is never even opened for reading), at most `cap`
bytes come back, and a write replaces the name itself (rename) instead of opening what it
points to.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

RECORDS_CAP = 64 << 20  # steps.jsonl: a long plan's records are a few MB
INFO_CAP = 1 << 20  # agent.json and other small files


@dataclass(frozen=True)
class Untrusted:
    """What a read gave: the bytes (at most the cap), whether more was there, and why
    nothing was read (missing, not a regular file) when `refused` is set."""

    data: bytes = b""
    truncated: bool = False
    refused: str = ""


def read_untrusted(path: Path, cap: int) -> Untrusted:
    """At most `cap` bytes of the regular file at `path`, never following a symlink.

    The name is first opened with O_PATH (which opens nothing: a FIFO cannot block, a device
    sees no open); only when fstat says it is a regular file is it reopened for reading
    through /proc/self/fd, the same inode. A missing file reads as empty with refused="missing".
    """
    try:
        pfd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return Untrusted(refused="missing")
    except OSError as exc:
        return _refuse(path, f"cannot open: {exc.strerror}")
    try:
        if not stat.S_ISREG(os.fstat(pfd).st_mode):
            return _refuse(path, "not a regular file")
        fd = os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return _refuse(path, f"cannot open: {exc.strerror}")
    finally:
        os.close(pfd)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        log.warning("%s is over %d bytes: only the first %d are read", path, cap, cap)
        return Untrusted(data[:cap], truncated=True)
    return Untrusted(data)


def _refuse(path: Path, why: str) -> Untrusted:
    log.warning("not reading %s, which the guest can write: %s", path, why)
    return Untrusted(refused=why)


def write_untrusted(directory: Path, name: str, data: bytes) -> None:
    """Put `data` under `name` in a guest-writable directory: written to a fresh temporary
    name (O_EXCL, so never an existing file or symlink) and renamed over `name`, which
    replaces whatever the guest left there instead of writing through it. OSError when the
    guest made that impossible (e.g. a directory by that name)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.rename(tmp, directory / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
