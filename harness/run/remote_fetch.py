"""Bringing a remote run's results home: its tar stream is extracted here as untrusted.

The remote's output holds what its guest wrote (the 9p shared directory), so the archive may
name absolute paths, `..`, symlinks and hard links pointing anywhere, device nodes and FIFOs.
tarfile's own `filter="data"` would refuse most of that, but it only exists from Python 3.11.4
(Debian 12 has 3.11.2), and extracting as root without it restores links, devices, owners and
setuid bits. So each member is checked here: only regular files and directories, inside the
destination, created without following any link, owner ignored, mode 0644/0755, the total
size capped. Everything else is skipped and named.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from harness.errors import InfraError

log = logging.getLogger(__name__)

FETCH_CAP = 8 << 30  # logs, results, console: far below this without --keep-images


def member_parts(name: str) -> tuple[str, ...] | None:
    """The path components of a member name inside the destination; None when it is absolute
    or climbs out with `..`. `()` is the destination itself ("." or "./")."""
    path = PurePosixPath(name)
    if path.is_absolute():
        return None
    parts = tuple(p for p in path.parts if p != ".")
    return None if ".." in parts else parts


def _directory(root: Path, parts: tuple[str, ...]) -> Path | None:
    """root/parts as real directories created one at a time, None when one of them exists as
    anything but a directory (a symlink is never followed)."""
    here = root
    for part in parts:
        here = here / part
        try:
            os.mkdir(here, 0o755)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(here).st_mode):
                return None
    return here


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    mode = 0o755 if member.mode & 0o111 else 0o644
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    source = tar.extractfile(member)
    assert source is not None  # a regular member always has data
    with os.fdopen(fd, "wb") as fh:
        shutil.copyfileobj(source, fh, 1 << 20)


def _extract_one(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path) -> bool:
    """Extract one member if it is safe; False when it was skipped."""
    parts = member_parts(member.name)
    regular = member.isreg() and not member.issparse()
    if parts is None or not (regular or member.isdir()) or (regular and not parts):
        return False
    if member.isdir():
        return _directory(root, parts) is not None
    parent = _directory(root, parts[:-1])
    if parent is None:
        return False
    try:
        _write(tar, member, parent / parts[-1])
    except (IsADirectoryError, OSError) as exc:  # ELOOP: a link where the file goes
        log.warning("cannot extract %s: %s", member.name, exc)
        return False
    return True


def safe_extract(tar: tarfile.TarFile, dest: Path, cap: int = FETCH_CAP) -> list[str]:
    """Extract the regular files and directories of `tar` (read in order) under `dest`;
    return the names of the members skipped. InfraError when the sizes pass `cap`."""
    dest.mkdir(parents=True, exist_ok=True)
    root, total, skipped = dest.resolve(), 0, []
    for member in tar:
        total += member.size if member.isreg() else 0
        if total > cap:
            raise InfraError(f"the fetched results are over {cap >> 20} MiB: not extracted")
        if not _extract_one(tar, member, root):
            skipped.append(member.name)
    if skipped:
        log.warning(
            "skipped %d unsafe entries in the fetched results (links, devices, paths outside): %s",
            len(skipped),
            ", ".join(skipped[:5]),
        )
    return skipped


CHUNK = 1 << 20


def receive(chan: Any, sink: BinaryIO, cap: int = FETCH_CAP) -> int:
    """Copy a channel's output into `sink` a chunk at a time (never whole in memory);
    returns the byte count. InfraError once it passes `cap`."""
    total = 0
    while chunk := chan.recv(CHUNK):
        total += len(chunk)
        if total > cap:
            raise InfraError(f"the fetched results are over {cap >> 20} MiB: stopped")
        sink.write(chunk)
    return total


def fetch_cap(keep_images: bool, topology: str | None) -> int:
    """FETCH_CAP, plus the disk images' full size when they come home (--keep-images)."""
    if not keep_images or topology is None:
        return FETCH_CAP
    from harness.vm import topology as topo_mod

    return FETCH_CAP + sum(d.size_mb << 20 for d in topo_mod.load(topology).disks)
