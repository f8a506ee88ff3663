"""Stacked targets on this host's real loop devices: built, used, and torn down whole, also
when a layer fails half-way (issue #26 item 1). Needs root and loop devices."""

import contextlib
import glob
import os
import sys

import pytest

from harness.paths import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT))  # guest/ is not an installed package

from guest import blockio, stacked, targets  # noqa: E402
from guest.api import Context  # noqa: E402


def _loops_over(root: str) -> list[str]:
    found = []
    for path in glob.glob("/sys/block/loop*/loop/backing_file"):
        with open(path) as fh:
            if fh.read().strip().startswith(root):
                found.append(path.split("/")[3])
    return found


def _mounts_under(root: str) -> list[str]:
    with open("/proc/self/mounts") as fh:
        return [line.split()[1] for line in fh if line.split()[1].startswith(root)]


@pytest.fixture
def ctx(tmp_path):
    if os.geteuid() != 0 or not os.path.exists("/dev/loop-control"):
        pytest.skip("needs root and loop devices")
    return Context(str(tmp_path), "host", {})


def test_nested3_builds_three_loops_and_tears_down_whole(ctx, tmp_path):
    spec = {"name": "n3", "kind": "nested-loop", "fs": "xfs", "depth": 3, "direct_io": True}
    with contextlib.ExitStack() as stack:
        prepared = stacked.prepare_nested(spec, ctx, stack, "n3", 64)
        assert prepared.extra["depth"] == 3
        # scratch disk loop + two inner levels + the target itself
        assert len(_loops_over(str(tmp_path))) == 4
        blockio.write_direct(prepared.path, 0, blockio.pattern(5, 1 << 20))
        assert blockio.read_direct(prepared.path, 0, 1 << 20) == blockio.pattern(5, 1 << 20)
    assert _loops_over(str(tmp_path)) == [] and _mounts_under(str(tmp_path)) == []


def test_a_layer_failing_half_way_leaves_nothing_behind(ctx, tmp_path, monkeypatch):
    real_mkfs, calls = targets.mkfs, []

    def failing_mkfs(fs, device, *a, **kw):
        calls.append(device)
        if len(calls) == 3:  # the third level's filesystem
            raise RuntimeError("mkfs failed on purpose")
        return real_mkfs(fs, device, *a, **kw)

    monkeypatch.setattr(targets, "mkfs", failing_mkfs)
    spec = {"name": "n3", "kind": "nested-loop", "fs": "ext4", "depth": 3}
    with pytest.raises(RuntimeError, match="on purpose"):
        with contextlib.ExitStack() as stack:
            stacked.prepare_nested(spec, ctx, stack, "n3", 64)
    assert len(calls) == 3
    assert _loops_over(str(tmp_path)) == [] and _mounts_under(str(tmp_path)) == []
