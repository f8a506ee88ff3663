"""A hung-task report is a suspicion; a hang is a task that stays blocked.

Under TCG a slow emulated disk can keep a task waiting on I/O past the guest's short
hung_task_timeout_secs (20 s), and it then runs on: CI saw "kworker/0:7 blocked in
xlog_wait_on_iclog" during an XFS randwrite on a healthy 6.12 kernel, and the harness called
it a hang. Now a task is hung when it has been blocked 60 s or reported three times
(tests/data/console/hung-task.log: a real 6.12 guest, dd:305 behind fsfreeze, reported at 5,
10, 15 and 20 s with hung_task_timeout_secs=5); a report that is never confirmed is a stall,
noted on its step.
"""

from __future__ import annotations

from pathlib import Path

from harness.klog.splats import SplatScanner, hung_task_of, scan
from harness.results.model import Splat
from harness.run.assemble import assemble
from harness.suite.plan import Step
from harness.vm.faults import FaultLimits, FaultWatch
from tests.unit.test_guest_metrics import metrics

DATA = Path(__file__).parents[1] / "data" / "console"
LINES = (DATA / "hung-task.log").read_text().splitlines()
REPORTS = [i for i, line in enumerate(LINES) if "blocked for more than" in line]


def _watch(upto: int, step: str = "write") -> tuple[FaultWatch, SplatScanner]:
    watch, scanner = FaultWatch(FaultLimits(hang_grace_s=0.0)), SplatScanner()
    for line in LINES[:upto]:
        scanner.feed(line)
        watch.feed(scanner, step, 0.0)
    return watch, scanner


def test_the_recording_reports_one_task_again_while_it_stays_blocked() -> None:
    titles = [s.title for s in scan(LINES) if s.kind == "hung_task"]
    assert [hung_task_of(t) for t in titles] == [("dd:305", n) for n in (5, 10, 15, 20)]


def test_one_or_two_reports_are_a_suspicion_not_a_fault() -> None:
    watch, scanner = _watch(REPORTS[2])  # two reports in
    assert watch.kind is None
    assert watch.check(scanner, "write", None, 100.0, 100.0) is None


def test_the_third_report_of_the_same_task_is_a_hang_in_the_step_it_began() -> None:
    watch, scanner = FaultWatch(FaultLimits(hang_grace_s=0.0)), SplatScanner()
    for n, line in enumerate(LINES[: REPORTS[2] + 1]):
        scanner.feed(line)
        watch.feed(scanner, "write" if n < REPORTS[1] else "next", 0.0)
    assert watch.kind == "hung_task" and watch.step == "write"
    assert watch.confirmed == {"dd:305"}
    assert watch.check(scanner, "next", None, 1.0, 1.0) == "hang"  # (no dump requester)


def test_a_task_blocked_past_the_confirmation_time_is_a_hang_at_its_first_report() -> None:
    watch, scanner = FaultWatch(FaultLimits()), SplatScanner()
    scanner.feed("[ 90.1] INFO: task fio:109 blocked for more than 120 seconds.")
    watch.feed(scanner, "write", 0.0)
    assert watch.kind == "hung_task" and watch.confirmed == {"fio:109"}


def test_an_unconfirmed_report_is_a_stall_and_a_confirmed_one_is_not() -> None:
    watch, _ = _watch(REPORTS[1])
    first = next(s for s in scan(LINES[: REPORTS[1]]) if s.kind == "hung_task")
    assert watch.is_stall(first, "write", "done")
    confirmed, _ = _watch(len(LINES))
    assert not confirmed.is_stall(first, "write", "hang")
    oops = Splat("oops", "Oops: general protection fault", 1, "")
    assert not watch.is_stall(oops, "write", "done")
    # a report in the step a run was stopped for as hung (its timeout dump listed tasks)
    watch.step = "write"
    assert not watch.is_stall(first, "write", "hang")
    assert watch.is_stall(first, "other", "hang")


def test_a_stall_leaves_its_step_passing_with_a_note() -> None:
    plan = [Step("s0", "fio", 60, {"name": "t"}, workload={"name": "w"})]
    stall = Splat("hung_task", "INFO: task kworker/0:7:88 blocked for more than 20 seconds.", 5, "")
    records = [{"id": "s0", "kind": "fio", "status": "pass", "metrics": {"write_iops": 9.0}}]
    (step,) = assemble(plan, records, "done", None, (), (), stalls=(stall,), stall_steps=("s0",))
    assert step.status == "pass" and not step.failed and step.splats == ()
    assert step.details["stalls"] == [stall.title]
    assert step.message.startswith("stall, not a hang: INFO: task kworker/0:7:88")


def test_the_agent_does_not_fail_a_step_on_a_hung_task_report() -> None:
    report = LINES[REPORTS[0] : REPORTS[1]]
    assert metrics.find_splats(report) == []
