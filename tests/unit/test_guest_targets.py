"""Pure parts of target preparation: command lines, FIEMAP -> dm-linear table, xfail rules."""

import os
import sys

import pytest

from harness.paths import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT))  # guest/ is not an installed package

from guest import extents, fio, runner, targets  # noqa: E402
from guest.api import Skip  # noqa: E402

MIB = 1024 * 1024


def test_mkfs_argv():
    assert targets.mkfs_argv("xfs", "/dev/loop3") == [
        "mkfs.xfs",
        "-f",
        "-q",
        "-K",
        "-m",
        "reflink=1",
        "/dev/loop3",
    ]
    assert targets.mkfs_argv("xfs", "/dev/loop3", 4096)[-3:] == ["-s", "size=4096", "/dev/loop3"]
    assert targets.mkfs_argv("ext4", "/dev/sda") == [
        "mkfs.ext4",
        "-F",
        "-q",
        "-E",
        "nodiscard",
        "/dev/sda",
    ]
    with pytest.raises(Skip, match="unknown filesystem"):
        targets.mkfs_argv("zfs", "/dev/sda")


def test_losetup_argv():
    assert targets.losetup_argv("/w/b.img", direct_io=True) == [
        "losetup",
        "-f",
        "--show",
        "--direct-io=on",
        "--sector-size",
        "512",
        "/w/b.img",
    ]
    assert targets.losetup_argv("/w/b.img", direct_io=False, block_size=4096, sizelimit=MIB) == [
        "losetup",
        "-f",
        "--show",
        "--direct-io=off",
        "--sector-size",
        "4096",
        "--sizelimit",
        str(MIB),
        "/w/b.img",
    ]


def test_fio_argv_keeps_options_in_order_and_flags_bare():
    argv = fio.fio_argv(
        "j",
        "/dev/loop0",
        {"rw": "randread", "bs": "4k", "hipri": True, "skip": False},
        "/r/out.json",
    )
    assert argv == [
        "fio",
        "--name=j",
        "--filename=/dev/loop0",
        "--output-format=json",
        "--output=/r/out.json",
        "--rw=randread",
        "--bs=4k",
        "--hipri",
    ]
    assert fio.safe_name("fio/loop-dio-on-xfs/randread-4k") == "fio_loop-dio-on-xfs_randread-4k"


def test_linear_table_maps_extents_in_sectors_and_trims_past_eof():
    dev = os.makedev(259, 0)
    ext = [(0, 8 * MIB, MIB, 0), (MIB, 20 * MIB, 2 * MIB, extents.FIEMAP_EXTENT_LAST)]
    table = extents.linear_table(ext, dev, 2 * MIB)
    assert table == "0 2048 linear 259:0 16384\n2048 2048 linear 259:0 40960\n"


@pytest.mark.parametrize(
    ("ext", "problem"),
    [
        ([(MIB, 0, MIB, 1)], "hole at byte 0"),
        ([(0, 0, MIB, 0)], "hole at byte 1048576"),
        ([(0, 0, 2 * MIB, extents.FIEMAP_EXTENT_DELALLOC)], "cannot be mapped"),
    ],
)
def test_linear_table_refuses_what_a_static_map_cannot_express(ext, problem):
    with pytest.raises(ValueError, match=problem):
        extents.linear_table(ext, os.makedev(8, 0), 2 * MIB)


def test_fiemap_of_a_real_written_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(os.urandom(3 * MIB))
    found = extents.fiemap(str(path))
    assert found and found[0][0] == 0
    assert sum(length for _, _, length, _ in found) >= 3 * MIB
    table = extents.linear_table(found, os.stat(path).st_dev, 3 * MIB)
    assert sum(int(line.split()[1]) for line in table.splitlines()) == 3 * MIB // 512


def test_fiemap_of_a_sparse_file_has_no_static_map(tmp_path):
    path = tmp_path / "s"
    with open(path, "wb") as fh:
        fh.truncate(4 * MIB)
    with pytest.raises(ValueError, match="hole"):
        extents.linear_table(extents.fiemap(str(path)), os.stat(path).st_dev, 4 * MIB)


@pytest.mark.parametrize(
    ("status", "expect"),
    [("fail", "xfail"), ("pass", "fail"), ("skip", "skip"), ("error", "error")],
)
def test_expected_failure_rules(status, expect):
    step = {"xfail": "static map writes into shared extents"}
    got, message = runner._apply_xfail(step, status, "clone changed")
    assert got == expect
    if expect == "xfail":
        assert message.startswith("expected failure (static map")
    assert runner._apply_xfail({}, status, "m") == (status, "m")
