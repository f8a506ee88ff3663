"""A fetched kernel's modules, stored uncompressed in the cache.

Debian ships every module compressed (.ko.xz); the guest kernel then decompresses each one
it loads (finit_module's in-kernel xz), which under TCG is slow: virtme-ng's initramfs spent
0.28 s on netfs.ko.xz alone. Decompressed once on the host (~7 s for Debian 6.12's 4230
modules, 107 -> 494 MB), the same modules load as plain ELF, and depmod records the new
names. The code the guest runs is byte for byte what Debian built.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import proc

log = logging.getLogger(__name__)

# suffix -> the command that decompresses FILE.ko.SUFFIX to FILE.ko and removes the original
DECOMPRESS = {".xz": ("xz", "-d"), ".zst": ("zstd", "-d", "-q", "--rm"), ".gz": ("gzip", "-d")}
BATCH = 500  # files per command: one process per module would cost more than the work


def decompress_argvs(tree: Path) -> list[list[str]]:
    """The commands that leave no compressed module under tree (a tool that is missing
    leaves its modules compressed: the kernel can still load them)."""
    argvs = []
    for suffix, tool in DECOMPRESS.items():
        files = sorted(str(p) for p in tree.rglob(f"*.ko{suffix}"))
        if files and shutil.which(tool[0]) is None:
            log.warning("%d modules stay %s-compressed: %s is not installed",
                        len(files), suffix, tool[0])  # fmt: skip
            continue
        argvs += [[*tool, *files[i : i + BATCH]] for i in range(0, len(files), BATCH)]
    return argvs


def depmod_argv(root: Path, release: str) -> list[str]:
    return ["depmod", "-a", "-b", str(root), release]


def decompress(root: Path, release: str) -> None:
    """Decompress the modules of root/lib/modules/RELEASE in place and rerun depmod.
    Safe to rerun after an interruption: what is left compressed is done next time."""
    for argv in decompress_argvs(root / "lib/modules" / release):
        proc.run(argv, timeout=600)
    proc.run(depmod_argv(root, release), timeout=600)


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """One process at a time changes a cached kernel tree (flock on ROOT/.harness-lock)."""
    with open(root / ".harness-lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
