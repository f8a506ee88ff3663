"""Direct I/O on block devices and files with page-aligned buffers (stdlib: mmap)."""

from __future__ import annotations

import errno
import mmap
import os
import random

MIB = 1024 * 1024


def pattern(seed: int, length: int) -> bytes:
    """Deterministic data that differs per seed (so a stale block is recognisable)."""
    return random.Random(seed).randbytes(length)


def write_direct(path: str, offset: int, data: bytes) -> None:
    """O_DIRECT pwrite of `data` at `offset`, then fsync (the loop flush path)."""
    buf = mmap.mmap(-1, max(len(data), mmap.PAGESIZE))
    buf[: len(data)] = data
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        with memoryview(buf)[: len(data)] as view:
            done = os.pwritev(fd, [view], offset)
        if done != len(data):
            raise OSError(errno.EIO, f"short write {done}/{len(data)} at {offset} on {path}")
        os.fsync(fd)
    finally:
        os.close(fd)
        buf.close()


def read_direct(path: str, offset: int, length: int) -> bytes:
    """O_DIRECT pread (bypasses the page cache, so stale cached copies can't hide changes)."""
    buf = mmap.mmap(-1, max(length, mmap.PAGESIZE))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        with memoryview(buf)[:length] as view:
            got = os.preadv(fd, [view], offset)
        return bytes(buf[:got])
    finally:
        os.close(fd)
        buf.close()


def sha256_direct(path: str, length: int, chunk: int = 4 * MIB) -> str:
    # imported here, not at the top: hashlib loads OpenSSL's libcrypto (4.6 MB read over
    # 9p), which the agent's start need not pay before the first checksum
    import hashlib

    h = hashlib.sha256()
    for off in range(0, length, chunk):
        h.update(read_direct(path, off, min(chunk, length - off)))
    return h.hexdigest()


def try_io(fn, *args) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    """("ok", result) or (errno name, message): for recording what a kernel did."""
    try:
        return "ok", fn(*args)
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno)), str(exc)


def allocated(path: str) -> int:
    """Bytes the filesystem allocated to `path` (st_blocks is in 512-byte units)."""
    return os.stat(path).st_blocks * 512


def device_size(dev: str) -> int:
    fd = os.open(dev, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def logical_block_size(dev: str) -> int:
    """The device's logical block size (O_DIRECT granularity), 512 when sysfs does not say."""
    name = os.path.basename(os.path.realpath(dev))
    try:
        with open(f"/sys/class/block/{name}/queue/logical_block_size") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return 512


def write_buffered(path: str, offset: int, data: bytes) -> None:
    """pwrite through the page cache (writeback merges neighbours into larger requests)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        done = os.pwrite(fd, data, offset)
        if done != len(data):
            raise OSError(errno.EIO, f"short write {done}/{len(data)} at {offset} on {path}")
    finally:
        os.close(fd)


def sync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
