"""virtme-ng and bare-QEMU command lines are pure lists; assert on them exactly."""

import shlex
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.vm.initramfs import qemu_floor_argv
from harness.vm.launch import (
    GUEST_MODULE_BLACKLIST,
    ROOT_9P_FLAGS,
    TCG_QEMU_ARGS,
    BootSpec,
    agent_argv,
    vng_argv,
)


def spec(**kw: object) -> BootSpec:
    base = dict(
        image=Path("/k/vmlinuz-6.12"),
        exec_argv=agent_argv(
            "/usr/bin/python3", Path("/h/guest/agent.py"), Path("/o/p.json"), Path("/o")
        ),
        rw_dirs=(Path("/o"),),
        qemu_args=("-device", "nvme,id=hc-nvme0,serial=HNVME0"),
        vng="/v/vng",
    )
    base.update(kw)
    return BootSpec(**base)  # type: ignore[arg-type]


def test_vng_argv_tcg() -> None:
    assert vng_argv(spec()) == [
        "/v/vng",
        "--run",
        "/k/vmlinuz-6.12",
        "--verbose",
        "--disable-monitor",
        "--force-9p",
        "--disable-kvm",
        "--cpus",
        "2",
        "--memory",
        "2048M",
        "--rwdir=/o",
        "--cwd",
        "/",
        "--append",
        "loglevel=7",
        "--append",
        "panic=-1",
        "--append",
        "sysctl.kernel.hung_task_timeout_secs=20",
        "--append",
        "sysctl.kernel.hung_task_warnings=-1",
        "--append",
        "modprobe.blacklist=" + ",".join(GUEST_MODULE_BLACKLIST),
        "--append",
        "i8042.noaux",
        "--append",
        ROOT_9P_FLAGS,
        "--append",
        "tsc=reliable",
        "--exec",
        "/usr/bin/python3 /h/guest/agent.py --plan /o/p.json --results /o",
        "--qemu-opts=-device nvme,id=hc-nvme0,serial=HNVME0 -accel tcg,thread=multi",
    ]


def test_kvm_and_append() -> None:
    argv = vng_argv(spec(accel="kvm", append=("nvme.poll_queues=1",)))
    assert "--disable-kvm" not in argv and "tsc=reliable" not in argv
    assert argv[argv.index("nvme.poll_queues=1") - 1] == "--append"


def test_qemu_words_survive_vngs_shell() -> None:
    argv = vng_argv(spec(qemu_args=("-drive", "file=/x;rm -rf /,if=none")))
    opts = argv[-1].removeprefix("--qemu-opts=")
    assert shlex.split(opts) == ["-drive", "file=/x;rm -rf /,if=none", *TCG_QEMU_ARGS]


def test_white_space_in_paths_is_refused() -> None:
    with pytest.raises(UserError, match="cannot pass safely"):
        vng_argv(spec(rw_dirs=(Path("/my results"),)))


def test_floor_argv(monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_QEMU", "system")
    argv = qemu_floor_argv(Path("/k"), None, "tcg")
    assert argv[:3] == ["qemu-system-x86_64", "-machine", "q35,accel=tcg"]
    assert argv[argv.index("-append") + 1] == "console=ttyS0 panic=-1 rdinit=/init"
    assert argv[argv.index("-initrd") + 1].endswith(".cpio")


def test_floor_argv_without_initramfs_support_boots_a_root_disk(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("CONFIG_BLK_DEV=y\n# CONFIG_BLK_DEV_INITRD is not set\n")
    argv = qemu_floor_argv(Path("/k"), config, "tcg")
    assert "-initrd" not in argv
    assert argv[argv.index("-drive") + 1].endswith(".ext4,if=virtio,format=raw,readonly=on")
    assert "root=/dev/vda ro rootfstype=ext4 init=/init" in argv[argv.index("-append") + 1]
    config.write_text("CONFIG_BLK_DEV_INITRD=y\n")
    assert "-initrd" in qemu_floor_argv(Path("/k"), config, "tcg")


def test_the_harness_initramfs_is_the_last_initrd_qemu_sees() -> None:
    argv = vng_argv(spec(initrd=Path("/c/initramfs/boot-6.12.cpio")))
    qemu = shlex.split(argv[-1].removeprefix("--qemu-opts="))
    assert qemu[-2:] == ["-initrd", "/c/initramfs/boot-6.12.cpio"]  # after vng's own
    assert not any("-initrd" in a for a in vng_argv(spec()))


def test_white_space_in_the_initrd_path_is_refused() -> None:
    with pytest.raises(UserError, match="cannot pass safely"):
        vng_argv(spec(initrd=Path("/c/my initramfs.cpio")))
