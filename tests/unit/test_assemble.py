"""Every planned step appears exactly once; splats and cut-short runs become failures."""

from harness.results.model import Splat
from harness.run.assemble import assemble, boot_step
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


def test_kernel_stop_fails_its_step_and_later_steps_are_not_run() -> None:
    records = [{"id": "s0", "kind": "fio", "status": "pass", "metrics": {"read_iops": 5.0}}]
    for reason, word in (("panic", "panicked"), ("oops", "oopsed"), ("hang", "hung")):
        steps = assemble(PLAN, records, reason, "s1", (OOPS,), ("s1",))
        assert [s.status for s in steps] == ["pass", "fail", "skip"]
        assert steps[0].metrics == {"read_iops": 5.0}  # finished steps keep their figures
        assert steps[1].splats == (OOPS,) and steps[1].message.startswith("kernel oops in s1")
        assert steps[2].message == f"not run: kernel {word} in s1"
        assert steps[2].details == {"not_reached": "s1"}


def test_fault_step_wins_over_the_step_running_at_the_stop() -> None:
    records = [{"id": "s0", "kind": "fio", "status": "pass"}]
    steps = assemble(PLAN, records, "oops", "s2", (OOPS,), ("s1",), fault_step="s1")
    assert [s.status for s in steps] == ["pass", "fail", "error"]


def test_hang_message_names_the_blocked_task_and_its_frames() -> None:
    dump = Splat(
        "blocked_tasks",
        "sysrq: Show Blocked State (1 task blocked)",
        20,
        "\n".join(
            [
                "[ 50.1] sysrq: Show Blocked State",
                "[ 50.1] task:kworker/u8:3    state:D stack:0     pid:61    tgid:61    ppid:2",
                "[ 50.1] Workqueue: loop0 loop_workfn",
                "[ 50.1] Call Trace:",
                "[ 50.1]  <TASK>",
                "[ 50.1]  __schedule+0x3b0/0xbe0",
                "[ 50.1]  schedule+0x27/0xa0",
                "[ 50.1]  loop_harness_maybe_hang+0x8c/0xc0",
                "[ 50.1]  ? __pfx_autoremove_wake_function+0x10/0x10",
                "[ 50.1]  lo_rw_aio+0x2d5/0x360",
                "[ 50.1]  loop_process_work+0x1a3/0x400",
                "[ 50.1]  process_one_work+0x177/0x330",
                "[ 50.1]  </TASK>",
            ]
        ),
    )
    steps = assemble(PLAN, [], "hang", "s0", (dump,), ("s0",))
    assert steps[0].message == (
        "hang in s0: kworker/u8:3 blocked in loop_harness_maybe_hang <- lo_rw_aio"
        " <- loop_process_work"
    )
    assert [s.status for s in steps] == ["fail", "skip", "skip"]


def test_infra_stop_leaves_never_ran_steps() -> None:
    records = [{"id": "s0", "kind": "fio", "status": "pass"}]
    steps = assemble(PLAN, records, "boot-timeout", "s1", (), ())
    assert [s.status for s in steps] == ["pass", "error", "error"]
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
