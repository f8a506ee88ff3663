"""Boots without udev's coldplug and systemd-tmpfiles (harness.vm.standins): the guest gets
a udev stand-in that only names the virtio ports, and the agent loads the drivers its disks
need. A kernel that lacks
one of them fails that disk's steps with an error naming the module, the others still run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness.vm import standins

ROOT = Path(__file__).resolve().parents[2]
PLAN = {
    "name": "two-disks",
    "runtime_s": 2,
    "size_mb": 64,
    "fio": [{"workloads": ["randread-4k"], "targets": ["raw-nvme0", "raw-scsi0"]}],
}


def test_wrap_argv_runs_the_namespace_helper() -> None:
    argv = standins.wrap_argv(["vng", "--run", "/k"], python="/py")
    assert argv == [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/py",
        "-m",
        "harness.vm.standins",
        "--",
        "vng",
        "--run",
        "/k",
    ]
    assert standins.bind_argv(Path("/s.sh"), "/bin/udevadm") == [
        "mount",
        "--bind",
        "/s.sh",
        "/bin/udevadm",
    ]


def test_binds_cover_udev_and_tmpfiles_on_this_host() -> None:
    binary = standins.compiled()
    assert binary is not None, "gcc -static failed: bootstrap.sh installs build-essential"
    pairs = {target: source for source, target in standins.binds()}
    targets = set(standins.udev_binaries()) | set(standins.real_files(standins.TMPFILES_PATHS))
    assert targets and pairs == {t: str(binary) for t in targets}


def test_without_a_compiler_the_shell_standin_and_true_serve(monkeypatch) -> None:
    monkeypatch.setattr(standins, "compiled", lambda: None)
    pairs = {target: source for source, target in standins.binds()}
    daemons = standins.real_files(standins.UDEV_PATHS, ("udevd",))
    assert daemons and all(pairs[t] == str(standins.UDEV_STANDIN) for t in daemons)
    assert set(standins.udev_binaries()) <= set(pairs)  # udevadm too, one way or the other
    for target in standins.real_files(standins.TMPFILES_PATHS):
        assert os.path.basename(pairs[target]) == "true"
        assert subprocess.run([pairs[target], "--create", "--boot"], timeout=10).returncode == 0


def test_standin_names_virtio_ports_and_answers_the_rest(tmp_path: Path) -> None:
    script = standins.UDEV_STANDIN.read_text()
    assert script.startswith("#!/bin/sh") and "/dev/virtio-ports" in script
    done = subprocess.run(["sh", str(standins.UDEV_STANDIN), "trigger", "--action=add"], timeout=10)
    assert done.returncode == 0  # udevadm trigger/settle: success, nothing done


def _modules_without_nvme(kernel, dest: Path) -> Path:
    """A copy (symlink tree) of the Debian kernel's modules without the nvme driver."""
    release = kernel.release
    tree = dest / "lib/modules" / release
    tree.parent.mkdir(parents=True)
    subprocess.run(["cp", "-as", str(kernel.modules_dir), str(tree)], check=True, timeout=300)
    for ko in tree.glob("kernel/drivers/nvme/host/nvme.ko*"):
        ko.unlink()
    subprocess.run(["depmod", "-a", "-b", str(dest), release], check=True, timeout=600)
    return tree


def test_a_stand_in_that_does_not_compile_is_tried_once(tmp_path: Path, monkeypatch) -> None:
    """gcc present but failing (no static libc): the shell stand-in serves, the failure is
    recorded next to where the binary would be, and later boots do not compile again."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    failing = ["sh", "-c", "echo 'cannot find -lc' >&2; exit 1"]
    monkeypatch.setattr(standins, "compile_argv", lambda source, out: failing)
    assert standins.compiled() is None
    (failed,) = (tmp_path / "standins").glob("*.failed")
    assert "cannot find -lc" in failed.read_text()

    def no_compiler(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(standins.subprocess, "run", no_compiler)
    assert standins.compiled() is None
