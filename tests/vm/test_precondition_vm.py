"""Preconditioned reads on real loop devices and a real guest."""

from __future__ import annotations

import contextlib
import os

import pytest

from guest import fio, prepare, targets
from guest.api import Context
from tests.unit.test_precondition import MIB, READ, SPARSE, _fio_json, _ios


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices and mounts")
def test_loop_randread_reads_written_data_and_figures_exclude_the_fill(tmp_path, host_left_clean):
    size_mb = 64
    ctx = Context(workdir=str(tmp_path / "work"), mode="host", disks={}, results=str(tmp_path))
    spec = {
        "name": "loop-dio-on-xfs",
        "kind": "loop",
        "fs": "xfs",
        "direct_io": True,
        "size_mb": size_mb,
    }
    with contextlib.ExitStack() as stack:
        prepared = prepare.target(spec, ctx, stack)
        backing = prepared.backing_file
        assert targets.holes_in(backing, size_mb * MIB) == [(0, size_mb * MIB)]  # sparse
        params = {
            **READ["fio"],
            "ioengine": "libaio",
            "iodepth": 8,
            "direct": 1,
            "runtime": 1,
            "time_based": 1,
        }
        step = {
            "id": "fio/loop-dio-on-xfs/randread-4k",
            "target": spec,
            "timeout_s": 120,
            "workload": {**READ, "fio": params},
        }
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
        sparse = {
            **step,
            "id": "sparse",
            "workload": {
                **SPARSE,
                "fio": {**SPARSE["fio"], "runtime": 1, "time_based": 1, "direct": 1},
            },
        }
        wrote = fio.run_workload(sparse, prepared, ctx, trace_stack=False)
        assert wrote.status == "pass", wrote.message
        assert "sparse" in wrote.details["precondition"]
        assert targets.holes_in(backing, size_mb * MIB) != []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices and mounts")
def test_loop_over_tmpfs_is_filled_too(tmp_path, host_left_clean):
    # the cost-mode benchmark's loop rows: no disk under the backing file at all
    ctx = Context(workdir=str(tmp_path / "work"), mode="host", disks={}, results=str(tmp_path))
    spec = {
        "name": "loop-dio-on-tmpfs",
        "kind": "loop",
        "fs": "tmpfs",
        "direct_io": True,
        "size_mb": 16,
    }
    params = {
        **READ["fio"],
        "ioengine": "libaio",
        "iodepth": 4,
        "direct": 1,
        "runtime": 1,
        "time_based": 1,
    }
    step = {
        "id": "tmpfs-read",
        "target": spec,
        "timeout_s": 60,
        "workload": {**READ, "fio": params},
    }
    with contextlib.ExitStack() as stack:
        prepared = prepare.target(spec, ctx, stack)
        assert prepared.extra["loop_dio"] == "1"  # tmpfs takes O_DIRECT since 6.6
        out = fio.run_workload(step, prepared, ctx, trace_stack=False)
        assert out.status == "pass", out.message
        assert targets.holes_in(prepared.backing_file, 16 * MIB) == []
        mnt = prepared.mountpoint
    assert not any(mnt in line for line in open("/proc/mounts"))
