"""A build's image carries the kernel that build linked.

Under ccache's depend mode an `.incbin` is invisible: x86's piggy.S (whose text holds only
the compressed kernel's sizes) came back from the cache with an earlier variant's kernel
inside, so a loop.c variant booted as the build before it. Real ccache shows it here; the
staging check refuses such an image."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.errors import InfraError
from harness.kernel.image import gzip_payload
from harness.kernel.make import check_image_holds_vmlinux, make_env


def _assemble_incbin(tmp_path: Path, blob: bytes) -> bytes:
    (tmp_path / "blob.bin").write_bytes(blob)
    (tmp_path / "piggy.S").write_text('.section .rodata\n.globl d\nd:\n.incbin "blob.bin"\n')
    argv = ["ccache", "gcc", "-Wp,-MMD,.piggy.o.d", "-c", "piggy.S", "-o", "piggy.o"]
    subprocess.run(argv, cwd=tmp_path, env=make_env(), check=True)
    dump = ["objcopy", "-O", "binary", "-j", ".rodata", "piggy.o", "/dev/stdout"]
    return subprocess.run(dump, cwd=tmp_path, capture_output=True, check=True).stdout


def test_ccache_as_the_build_runs_it_never_serves_a_stale_incbin(tmp_path, monkeypatch):
    if not shutil.which("ccache") or not shutil.which("gcc"):
        pytest.skip("needs ccache and gcc")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    assert _assemble_incbin(tmp_path, b"variant-one") == b"variant-one"
    assert _assemble_incbin(tmp_path, b"variant-two") == b"variant-two"  # same size, new bytes


def _bzimage(path: Path, kernel: bytes) -> Path:
    """A minimal x86 boot image: setup header pointing at a gzip payload."""
    setup_sects, payload_offset = 1, 64
    packed = gzip.compress(kernel)
    data = bytearray((setup_sects + 1) * 512 + payload_offset)
    data[0x1F1] = setup_sects
    data[0x202:0x206] = b"HdrS"
    data[0x248:0x24C] = payload_offset.to_bytes(4, "little")
    data[0x24C:0x250] = len(packed).to_bytes(4, "little")
    path.write_bytes(bytes(data) + packed + len(kernel).to_bytes(4, "little"))
    return path


def _obj(tmp_path: Path, linked: bytes) -> Path:
    obj = tmp_path / "obj"
    (obj / "arch/x86/boot/compressed").mkdir(parents=True)
    (obj / "arch/x86/boot/compressed/vmlinux.bin").write_bytes(linked)
    return obj


def test_the_payload_is_read_from_the_setup_header(tmp_path: Path) -> None:
    assert gzip_payload(_bzimage(tmp_path / "bzImage", b"kernel text")) == b"kernel text"
    (tmp_path / "other").write_bytes(b"\0" * 4096)
    assert gzip_payload(tmp_path / "other") is None


def test_an_image_holding_the_linked_kernel_passes(tmp_path: Path) -> None:
    image = _bzimage(tmp_path / "bzImage", b"loop variant")
    check_image_holds_vmlinux(_obj(tmp_path, b"loop variant"), image)


def test_an_image_holding_an_earlier_kernel_is_refused(tmp_path: Path) -> None:
    image = _bzimage(tmp_path / "bzImage", b"the build before")
    with pytest.raises(InfraError, match="does not carry the kernel this build linked"):
        check_image_holds_vmlinux(_obj(tmp_path, b"loop variant"), image)
