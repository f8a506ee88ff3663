"""A fetched kernel's modules are stored uncompressed (harness.kernel.modules): real xz,
gzip and depmod on a small tree; an older cache is converted once, in place."""

from __future__ import annotations

import gzip
import json
import lzma
from pathlib import Path

from harness.kernel import debian, modules

RELEASE = "9.9.9-test"


def _tree(root: Path, release: str = RELEASE) -> Path:
    mods = root / "lib/modules" / release / "kernel/drivers"
    mods.mkdir(parents=True)
    (mods / "a.ko.xz").write_bytes(lzma.compress(b"module a"))
    (mods / "b.ko.gz").write_bytes(gzip.compress(b"module b"))
    (mods / "c.ko").write_bytes(b"module c")
    return mods


def _dep(root: Path) -> str:
    return (root / "lib/modules" / RELEASE / "modules.dep").read_text()


def test_decompress_leaves_plain_modules_and_depmod_names_them(tmp_path: Path) -> None:
    mods = _tree(tmp_path)
    modules.decompress(tmp_path, RELEASE)
    assert sorted(p.name for p in mods.iterdir()) == ["a.ko", "b.ko", "c.ko"]
    assert (mods / "a.ko").read_bytes() == b"module a"
    assert (mods / "b.ko").read_bytes() == b"module b"
    dep = _dep(tmp_path)
    assert "kernel/drivers/a.ko:" in dep and "kernel/drivers/b.ko:" in dep and ".xz" not in dep


def test_commands_are_batched_and_a_missing_tool_leaves_modules_compressed(
    tmp_path: Path, monkeypatch
) -> None:
    mods = _tree(tmp_path)
    for i in range(modules.BATCH + 1):
        (mods / f"m{i}.ko.xz").write_bytes(b"")
    argvs = modules.decompress_argvs(tmp_path)
    xz = [a for a in argvs if a[0] == "xz"]
    assert [len(a) - 2 for a in xz] == [modules.BATCH, 2]  # 502 files, two commands
    monkeypatch.setattr(modules.shutil, "which", lambda tool: None if tool == "gzip" else tool)
    assert [a[0] for a in modules.decompress_argvs(tmp_path)] == ["xz", "xz"]


def test_an_older_cache_is_decompressed_once(tmp_path: Path) -> None:
    kernel = debian.DebianKernel("9.9.9", ("p",))
    plain = _tree(tmp_path, kernel.release)
    meta_path = tmp_path / "harness-kernel.json"
    meta_path.write_text(json.dumps({"packages": ["p.deb"], "abi": "9.9.9"}))  # no "modules"
    meta = debian._uncompressed(kernel, tmp_path, meta_path)
    assert meta["modules"] == debian.UNCOMPRESSED
    assert json.loads(meta_path.read_text())["modules"] == debian.UNCOMPRESSED
    assert sorted(p.name for p in plain.iterdir()) == ["a.ko", "b.ko", "c.ko"]
    (plain / "a.ko").write_bytes(b"changed")  # a second call must not touch the tree
    debian._uncompressed(kernel, tmp_path, meta_path)
    assert (plain / "a.ko").read_bytes() == b"changed"
