"""Config fragments (the files in kconfigs/ are data) and dropped-option detection."""

from pathlib import Path

import pytest

from harness.errors import UserError
from harness.kernel.kconfig import (
    Dropped,
    Fragment,
    config_hash,
    dropped_options,
    load_fragments,
    parse_config,
    requested_options,
)
from harness.paths import KCONFIG_DIR

DATA = Path(__file__).parents[1] / "data" / "kconfig"

# What the issue says the harness needs, all built in.
REQUIRED_BUILTIN = """64BIT SMP PCI VIRTIO_PCI VIRTIO_BLK SCSI_VIRTIO BLK_DEV_SD BLK_DEV_NVME NET_9P
NET_9P_VIRTIO 9P_FS 9P_FS_POSIX_ACL FUSE_FS VIRTIO_FS OVERLAY_FS TMPFS DEVTMPFS SERIAL_8250
SERIAL_8250_CONSOLE VIRTIO_CONSOLE TTY PRINTK BINFMT_ELF BINFMT_SCRIPT FILE_LOCKING PROC_FS
SYSFS MULTIUSER FUTEX EPOLL SIGNALFD TIMERFD EVENTFD SHMEM AIO IO_URING INOTIFY_USER UNIX
BLK_DEV_LOOP BLK_DEV_DM XFS_FS EXT4_FS BTRFS_FS FTRACE STACK_TRACER VMAP_STACK
DETECT_HUNG_TASK SOFTLOCKUP_DETECTOR MAGIC_SYSRQ ACPI""".split()


def test_parse_config_set_unset_and_strings() -> None:
    text = 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n# comment\nCONFIG_D=0x10\n'
    assert parse_config(text) == {
        "CONFIG_A": "y",
        "CONFIG_B": "n",
        "CONFIG_C": '"x y"',
        "CONFIG_D": "0x10",
    }


def test_base_fragment_requests_everything_the_harness_needs_built_in() -> None:
    base = load_fragments([])[0]
    assert base.name == "base"
    options = base.options()
    missing = [o for o in REQUIRED_BUILTIN if options.get(f"CONFIG_{o}") != "y"]
    assert missing == []


def test_fragments_are_well_formed() -> None:
    for path in sorted(KCONFIG_DIR.glob("*.config")):
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                assert line.startswith("CONFIG_") and "=" in line, f"{path.name}: {line}"
        assert parse_config(path.read_text()), path.name


def test_load_fragments_puts_base_first_once() -> None:
    names = [f.name for f in load_fragments(["debug", "base", "debug"])]
    assert names == ["base", "debug"]


def test_perf_undoes_debug_when_later() -> None:
    merged = requested_options(load_fragments(["debug", "perf"]))
    assert merged["CONFIG_KASAN"] == "n"
    assert requested_options(load_fragments(["perf", "debug"]))["CONFIG_KASAN"] == "y"


def test_unknown_fragment_names_the_known_ones() -> None:
    with pytest.raises(UserError, match="known: .*debug"):
        load_fragments(["nosuch"])


def test_config_hash_changes_with_text_and_arch() -> None:
    a = (Fragment("base", "CONFIG_A=y\n"),)
    b = (Fragment("base", "CONFIG_A=n\n"),)
    assert config_hash(a, "x86_64") != config_hash(b, "x86_64")
    assert config_hash(a, "x86_64") != config_hash(a, "arm64")
    assert config_hash(a, "x86_64") == config_hash(a, "x86_64")


def test_dropped_options_on_a_real_config() -> None:
    # Recorded from olddefconfig on linux-source-6.12 with base+debug before debug.config
    # enabled RUNTIME_TESTING_MENU: LKDTM was silently dropped.
    final = parse_config((DATA / "base+debug-lkdtm-dropped.config").read_text())
    requested = requested_options(load_fragments(["debug"]))
    requested.pop("CONFIG_RUNTIME_TESTING_MENU")
    assert dropped_options(requested, final) == [Dropped("CONFIG_LKDTM", "y", "unset")]


def test_dropped_options_flags_wrong_values() -> None:
    final = {"CONFIG_A": "m", "CONFIG_B": "y"}
    dropped = dropped_options({"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": "n"}, final)
    assert [str(d) for d in dropped] == ["CONFIG_A=y (got m)", "CONFIG_B=n (got y)"]
