"""Cache entries filled by one process at a time: a blocking flock on a lock file per entry.

Two harness processes fetching the same Debian kernel (or refreshing the same apt lists)
would download into and extract over each other's files. The first one takes the entry's
lock and fills it; the others wait for the lock, then find the entry filled and use it. The
lock is the kernel's (flock), so a holder that died (even by SIGKILL) releases it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


@contextlib.contextmanager
def held(lock: Path) -> Iterator[None]:
    """Hold an exclusive flock on `lock` (created if needed) for the block, waiting for
    another holder first. Re-check the entry inside the block: it may be filled now."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for %s: another harness process is filling it", lock.stem)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock
