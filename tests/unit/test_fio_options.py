"""A plan may tune fio, never aim it (issue #24 item 3): options that name a file or run a
command (filename, directory, exec_*, ioengine=exec, iologs...) are refused by the plan
loader with the option named, and again by the agent, which treats plan.json as untrusted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guest import fio_options
from guest.fio import fio_argv
from harness.errors import UserError
from harness.suite import workloads
from harness.suite.plans import build_plan

HOSTILE = [
    ({"filename": "/dev/sda"}, "'filename'"),
    ({"directory": "/etc"}, "'directory'"),
    ({"exec_prerun": "touch /tmp/x"}, "'exec_prerun'"),
    ({"exec_postrun": "touch /tmp/x"}, "'exec_postrun'"),
    ({"ioengine": "exec"}, "ioengine 'exec'"),
    ({"ioengine": "external:/tmp/evil.so"}, "ioengine 'external:/tmp/evil.so'"),
    ({"write_iolog": "/etc/passwd"}, "'write_iolog'"),
    ({"trigger_cmd": "reboot"}, "'trigger_cmd'"),
    ({"bs": "4k\n--filename=/dev/sda"}, "'bs'"),
    ({"bs": "--filename=/dev/sda"}, "'bs'"),
    ({"iodepth": [1, 2]}, "'iodepth'"),
]


def _plan_file(tmp_path: Path, overrides: dict) -> str:
    path = tmp_path / "evil.json"
    group = {"workloads": ["randwrite-4k"], "targets": ["file-xfs"], "fio": overrides}
    path.write_text(json.dumps({"fio": [group]}))
    return str(path)


@pytest.mark.parametrize(("overrides", "named"), HOSTILE)
def test_plan_loader_refuses_options_that_aim_or_run(tmp_path, overrides, named) -> None:
    with pytest.raises(UserError, match="fio") as info:
        build_plan(_plan_file(tmp_path, overrides), disks=[], mode="host", workdir="/w")
    assert named in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("overrides", "named"), HOSTILE)
def test_agent_refuses_them_in_plan_json_too(overrides, named) -> None:
    with pytest.raises(ValueError, match="fio") as info:
        fio_argv("job", "/scratch/fio.dat", {"rw": "read", **overrides}, "/r/out.json")
    assert named in str(info.value)


def test_tuning_is_still_allowed_and_every_builtin_workload_passes(tmp_path) -> None:
    tuning = {"iodepth": 4, "runtime": 1, "bs": "16k", "ioengine": "io_uring", "hipri": True}
    plan = build_plan(_plan_file(tmp_path, tuning), disks=[], mode="host", workdir="/w")
    assert plan.steps[0].workload["fio"]["iodepth"] == 4
    for workload in workloads.WORKLOADS.values():
        assert fio_options.problems(workload.fio) == [], workload.name
