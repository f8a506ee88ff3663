"""`image:PATH[,modules=DIR]`: a kernel image the user already has."""

from __future__ import annotations

import hashlib
import re
import zlib
from pathlib import Path

from harness.errors import UserError
from harness.kernel.model import Kernel
from harness.paths import cache_subdir


def image_release(image: Path) -> str:
    """The release string embedded in a bzImage ("Linux version X (user@host) ...")."""
    data = image.read_bytes()
    # x86 bzImage: the setup header points at a NUL-terminated version string.
    if len(data) > 0x210 and data[0x202:0x206] == b"HdrS":
        offset = int.from_bytes(data[0x20E:0x210], "little") + 0x200
        return data[offset : data.index(b"\0", offset)].split(b" ")[0].decode(errors="replace")
    found = re.search(rb"Linux version (\S+)", data)  # an uncompressed vmlinux
    if found:
        return found.group(1).decode(errors="replace")
    raise UserError(f"{image} does not look like a Linux kernel image: give a bzImage/vmlinuz")


def gzip_payload(image: Path) -> bytes | None:
    """The uncompressed kernel a gzip-compressed x86 bzImage carries (the setup header's
    payload_offset/payload_length), or None for another format or compression."""
    data = image.read_bytes()
    if len(data) < 0x250 or data[0x202:0x206] != b"HdrS":
        return None
    setup_sects = data[0x1F1] or 4
    offset = int.from_bytes(data[0x248:0x24C], "little")
    length = int.from_bytes(data[0x24C:0x250], "little")
    start = (setup_sects + 1) * 512 + offset
    blob = data[start : start + length]
    if not blob.startswith(b"\x1f\x8b"):
        return None
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(blob)


def parse_image_spec(text: str) -> tuple[Path, Path | None]:
    """`image:PATH[,modules=DIR]` -> (image, modules dir or None)."""
    body = text.removeprefix("image:")
    path, *opts = body.split(",")
    modules = None
    for opt in opts:
        key, _, value = opt.partition("=")
        if key != "modules" or not value:
            raise UserError(f"bad option '{opt}' in '{text}': the form is image:PATH[,modules=DIR]")
        modules = Path(value).expanduser().resolve()
    if not path:
        raise UserError(f"'{text}' names no image: the form is image:PATH[,modules=DIR]")
    return Path(path).expanduser().resolve(), modules


def _staged_layout(image: Path, modules: Path, release: str) -> Path:
    """A boot/ + lib/modules/ tree of symlinks, the layout virtme-ng derives modules from."""
    key = hashlib.sha256(f"{image}\0{modules}".encode()).hexdigest()[:16]
    root = cache_subdir("images") / key
    (root / "boot").mkdir(parents=True, exist_ok=True)
    (root / "lib/modules").mkdir(parents=True, exist_ok=True)
    for link, target in (
        (root / "boot" / f"vmlinuz-{release}", image),
        (root / "lib/modules" / release, modules),
    ):
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target)
    return root / "boot" / f"vmlinuz-{release}"


def from_spec(text: str) -> Kernel:
    image, modules = parse_image_spec(text)
    if not image.is_file():
        raise UserError(f"kernel image {image} does not exist: check the path in '{text}'")
    if modules is not None and not modules.is_dir():
        raise UserError(f"modules directory {modules} does not exist: fix modules= in '{text}'")
    release = image_release(image)
    boot_image = _staged_layout(image, modules, release) if modules else image
    return Kernel(
        spec=text,
        image=boot_image,
        release=release,
        modules_dir=modules,
        provenance={"source": "image", "sha256": _sha256(image)},
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
