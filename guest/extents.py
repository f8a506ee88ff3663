"""FIEMAP: a file's extents, and the dm-linear table that maps a device straight onto them.

This is the "static extent map" of the dm-loop proposal and Android's dm-linear setups:
correct only while the filesystem never moves or shares the file's blocks.
"""

from __future__ import annotations

import fcntl
import os
import struct

FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 0x1
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_UNKNOWN = 0x2
FIEMAP_EXTENT_DELALLOC = 0x4
FIEMAP_EXTENT_ENCODED = 0x8
_HEADER = struct.Struct("=QQIIII")
_EXTENT = struct.Struct("=QQQQQIIII")
_BATCH = 256


def parse_fiemap(buf: bytes) -> tuple[list[tuple[int, int, int, int]], bool]:
    """(extents as (logical, physical, length, flags) in bytes, saw the last extent)."""
    _, _, _, mapped, _, _ = _HEADER.unpack_from(buf, 0)
    out = []
    last = False
    for i in range(mapped):
        fields = _EXTENT.unpack_from(buf, _HEADER.size + i * _EXTENT.size)
        logical, physical, length, flags = fields[0], fields[1], fields[2], fields[5]
        out.append((logical, physical, length, flags))
        last = last or bool(flags & FIEMAP_EXTENT_LAST)
    return out, last


def fiemap(path: str) -> list[tuple[int, int, int, int]]:
    """All extents of `path` after syncing it (FIEMAP_FLAG_SYNC)."""
    found: list[tuple[int, int, int, int]] = []
    start = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            buf = bytearray(_HEADER.size + _BATCH * _EXTENT.size)
            _HEADER.pack_into(buf, 0, start, 2**64 - 1 - start, FIEMAP_FLAG_SYNC, 0, _BATCH, 0)
            fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
            batch, last = parse_fiemap(bytes(buf))
            found.extend(batch)
            if last or not batch:
                return found
            start = batch[-1][0] + batch[-1][2]
    finally:
        os.close(fd)


def linear_table(extents: list[tuple[int, int, int, int]], st_dev: int, size: int) -> str:
    """A dm-linear table (one line per extent, 512-byte sectors) for the first `size` bytes.

    Raises ValueError for holes or extents the map cannot express (delalloc, encoded,
    unaligned): a static map needs a fully allocated, plainly stored file.
    """
    dev = f"{os.major(st_dev)}:{os.minor(st_dev)}"
    lines = []
    expect = 0
    bad = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_ENCODED
    for logical, physical, length, flags in extents:
        if logical >= size:
            break
        length = min(length, size - logical)  # blocks preallocated past EOF are not the file's
        if logical != expect:
            raise ValueError(f"hole at byte {expect}: a static map needs a fully written file")
        if flags & bad or (logical | physical | length) % 512:
            raise ValueError(f"extent at byte {logical} (flags {flags:#x}) cannot be mapped")
        lines.append(f"{logical // 512} {length // 512} linear {dev} {physical // 512}\n")
        expect = logical + length
    if expect < size:
        raise ValueError(f"hole at byte {expect}: a static map needs a fully written file")
    return "".join(lines)
