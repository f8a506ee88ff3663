"""One harness command per output directory at a time: OUT/.harness.lock, held with flock.

Two runs writing into one directory would interleave their junit.xml, results.json and
per-kernel subdirectories; the second one is refused up front with the holder's pid. The
lock is the kernel's (flock), so a holder that died (even by SIGKILL) releases it; the file
itself stays, empty of meaning once nobody holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from harness.errors import UserError

LOCK_NAME = ".harness.lock"


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
        if text:
            return f" (pid {text})"
    return ""


@contextlib.contextmanager
def hold(out_dir: Path) -> Iterator[Path]:
    """Hold OUT/.harness.lock for the block; UserError naming the fix when another harness
    process holds it. OSError on the lock file itself is left to the caller's out-dir check."""
    path = out_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{out_dir} is in use by another harness run{_holder(fd)}: wait for it to "
                "finish or pass a different --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing drops the flock
