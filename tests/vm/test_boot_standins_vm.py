"""The udev/tmpfiles stand-ins for real: the static binary in a private mount namespace,
and a guest booted with a kernel lacking a disk's driver."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.kernel import debian
from harness.vm import standins
from tests.unit.test_boot_standins import PLAN, _modules_without_nvme


def test_kernel_lacking_a_driver_names_the_module(tmp_path: Path, host_left_clean) -> None:
    if not standins.available():
        pytest.skip("needs root and unshare(1): the stand-in is not used here")
    kernel = debian.fetch("6.12")
    assert kernel.modules_dir is not None and kernel.image is not None
    modules = _modules_without_nvme(kernel, tmp_path / "mods")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    out = tmp_path / "out"
    spec = f"image:{kernel.image},modules={modules}"
    assert main(["run", "--kernel", spec, "--plan", str(plan), "--out", str(out)]) == 2
    steps = {s["id"]: s for s in json.loads((out / "results.json").read_text())["runs"][0]["steps"]}
    nvme = steps["fio/raw-nvme0/randread-4k"]
    assert nvme["status"] == "error" and "needs driver nvme" in nvme["message"], nvme
    assert steps["fio/raw-scsi0/randread-4k"]["status"] == "pass"
    console = next(out.glob("*/console.log")).read_text(errors="replace")
    assert "Starting systemd-udevd" not in console and "console fallback" not in console
    assert "starting script" in console
    shutil.rmtree(tmp_path / "mods", ignore_errors=True)


def test_compiled_standin_names_virtio_ports_and_answers_the_rest(tmp_path: Path) -> None:
    """The static binary run for real against a fake /sys/class/virtio-ports and a fresh
    /dev, both mounted in a private mount namespace (the host sees neither)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    binary = standins.compiled()
    assert binary is not None
    ports = tmp_path / "class/virtio-ports"
    for port, name in (
        ("vport1p1", "virtme.stdin\n"),
        ("vport2p1", "virtme.ret"),
        ("vport3p1", ""),
    ):
        (ports / port).mkdir(parents=True)
        (ports / port / "name").write_text(name)
    script = (
        f"mount --bind {tmp_path / 'class'} /sys/class && mount -t tmpfs none /dev && "
        f"{binary} --daemon --resolve-names=never && "
        'for l in /dev/virtio-ports/*; do echo "$l $(readlink $l)"; done'
    )
    argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    # the unnamed port gets no link
    assert done.stdout.splitlines() == [
        "/dev/virtio-ports/virtme.ret ../vport2p1",
        "/dev/virtio-ports/virtme.stdin ../vport1p1",
    ]
    for args in (["trigger", "--action=add"], ["settle"], ["--create", "--boot"]):
        assert subprocess.run([str(binary), *args], timeout=10).returncode == 0
