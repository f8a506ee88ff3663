"""Plans as data: named plans, plan files, host-mode safety of the targets, listing."""

import json

import pytest

from harness.cli.list import format_listing
from harness.errors import UserError
from harness.suite import checks, plans, targets, workloads

DISKS = [
    {"name": "nvme0", "bus": "nvme", "serial": "HNVME0"},
    {"name": "scsi0", "bus": "scsi", "serial": "HSCSI0"},
]


def _plan(name: str, **kw) -> dict:
    return plans.build_plan(
        name, disks=kw.pop("disks", DISKS), mode=kw.pop("mode", "vm"), workdir="/run/harness", **kw
    ).to_dict()


def test_quick_plan_is_issue_2_default_job():
    plan = _plan("quick")
    assert plan["version"] == 1 and plan["mode"] == "vm" and plan["disks"] == DISKS
    ids = [s["id"] for s in plan["steps"]]
    assert ids == [
        f"fio/{t}/{w}"
        for t in ("raw-nvme0", "raw-scsi0", "file-xfs", "loop-dio-on-xfs", "loop-dio-off-xfs")
        for w in ("randread-4k", "randwrite-4k")
    ] + [f"check/{c}/loop-dio-on-xfs" for c in ("sparse", "reflink", "truncate")]
    for step in plan["steps"]:
        assert step["kind"] == "check" or step["workload"]["fio"]["runtime"] == 3
        assert step["timeout_s"] >= 120
    # issue #25: the checks the harness exists for run by default, as the loop plan
    # defines them, on the loop target of the fio rows at the plan's small size
    by_id = {s["id"]: s for s in plan["steps"]}
    loop_plan = {s["id"]: s for s in _plan("loop")["steps"]}
    for check in ("sparse", "reflink", "truncate"):
        step, same = (
            by_id[f"check/{check}/loop-dio-on-xfs"],
            loop_plan[f"check/{check}/loop-dio-on-xfs"],
        )
        assert step["params"] == same["params"] and step["timeout_s"] == same["timeout_s"]
        assert step["target"] == plan["steps"][6]["target"]
    loop = plan["steps"][6]["target"]
    assert loop == {
        "name": "loop-dio-on-xfs",
        "kind": "loop",
        "fs": "xfs",
        "disk": "nvme0",
        "direct_io": True,
        "block_size": 512,
        "alloc": "sparse",
        "size_mb": 128,
    }


def test_loop_plan_runs_every_check_on_its_targets_and_marks_static_map_xfail():
    plan = _plan("loop")
    step_ids = [s["id"] for s in plan["steps"]]
    assert len(step_ids) == len(set(step_ids))
    for check in checks.CHECKS.values():
        for target in check.targets:
            inside = "upstream" not in check.tags  # those run in the upstream-failures plan
            assert (f"check/{check.name}/{target}" in step_ids) == inside
    by_id = {s["id"]: s for s in plan["steps"]}
    assert "dm-loop" in by_id["check/reflink/dm-linear-xfs"]["xfail"]
    assert "xfail" not in by_id["check/reflink/loop-dio-on-xfs"]
    fio_targets = {s["target"]["name"] for s in plan["steps"] if s["kind"] == "fio"}
    assert fio_targets == {n for n, t in targets.TARGETS.items() if "upstream" not in t.tags}
    # the sparse-file seed rows only make sense on loop targets
    assert not any(
        s["id"].endswith("ming-randwrite-sparse") and s["target"]["kind"] != "loop"
        for s in plan["steps"]
    )
    assert plan["trace_stack"] is True


def test_seeds_plan_keeps_the_seeds_fio_lines():
    plan = _plan("seeds")
    step = next(s for s in plan["steps"] if s["id"] == "fio/raw-nvme0/mikulas-rw-libaio")
    fio = step["workload"]["fio"]
    assert (fio["rw"], fio["bs"], fio["numjobs"], fio["iodepth"], fio["runtime"]) == (
        "rw",
        "4k",
        12,
        16,
        10,
    )
    ming = next(s for s in plan["steps"] if s["id"] == "fio/loop-dio-on-xfs/ming-randwrite-sparse")
    assert ming["workload"]["fio"]["runtime"] == 40 and ming["target"]["alloc"] == "sparse"


def test_overrides_apply_to_every_step():
    plan = _plan("quick", runtime_s=7, size_mb=64)
    assert {s["workload"]["fio"]["runtime"] for s in plan["steps"] if s["kind"] == "fio"} == {7}
    assert all(s["target"].get("size_mb", 64) == 64 for s in plan["steps"])


def test_host_mode_never_targets_disks_the_user_did_not_name():
    plan = _plan("quick", mode="host", disks=[])
    for step in plan["steps"]:
        target = step["target"]
        if target["kind"] == "raw":
            assert target["disk"] in ("nvme0", "scsi0")  # agent records these as skipped
        else:
            assert "disk" not in target  # scratch image under workdir instead


def test_host_mode_keeps_a_named_disk():
    named = [{"name": "nvme0", "bus": "nvme", "path": "/dev/nvme9n1"}]
    plan = _plan("quick", mode="host", disks=named)
    xfs = next(s for s in plan["steps"] if s["target"]["name"] == "file-xfs")
    assert xfs["target"]["disk"] == "nvme0"


def test_plan_file_with_custom_target_and_overrides(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "runtime_s": 2,
                "targets": {"loop-full": {"kind": "loop", "fs": "xfs", "alloc": "fallocate"}},
                "fio": [
                    {
                        "workloads": ["randwrite-4k"],
                        "targets": ["loop-full"],
                        "fio": {"iodepth": 4},
                        "timeout_s": 99,
                    }
                ],
                "checks": [
                    {"check": "sparse", "targets": ["loop-full"], "params": {"chunk_mb": 2}}
                ],
            }
        )
    )
    plan = _plan(str(path))
    assert plan["name"] == "mine"
    fio_step, check_step = plan["steps"]
    assert fio_step["workload"]["fio"]["iodepth"] == 4 and fio_step["timeout_s"] == 99
    assert check_step["params"] == {"chunk_mb": 2} and check_step["target"]["alloc"] == "fallocate"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"fio": [], "bogus": 1}', "unknown keys ['bogus']"),
        ('{"fio": [{"workloads": ["nope"], "targets": ["raw-nvme0"]}]}', "unknown workload 'nope'"),
        ('{"fio": [{"workloads": ["randread-4k"], "targets": ["nope"]}]}', "unknown target 'nope'"),
        ('{"fio": [{"workloads": "randread-4k", "targets": ["raw-nvme0"]}]}', "list of names"),
        ('{"checks": [{"check": "fsck"}]}', "'check' must be one of"),
        ('{"targets": {"x": {"kind": "floppy"}}, "fio": []}', "target 'x' needs kind"),
        ("{}", "has no steps"),
    ],
)
def test_malformed_plan_file_names_the_problem(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        _plan(str(path))


def test_unknown_plan_name_lists_the_named_ones():
    with pytest.raises(UserError, match="quick, loop, seeds"):
        _plan("nightly")
    with pytest.raises(UserError, match="mode must be"):
        _plan("quick", mode="cloud")


def test_listing_has_one_line_per_item():
    text = format_listing(["workloads", "targets", "checks", "plans"])
    lines = text.splitlines()
    for table in (workloads.WORKLOADS, targets.TARGETS, checks.CHECKS, plans.PLANS):
        for name in table:
            assert sum(1 for line in lines if line.split()[0] == name) == 1
    assert len(lines) == 4 + sum(
        len(t) for t in (workloads.WORKLOADS, targets.TARGETS, checks.CHECKS, plans.PLANS)
    )
