"""Preconditioned reads: read rows on loop/file/dm targets read written data, filled once
per target outside the measured run; sparse-specific workloads keep their sparse file."""

import json
import sys

import pytest

from harness.paths import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT))  # guest/ is not an installed package

from guest import targets  # noqa: E402
from guest.api import Prepared  # noqa: E402

MIB = 1024 * 1024
READ = {"name": "randread-4k", "fio": {"rw": "randread", "bs": "4k"}}
WRITE = {"name": "randwrite-4k", "fio": {"rw": "randwrite", "bs": "4k"}}
SPARSE = {"name": "ming-randwrite-sparse", "fio": {"rw": "randwrite", "bs": "4k"}}
MIXED = {"name": "mikulas-rw-libaio", "fio": {"rw": "randrw"}}


@pytest.mark.parametrize(
    ("workload", "kind", "expected"),
    [
        (READ, "loop", True),
        (READ, "file", True),
        (READ, "dm-linear", True),
        (READ, "nested-loop", True),
        (MIXED, "loop", True),
        (READ, "raw", False),
        (WRITE, "loop", False),
        (SPARSE, "loop", False),
        ({"name": "read-sparse", "fio": {"rw": "read"}}, "loop", False),
    ],
)
def test_which_rows_are_filled(workload, kind, expected):
    assert targets.needs_fill(workload, Prepared("t", kind, "/dev/x")) is expected


def test_fill_argv_is_one_sequential_direct_write():
    assert targets.fill_argv("/dev/loop7", 64, "/r/f.json") == [
        "fio",
        "--name=precondition",
        "--filename=/dev/loop7",
        "--rw=write",
        "--bs=1M",
        "--ioengine=libaio",
        "--iodepth=4",
        "--direct=1",
        "--size=64M",
        "--end_fsync=1",
        "--output-format=json",
        "--output=/r/f.json",
    ]


def test_holes_in_a_real_sparse_file(tmp_path):
    path = tmp_path / "f"
    with open(path, "wb") as fh:
        fh.truncate(8 * MIB)
        fh.seek(2 * MIB)
        fh.write(b"x" * MIB)
    holes = targets.holes_in(str(path), 8 * MIB)
    if holes == [(0, 8 * MIB)] or not holes:
        pytest.skip("this filesystem reports no holes (SEEK_HOLE unsupported)")
    assert holes[0] == (0, 2 * MIB) and holes[-1][1] == 8 * MIB
    assert all(not (s < 3 * MIB and e > 2 * MIB) for s, e in holes)


def _fio_json(path):
    with open(path) as fh:
        return json.load(fh)


def _ios(data, direction):
    return sum(job[direction]["total_ios"] for job in data["jobs"])
