"""Preconditioned reads: read rows on loop/file/dm targets read written data, filled once
per target outside the measured run; sparse-specific workloads keep their sparse file."""

import contextlib
import json
import os
import sys

import pytest

from harness.paths import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT))  # guest/ is not an installed package

from guest import fio, targets  # noqa: E402
from guest.api import Context, Prepared  # noqa: E402

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


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices and mounts")
def test_loop_randread_reads_written_data_and_figures_exclude_the_fill(tmp_path, host_left_clean):
    size_mb = 64
    ctx = Context(workdir=str(tmp_path / "work"), mode="host", disks={}, results=str(tmp_path))
    spec = {"name": "loop-dio-on-xfs", "kind": "loop", "fs": "xfs", "direct_io": True,
            "size_mb": size_mb}  # fmt: skip
    with contextlib.ExitStack() as stack:
        prepared = targets.prepare(spec, ctx, stack)
        backing = prepared.backing_file
        assert targets.holes_in(backing, size_mb * MIB) == [(0, size_mb * MIB)]  # sparse
        params = {**READ["fio"], "ioengine": "libaio", "iodepth": 8, "direct": 1,
                  "runtime": 1, "time_based": 1}  # fmt: skip
        step = {"id": "fio/loop-dio-on-xfs/randread-4k", "target": spec, "timeout_s": 120,
                "workload": {**READ, "fio": params}}  # fmt: skip
        out = fio.run_workload(step, prepared, ctx, trace_stack=False)
        assert out.status == "pass", out.message
        assert targets.holes_in(backing, size_mb * MIB) == []
        pre = out.details["precondition"]
        assert pre["filled_mb"] == size_mb and pre["by_step"] == step["id"]
        assert pre["seconds"] > 0
        fill = _fio_json(out.details["fio_json"].removesuffix(".json") + ".fill.json")
        assert _ios(fill, "write") == size_mb  # 1 MiB writes over the whole range
        measured = _fio_json(out.details["fio_json"])
        assert _ios(measured, "write") == 0 and _ios(measured, "read") > 0
        assert "write_iops" not in out.metrics and out.metrics["read_iops"] > 0
        # a second read row on the same target reuses the fill
        again = fio.run_workload({**step, "id": "second"}, prepared, ctx, trace_stack=False)
        assert again.details["precondition"]["by_step"] == step["id"]
        # a sparse-specific row gets its holes back
        sparse = {**step, "id": "sparse", "workload": {**SPARSE, "fio": {
            **SPARSE["fio"], "runtime": 1, "time_based": 1, "direct": 1}}}  # fmt: skip
        wrote = fio.run_workload(sparse, prepared, ctx, trace_stack=False)
        assert wrote.status == "pass", wrote.message
        assert "sparse" in wrote.details["precondition"]
        assert targets.holes_in(backing, size_mb * MIB) != []


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices and mounts")
def test_loop_over_tmpfs_is_filled_too(tmp_path, host_left_clean):
    # the cost-mode benchmark's loop rows: no disk under the backing file at all
    ctx = Context(workdir=str(tmp_path / "work"), mode="host", disks={}, results=str(tmp_path))
    spec = {"name": "loop-dio-on-tmpfs", "kind": "loop", "fs": "tmpfs", "direct_io": True,
            "size_mb": 16}  # fmt: skip
    params = {**READ["fio"], "ioengine": "libaio", "iodepth": 4, "direct": 1, "runtime": 1,
              "time_based": 1}  # fmt: skip
    step = {"id": "tmpfs-read", "target": spec, "timeout_s": 60,
            "workload": {**READ, "fio": params}}  # fmt: skip
    with contextlib.ExitStack() as stack:
        prepared = targets.prepare(spec, ctx, stack)
        assert prepared.extra["loop_dio"] == "1"  # tmpfs takes O_DIRECT since 6.6
        out = fio.run_workload(step, prepared, ctx, trace_stack=False)
        assert out.status == "pass", out.message
        assert targets.holes_in(prepared.backing_file, 16 * MIB) == []
        mnt = prepared.mountpoint
    assert not any(mnt in line for line in open("/proc/mounts"))
