"""The initramfs a modular kernel boots through (harness.vm.boot_initramfs): module lists
from modprobe's real output, the load script's order, modules stored decompressed, and one
built for the real Debian 6.12 kernel."""

from __future__ import annotations

import gzip
import lzma
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.vm import boot_initramfs as bi

DATA = Path(__file__).parents[1] / "data" / "boot"
ELF = b"\x7fELF" + bytes(60)


def test_show_depends_lists_files_in_load_order_and_skips_builtins() -> None:
    files = bi.parse_show_depends((DATA / "show-depends-debian-6.12.txt").read_text())
    assert [bi.module_name(f) for f in files] == [
        "netfs",
        "9pnet",
        "9p",
        "nvme_auth",
        "nvme_core",
        "nvme",
    ]
    assert all(f.name.endswith(".ko.xz") for f in files)


def test_module_names_are_the_kernels() -> None:
    assert bi.module_name(Path("/m/nvme-core.ko.xz")) == "nvme_core"
    assert bi.module_name(Path("/m/9pnet_virtio.ko")) == "9pnet_virtio"
    assert bi.module_name(Path("/m/sd_mod.ko.zst")) == "sd_mod"


def test_show_depends_argv() -> None:
    assert bi.show_depends_argv(Path("/c/k"), "6.12.1-amd64", ["fs-9p", "overlay"]) == [
        "modprobe",
        "--show-depends",
        "--ignore-install",
        "-d",
        "/c/k",
        "-S",
        "6.12.1-amd64",
        "-a",
        "fs-9p",
        "overlay",
    ]


def test_drivers_load_in_a_background_job_beside_the_root_modules() -> None:
    root = [Path("/m/netfs.ko.xz"), Path("/m/9p.ko.xz")]
    drivers = [Path("/m/nvme-core.ko.xz"), Path("/m/nvme.ko.xz")]
    script = bi.load_script(root, drivers)
    assert script == (
        "(\n"
        "load /modules/nvme_core.ko nvme_core\n"
        "load /modules/nvme.ko nvme\n"
        ") &\n"
        "drivers=$!\n"
        "load /modules/netfs.ko netfs\n"
        "load /modules/9p.ko 9p\n"
    )
    assert "&" not in bi.load_script(root, [])
    # a driver chain that needs one of the root's modules waits for them
    shared = bi.load_script(root, [Path("/m/netfs.ko.xz"), Path("/m/cachefiles.ko.xz")])
    assert "&" not in shared and shared.count("netfs") == 2  # once: "load FILE NAME"
    assert shared.index("cachefiles") > shared.index("9p")


def test_init_waits_for_the_drivers_before_the_switch() -> None:
    init = bi.INIT_SCRIPT.read_text()
    wait = init.index('wait "$drivers"')
    assert init.index(". /modules/load.sh") < init.index("mount -n -t 9p") < wait
    assert wait < init.index("switch_root")
    assert "modprobe" not in init


@pytest.mark.parametrize(
    "suffix,pack", [(".xz", lzma.compress), (".gz", gzip.compress), ("", lambda b: b)]
)
def test_modules_are_stored_decompressed(tmp_path: Path, suffix: str, pack) -> None:
    src = tmp_path / f"m.ko{suffix}"
    src.write_bytes(pack(ELF))
    bi.unpack_module(src, tmp_path / "out.ko")
    assert (tmp_path / "out.ko").read_bytes() == ELF


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd not installed")
def test_zstd_modules_are_stored_decompressed(tmp_path: Path) -> None:
    (tmp_path / "m.ko").write_bytes(ELF)
    subprocess.run(["zstd", "-q", str(tmp_path / "m.ko")], check=True)
    bi.unpack_module(tmp_path / "m.ko.zst", tmp_path / "out.ko")
    assert (tmp_path / "out.ko").read_bytes() == ELF


def test_kernels_without_modules_or_initramfs_support_get_none(tmp_path: Path) -> None:
    assert bi.for_boot(None, None, ("nvme",)) is None
    assert bi.for_boot(tmp_path / "missing", None, ("nvme",)) is None
    config = tmp_path / ".config"
    config.write_text("# CONFIG_BLK_DEV_INITRD is not set\n")
    (tmp_path / "lib/modules/6.12").mkdir(parents=True)
    assert bi.for_boot(tmp_path / "lib/modules/6.12", config, ("nvme",)) is None


def test_a_tree_without_the_root_modules_falls_back_to_virtme_ngs(tmp_path: Path, caplog) -> None:
    tree = tmp_path / "lib/modules/6.12.0"
    tree.mkdir(parents=True)
    subprocess.run(["depmod", "-b", str(tmp_path), "6.12.0"], check=True, timeout=60)
    assert bi.for_boot(tree, None, ("nvme",)) is None
    assert "virtme-ng's own initramfs serves" in caplog.text and "fs-9p" in caplog.text


def _members(cpio: Path) -> list[str]:
    out = subprocess.run(
        ["cpio", "-t", "--quiet", "-F", str(cpio)], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_warm_param_carries_argv_as_one_word() -> None:
    argv = ("/usr/bin/python3", "-S", "-E", "/c/agent-bundle/agent-1.py", "--help")
    assert bi.warm_param(argv) == (
        "harness.warm=/usr/bin/python3,-S,-E,/c/agent-bundle/agent-1.py,--help"
    )
    assert bi.warm_param(("/usr/bin/python3", "/my dir/agent.py")) is None
    assert bi.warm_param(("/usr/bin/python3", "/a,b/agent.py")) is None
    assert bi.warm_param(("/usr/bin/python3", '/a"b/agent.py')) is None
    assert bi.warm_param(()) is None


def test_init_warms_up_after_the_root_mount_and_never_waits_for_it() -> None:
    init = bi.INIT_SCRIPT.read_text()
    assert init.index("mount -n -t 9p") < init.index('warm "${word#harness.warm=}"')
    assert 'wait "$drivers"' in init and "\nwait\n" not in init  # a bare wait would wait for it
    # and /init switches only once the warm-up has left the initramfs for the host's root
    assert init.index('while [ -e "/proc/$pid/root/modules/load.sh" ]') < init.index("switch_root")
