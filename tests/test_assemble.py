"""Every planned step appears exactly once; splats and cut-short runs become failures."""

from harness.results.assemble import assemble, boot_step
from harness.results.model import Splat
from harness.suite.plan import Step

PLAN = [Step(f"s{i}", "fio", 60, {"name": "t"}, workload={"name": "w"}) for i in range(3)]
OOPS = Splat("oops", "BUG: kernel NULL pointer dereference", 10, "BUG: ...")


def test_complete_run_keeps_agent_records() -> None:
    records = [
        {"id": f"s{i}", "kind": "fio", "status": "pass", "metrics": {"read_iops": 1.0}}
        for i in range(3)
    ]
    steps = assemble(PLAN, records, "done", None, (), ())
    assert [s.status for s in steps] == ["pass"] * 3
    assert steps[0].metrics == {"read_iops": 1.0} and steps[0].target == "t"


def test_panic_marks_running_and_never_ran_steps() -> None:
    records = [{"id": "s0", "kind": "fio", "status": "pass"}]
    steps = assemble(PLAN, records, "panic", "s1", (OOPS,), ("s1",))
    assert [s.status for s in steps] == ["pass", "error", "error"]
    assert steps[1].splats == (OOPS,) and "kernel oops during step" in steps[1].message
    assert steps[2].message.startswith("never ran")


def test_splat_fails_a_passing_step() -> None:
    records = [{"id": f"s{i}", "kind": "fio", "status": "pass"} for i in range(3)]
    steps = assemble(PLAN, records, "done", None, (OOPS,), ("s2",))
    assert steps[2].status == "fail" and steps[2].splats == (OOPS,)


def test_unknown_status_becomes_error() -> None:
    steps = assemble(PLAN[:1], [{"id": "s0", "status": "weird"}], "done", None, (), ())
    assert steps[0].status == "error" and "unknown status" in steps[0].message


def test_boot_case() -> None:
    assert boot_step("done", True, (), 12.0).status == "pass"
    failed = boot_step("panic", False, (OOPS,), 0.0)
    assert failed.status == "error" and failed.splats == (OOPS,)
    assert boot_step("boot-timeout", False, (), 0.0).message == "the VM did not boot in time"
