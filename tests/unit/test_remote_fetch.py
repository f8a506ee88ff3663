"""A remote run's results come home as a tar that its guest could shape: a hostile archive
(absolute path, `..`, a symlink out and a file written through it, a hard link, a device
node, a FIFO, setuid bits) extracts only its regular files and directories, inside the
destination, on Debian 12's Python 3.11.2 too (no tarfile filter there)."""

from __future__ import annotations

import ast
import io
import stat
import tarfile
from pathlib import Path

import pytest

from harness.errors import InfraError
from harness.run import remote as remote_mod
from harness.run.remote_fetch import member_parts, safe_extract


def _add(
    tar: tarfile.TarFile,
    name: str,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    linkname: str = "",
    mode: int = 0o644,
) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.size = kind, linkname, mode, len(data)
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 5
    tar.addfile(info, io.BytesIO(data) if data else None)


def hostile_tar(outside: Path) -> bytes:
    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w", format=tarfile.GNU_FORMAT) as tar:
        _add(tar, "./", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "./results.json", data=b'{"runs": []}')
        _add(tar, "./rep/console.log", data=b"boot\n")
        _add(tar, "./reproduce.sh", data=b"#!/bin/sh\n", mode=0o4755)  # setuid: dropped
        _add(tar, str(outside / "abs-escape"), data=b"pwned")
        _add(tar, "../dotdot-escape", data=b"pwned")
        _add(tar, "./rep/../../dotdot2", data=b"pwned")
        _add(tar, "./out-link", tarfile.SYMTYPE, linkname=str(outside))
        _add(tar, "./out-link/through-link", data=b"pwned")
        _add(tar, "./hard", tarfile.LNKTYPE, linkname=str(outside / "victim"))
        _add(tar, "./shared/zero", tarfile.CHRTYPE)
        _add(tar, "./shared/fifo", tarfile.FIFOTYPE)
    return blob.getvalue()


def test_member_names_inside_the_destination_only() -> None:
    assert member_parts("./a/b") == ("a", "b") and member_parts(".") == ()
    assert member_parts("/etc/passwd") is None and member_parts("a/../../b") is None


def test_a_hostile_archive_extracts_only_regular_files_inside(tmp_path: Path) -> None:
    outside, dest = tmp_path / "outside", tmp_path / "dest"
    outside.mkdir()
    (outside / "victim").write_text("keep")
    with tarfile.open(fileobj=io.BytesIO(hostile_tar(outside)), mode="r:") as tar:
        skipped = safe_extract(tar, dest)
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    # the link was not made, so the file "through" it is a plain file in a plain directory
    assert got == [
        "out-link",
        "out-link/through-link",
        "rep",
        "rep/console.log",
        "reproduce.sh",
        "results.json",
    ]
    assert all(p.is_dir() or stat.S_ISREG(p.lstat().st_mode) for p in dest.rglob("*"))
    assert (dest / "results.json").read_bytes() == b'{"runs": []}'
    assert stat.S_IMODE((dest / "reproduce.sh").stat().st_mode) & 0o7000 == 0
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "keep"
    assert not (tmp_path / "dotdot-escape").exists() and not (tmp_path / "dotdot2").exists()
    assert len(skipped) == 7, skipped


def test_the_total_size_is_capped(tmp_path: Path) -> None:
    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w") as tar:
        for i in range(3):
            _add(tar, f"f{i}", data=b"x" * 1000)
    blob.seek(0)
    with tarfile.open(fileobj=blob, mode="r:") as tar, pytest.raises(InfraError, match="over"):
        safe_extract(tar, tmp_path / "d", cap=2500)


def test_no_tar_extraction_passes_a_filter() -> None:
    """tarfile's filter= came in 3.11.4: Debian 12 (3.11.2) raises TypeError on it."""
    source = Path(remote_mod.__file__).parent.parent
    calls = [
        f"{path.name}:{node.lineno}"
        for path in source.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("extractall", "extract")
        and any(k.arg == "filter" for k in node.keywords)
    ]
    assert calls == []
