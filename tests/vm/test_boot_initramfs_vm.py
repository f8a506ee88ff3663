"""The harness initramfs built for a real Debian kernel tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.vm import boot_initramfs as bi
from tests.unit.test_boot_initramfs import _members


def test_built_for_the_real_debian_kernel(tmp_path: Path) -> None:
    from harness.kernel import debian

    kernel = debian.fetch("6.12")
    assert kernel.modules_dir is not None
    cpio = bi.for_boot(kernel.modules_dir, kernel.config, ("nvme", "virtio_scsi", "sd_mod"))
    assert cpio is not None and cpio.parent.name == "initramfs"
    members = _members(cpio)
    for module in (
        "netfs",
        "9pnet",
        "9p",
        "9pnet_virtio",
        "overlay",
        "nvme_core",
        "nvme",
        "scsi_mod",
        "virtio_scsi",
        "sd_mod",
    ):
        assert f"modules/{module}.ko" in members
    assert "bin/modprobe" not in members and "init" in members
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["cpio", "-id", "--quiet", "-F", str(cpio)], cwd=root, check=True)
    assert (root / "modules/nvme.ko").read_bytes()[:4] == b"\x7fELF"  # decompressed
    load = (root / "modules/load.sh").read_text()
    assert load.index("nvme_core") < load.index("load /modules/nvme.ko")
    # a driver the tree lacks is left to the agent (which names it); the rest still load
    chain = bi.module_chain(kernel.modules_dir, kernel.modules_dir.name, ("nvme", "nosuch"), False)
    assert [bi.module_name(f) for f in chain] == ["nvme_auth", "nvme_core", "nvme"]
    # cached: a second boot reuses it
    assert bi.for_boot(kernel.modules_dir, kernel.config, ("nvme", "virtio_scsi", "sd_mod")) == cpio
