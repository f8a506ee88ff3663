"""Topology validation and the QEMU argv fragments it produces."""

import json
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.vm import topology as t


def test_default_topology_fragments() -> None:
    topo = t.load("default")
    images = {"nvme0": Path("/r/nvme0.raw"), "scsi0": Path("/r/scsi0.raw")}
    assert t.qemu_argv(topo, images) == [
        "-drive",
        "file=/r/nvme0.raw,if=none,id=hd-nvme0,format=raw,cache=none,aio=threads,discard=unmap",
        "-device",
        "nvme,id=hc-nvme0,drive=hd-nvme0,serial=HNVME0,max_ioqpairs=4",
        "-drive",
        "file=/r/scsi0.raw,if=none,id=hd-scsi0,format=raw,cache=none,aio=threads,discard=unmap",
        "-device",
        "virtio-scsi-pci,id=hc-scsi0,num_queues=4",
        "-device",
        "scsi-hd,drive=hd-scsi0,bus=hc-scsi0.0,serial=HSCSI0",
    ]
    assert topo.plan_disks() == [
        {"name": "nvme0", "bus": "nvme", "serial": "HNVME0"},
        {"name": "scsi0", "bus": "scsi", "serial": "HSCSI0"},
    ]


def test_throttle_and_virtio_blk() -> None:
    disk = t.Disk("vblk0", "virtio-blk", queues=2, iops_limit=200, discard=False)
    assert t.drive_argv(disk, Path("/i"))[1].endswith("discard=ignore,throttling.iops-total=200")
    assert t.device_argv(disk) == [
        "-device",
        "virtio-blk-pci,drive=hd-vblk0,serial=HVBLK0,num-queues=2",
    ]


def test_poll_queues_and_no_nvme_multipath_reach_the_kernel_command_line() -> None:
    single = "nvme_core.multipath=N"  # QEMU 10 would put a multipath head before the disk
    assert t.load("nvme-poll").kernel_append() == ["nvme.poll_queues=1", single]
    assert t.load("default").kernel_append() == ["nvme.poll_queues=1", single]
    assert t.load("all-buses").kernel_append() == [single]
    assert t.Topology("scsi", (t.Disk("scsi0", "scsi"),)).kernel_append() == []


def write(tmp_path: Path, data: object) -> str:
    path = tmp_path / "topo.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"disks": []}, "has no disks"),
        ({"disks": [{"name": "d0", "bus": "ide"}]}, "bus 'ide' must be one of"),
        ({"disks": [{"name": "d0", "bus": "nvme", "colour": 1}]}, "unknown keys"),
        (
            {"disks": [{"name": "d0", "bus": "nvme", "aio": "native", "cache": "writeback"}]},
            "aio 'native' needs cache",
        ),
        ({"disks": [{"name": "d0", "bus": "scsi", "poll_queues": 1}]}, "poll_queues needs"),
        ({"disks": [{"name": "a", "bus": "nvme"}, {"name": "a", "bus": "scsi"}]}, "repeats"),
        ({"disks": [{"bus": "nvme"}]}, "disks\\[0\\]"),
        ({"disks": [{"name": "d0", "bus": "nvme"}], "gpus": 1}, "unknown keys"),
    ],
)
def test_malformed_topology_files(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(UserError, match=message):
        t.load(write(tmp_path, data))


def test_unknown_topology_name() -> None:
    with pytest.raises(UserError, match="use one of default"):
        t.load("nosuch")


def test_images_are_sparse(tmp_path: Path) -> None:
    images = t.create_images(t.load("default"), tmp_path)
    for path in images.values():
        st = path.stat()
        assert st.st_size == 2048 << 20
        assert st.st_blocks * 512 < 1 << 20


def test_drivers_follow_the_disks_buses_in_first_use_order() -> None:
    assert t.BUILTIN["default"].drivers() == ("nvme", "virtio_scsi", "sd_mod")
    assert t.BUILTIN["all-buses"].drivers() == ("nvme", "virtio_scsi", "sd_mod", "virtio_blk")
    two = t.Topology("two", (t.Disk("a", "scsi"), t.Disk("b", "scsi")))
    assert two.drivers() == ("virtio_scsi", "sd_mod")


def test_the_host_and_the_agent_name_the_same_drivers() -> None:
    import sys

    from harness.paths import PROJECT_ROOT

    sys.path.insert(0, str(PROJECT_ROOT))  # guest/ imports itself as `guest`
    from guest import disks

    assert t.BUS_DRIVERS == disks.DRIVERS
    assert set(t.BUS_DRIVERS) == set(t.BUSES)
