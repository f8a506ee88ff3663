"""Boots without udev's coldplug and systemd-tmpfiles (harness.vm.standins): the guest gets
a udev stand-in that only names the virtio ports, and the agent loads the drivers its disks
need. A kernel that lacks
one of them fails that disk's steps with an error naming the module, the others still run."""

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

ROOT = Path(__file__).resolve().parent.parent
PLAN = {"name": "two-disks", "runtime_s": 2, "size_mb": 64,
        "fio": [{"workloads": ["randread-4k"], "targets": ["raw-nvme0", "raw-scsi0"]}]}  # fmt: skip


def test_wrap_argv_runs_the_namespace_helper() -> None:
    argv = standins.wrap_argv(["vng", "--run", "/k"], python="/py")
    assert argv == ["unshare", "--mount", "--propagation", "private", "--",
                    "/py", "-m", "harness.vm.standins", "--", "vng", "--run", "/k"]  # fmt: skip
    assert standins.bind_argv(Path("/s.sh"), "/bin/udevadm") == [
        "mount", "--bind", "/s.sh", "/bin/udevadm"
    ]  # fmt: skip


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


def test_compiled_standin_names_virtio_ports_and_answers_the_rest(tmp_path: Path) -> None:
    """The static binary run for real against a fake /sys/class/virtio-ports and a fresh
    /dev, both mounted in a private mount namespace (the host sees neither)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    binary = standins.compiled()
    assert binary is not None
    ports = tmp_path / "class/virtio-ports"
    for port, name in (("vport1p1", "virtme.stdin\n"), ("vport2p1", "virtme.ret"),
                       ("vport3p1", "")):  # fmt: skip
        (ports / port).mkdir(parents=True)
        (ports / port / "name").write_text(name)
    script = (f"mount --bind {tmp_path / 'class'} /sys/class && mount -t tmpfs none /dev && "
              f"{binary} --daemon --resolve-names=never && "
              "for l in /dev/virtio-ports/*; do echo \"$l $(readlink $l)\"; done")  # fmt: skip
    argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    # the unnamed port gets no link
    assert done.stdout.splitlines() == ["/dev/virtio-ports/virtme.ret ../vport2p1",
                                        "/dev/virtio-ports/virtme.stdin ../vport1p1"]  # fmt: skip
    for args in (["trigger", "--action=add"], ["settle"], ["--create", "--boot"]):
        assert subprocess.run([str(binary), *args], timeout=10).returncode == 0


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


@pytest.mark.slow
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
