"""The verdict taxonomy on runs built from recorded consoles (tests/data/console/): what is
a kernel failure, a test failure, an infrastructure error, an emulator artefact; how a
retry combines; when two failures are "the same"; how ab and compare read it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.cli.run import exit_code
from harness.klog.splats import scan
from harness.results.compare import compare
from harness.results.model import Environment, KernelInfo, RunResult, StepResult
from harness.verdict import (
    EMULATOR_ARTEFACT,
    INFRA_ERROR,
    KERNEL_FAILURE,
    PASS,
    TEST_FAILURE,
    Verdict,
    after_retry,
    classify,
    judge,
    with_verdict,
)
from harness.workflows.ab.workflow import Side, Slot, repeated_failure, run_interleaved

CONSOLE = Path(__file__).parents[1] / "data" / "console"
FIO = "fio/raw-nvme0/randread-4k"
LOOP = "fio/loop-dio-on-xfs-nvme0/randwrite-4k"
LAST = "fio/loop-dio-on-xfs-nvme0/randread-4k"


def splats_of(name: str):
    return tuple(scan((CONSOLE / f"{name}.log").read_text().split("\n")))


def run(accel="tcg", steps=None, splats=(), **kw) -> RunResult:
    steps = steps or (StepResult(FIO, "fio", "pass", metrics={"read_iops": 1000.0}),)
    return RunResult(
        KernelInfo("k"),
        Environment(accel=accel),
        "default",
        "p",
        tuple(steps),
        tuple(splats),
        console_log="out/console.log",
        **kw,
    )


def faulted(name: str, accel: str = "tcg", reason: str = "oops") -> RunResult:
    found = splats_of(name)
    steps = (
        StepResult(FIO, "fio", "pass", metrics={"read_iops": 1000.0}),
        StepResult(LOOP, "fio", "fail", "kernel ...", splats=found),
        StepResult(
            LAST, "fio", "skip", f"not run: kernel oopsed in {LOOP}", details={"not_reached": LOOP}
        ),
    )
    return run(accel, steps, found, stop_reason=reason)


def test_clean_run_passes_and_exits_0():
    assert judge(run()).cls == PASS and exit_code([with_verdict(run())]) == 0


def test_oops_in_a_step_is_a_kernel_failure_with_its_excerpt_and_frames():
    verdict = judge(faulted("oops-null"))
    assert verdict.cls == KERNEL_FAILURE and verdict.step == LOOP
    assert verdict.summary.startswith(f"kernel oops in {LOOP}: BUG: kernel NULL pointer")
    assert "Call Trace" in verdict.evidence
    assert verdict.signature.startswith("oops: ") and " <- " in verdict.signature
    assert exit_code([faulted("oops-null")]) == 1


def test_hung_task_names_the_blocked_task_and_where():
    verdict = judge(faulted("hung-task", reason="hang"))
    assert verdict.cls == KERNEL_FAILURE
    assert verdict.summary == (
        f"hang in {LOOP}: dd blocked in percpu_rwsem_wait <- __percpu_down_read <- mnt_want_write"
    )
    assert verdict.signature == "hang: percpu_rwsem_wait <- __percpu_down_read <- mnt_want_write"


def test_step_failure_on_a_clean_kernel_is_a_test_failure():
    steps = (StepResult("check/sparse", "check", "fail", "blocks leaked"),)
    assert judge(run(steps=steps)).cls == TEST_FAILURE


def test_unresponsive_guest_is_infra_and_asks_for_a_retry():
    steps = (StepResult(LOOP, "fio", "error", "the guest stopped answering"),)
    verdict = judge(run(steps=steps, stop_reason="unresponsive", infra_error="stopped answering"))
    assert verdict.cls == INFRA_ERROR and verdict.retry == "silence" and verdict.step == LOOP
    assert exit_code([run(steps=steps, stop_reason="unresponsive", infra_error="x")]) == 2


def test_the_same_silence_twice_is_a_kernel_failure():
    steps = (StepResult(LOOP, "fio", "error", "the guest stopped answering"),)
    silent = judge(run(steps=steps, stop_reason="unresponsive", infra_error="x"))
    twice = after_retry(silent, "out/console.attempt1.log", silent)
    assert twice.cls == KERNEL_FAILURE and twice.attempts == 2 and "twice" in twice.summary
    assert after_retry(silent, "log", judge(run())).cls == PASS


def test_tcg_int3_oops_is_an_emulator_artefact_retried_once():
    found = splats_of("tcg-int3")
    assert [s.kind for s in found] == ["oops", "panic"]
    first = judge(run(splats=found, stop_reason="panic"))
    assert first.cls == EMULATOR_ARTEFACT and first.retry == EMULATOR_ARTEFACT
    assert first.signature == "tcg-int3-text-patching"
    retried = after_retry(first, "out/console.attempt1.log", judge(run()))
    assert retried.cls == PASS and retried.attempts == 2  # the retry passed: a pass
    (artefact,) = retried.artefacts  # counted, never hidden
    assert artefact["console_log"] == "out/console.attempt1.log"
    assert "Oops: int3" in artefact["excerpt"]
    assert exit_code([with_verdict(run(), retried)]) == 0


def test_int3_oops_that_comes_back_is_a_kernel_failure():
    first = judge(run(splats=splats_of("tcg-int3"), stop_reason="panic"))
    again = after_retry(first, "log", first)
    assert again.cls == KERNEL_FAILURE and "came back on retry" in again.summary


def test_the_same_int3_oops_under_kvm_is_a_kernel_failure():
    verdict = judge(run("kvm", splats=splats_of("kvm-int3"), stop_reason="panic"))
    assert verdict.cls == KERNEL_FAILURE and not verdict.retry


def test_verdict_round_trips_through_results_json():
    stored = with_verdict(faulted("oops-null"))
    back = RunResult.from_dict(stored.to_dict())
    assert back.verdict["class"] == KERNEL_FAILURE
    assert classify(back) == judge(faulted("oops-null"))
    assert Verdict.from_dict(Verdict(PASS).to_dict()) == Verdict(PASS)


def test_compare_keeps_rows_before_the_fault_and_marks_later_ones_not_reached():
    base = [
        run(
            steps=(
                StepResult(FIO, "fio", "pass", metrics={"read_iops": v}),
                StepResult(LOOP, "fio", "pass"),
                StepResult(LAST, "fio", "pass"),
            ),
            repetition=i,
        )
        for i, v in enumerate((1000.0, 1010.0))
    ]
    cand = [dataclasses.replace(faulted("oops-null"), repetition=i) for i in range(2)]
    c = compare(base, cand)
    iops = next(m for m in c.metrics if m.step_id == FIO and m.metric == "read_iops")
    assert iops.cand_values == (1000.0, 1000.0)  # the raw row that passed is compared
    by_step = {s.step_id: s for s in c.statuses}
    assert by_step[LOOP].verdict == "regression"
    assert by_step[LAST].verdict == "not-reached" and "never" not in by_step[LAST].message
    assert c.verdict == "regression"


def test_ab_stops_a_side_after_two_identical_kernel_failures():
    base, cand = Side("base", "b"), Side("candidate", "c")
    slots = [Slot(rep, side) for rep in range(4) for side in (base, cand)]
    ran: list[str] = []

    def run_one(slot: Slot) -> RunResult:
        ran.append(slot.name)
        return with_verdict(faulted("oops-null") if slot.side is cand else run())

    stopped: dict[str, str] = {}
    done = run_interleaved(slots, lambda s: s, run_one, stopped=stopped)
    assert ran == [
        "rep0-base",
        "rep0-candidate",
        "rep1-base",
        "rep1-candidate",
        "rep2-base",
        "rep3-base",
    ]
    assert len(done) == 6 and list(stopped) == ["candidate"]
    assert stopped["candidate"].startswith(
        f"stopped after 2 repetitions with the same kernel failure in {LOOP}"
    )


def test_different_failures_do_not_stop_a_side():
    assert repeated_failure([faulted("oops-null"), faulted("hung-task", reason="hang")]) == ""
    assert repeated_failure([faulted("oops-null")]) == ""


def test_recorded_lean_fault_oops_signature_names_the_loop_worker():
    # tests/data/console/fault-oops.log: a real run of the lean 6.12 + fault-oops.mbox
    # kernel (loop.harness_oops_after=300) under TCG, stopped by the harness 15 s after it.
    found = splats_of("fault-oops")
    assert [s.kind for s in found] == ["oops"]
    verdict = judge(
        run(
            steps=(StepResult(LOOP, "fio", "fail", splats=found),), splats=found, stop_reason="oops"
        )
    )
    assert verdict.cls == KERNEL_FAILURE and verdict.step == LOOP
    assert verdict.signature == (
        "oops: loop_harness_maybe_oops <- loop_process_work <- process_one_work"
    )


def test_recorded_lean_fault_hang_is_a_hang_with_the_real_blocked_task_dump():
    # tests/data/console/fault-hang.log: a real run of the lean 6.12 + fault-hang.mbox
    # kernel (loop.harness_hang_after=50) under TCG: the hung-task report 27 s after the
    # write blocked, then the sysrq-w dump the harness asked for, then the stop.
    found = splats_of("fault-hang")
    assert [s.kind for s in found] == ["hung_task", "blocked_tasks"]
    assert found[1].title == "sysrq: Show Blocked State (1 task blocked)"
    steps = (StepResult(LOOP, "fio", "fail", splats=found),)
    verdict = judge(run(steps=steps, splats=found, stop_reason="hang"))
    assert verdict.summary == (
        f"hang in {LOOP}: kworker/u8:1 blocked in loop_harness_maybe_hang <- lo_rw_aio"
        " <- loop_process_work"
    )
    assert verdict.signature == "hang: loop_harness_maybe_hang <- lo_rw_aio <- loop_process_work"


def test_lost_nvme_submissions_are_named_on_the_console():
    # tests/data/console/tcg-rr-lost-io.log: a real round-robin TCG boot of Debian 6.12 on
    # QEMU 7.2; four reads on QID 2 never completed (the 2 s randread gave 20 IOPS)
    found = splats_of("tcg-rr-lost-io")
    assert [s.kind for s in found] == ["io_timeout"] * 4
    assert all(s.excerpt.count("\n") == 0 for s in found)  # one line each
    assert found[0].title.startswith("nvme nvme0: I/O tag 640 (f280) opcode 0x2")


def test_lost_io_under_round_robin_tcg_is_an_emulator_artefact_elsewhere_a_failure():
    found = splats_of("tcg-rr-lost-io")
    steps = (StepResult(FIO, "fio", "fail", "kernel io_timeout during step", splats=found),)
    cost = dataclasses.replace(
        run(steps=steps, splats=found), environment=Environment(accel="tcg", measure="cost")
    )
    verdict = judge(cost)
    assert verdict.cls == EMULATOR_ARTEFACT and verdict.signature == "tcg-round-robin-lost-io"
    assert judge(run(steps=steps, splats=found)).cls == KERNEL_FAILURE  # multi-threaded TCG


def test_lost_io_that_comes_back_under_round_robin_tcg_stays_an_artefact():
    """Round-robin TCG loses NVMe I/O often enough to do it on the retry too (seen in a
    cost-mode A/A): that is no evidence against the kernel; exit 2, both logs kept."""
    found = splats_of("tcg-rr-lost-io")
    steps = (StepResult(FIO, "fio", "fail", "kernel io_timeout during step", splats=found),)
    cost = dataclasses.replace(
        run(steps=steps, splats=found), environment=Environment(accel="tcg", measure="cost")
    )
    first = judge(cost)
    again = after_retry(first, "out/console.attempt1.log", judge(cost))
    assert again.cls == EMULATOR_ARTEFACT and "not a kernel verdict" in again.summary
    assert again.attempts == 2 and again.retry == ""
    assert again.artefacts[0]["console_log"] == "out/console.attempt1.log"
    assert exit_code([with_verdict(cost, again)]) == 2


def _cost(run_result: RunResult) -> RunResult:
    return dataclasses.replace(run_result, environment=Environment(accel="tcg", measure="cost"))


def test_an_oops_after_lost_io_decides_the_run_as_a_kernel_failure():
    """Lost NVMe I/O (round-robin TCG) in one step, then a real oops in a later one: the
    artefact cannot have caused the oops, so the kernel failed, not the emulator. A hang
    after it (the I/O blocked a task) stays the artefact's."""
    lost = splats_of("tcg-rr-lost-io")
    oops = splats_of("oops-null")
    steps = (
        StepResult(FIO, "fio", "fail", "kernel io_timeout during step", splats=lost),
        StepResult(LOOP, "fio", "fail", "kernel oops during step", splats=oops),
    )
    verdict = judge(_cost(run(steps=steps, splats=(*lost, *oops))))
    assert verdict.cls == KERNEL_FAILURE and verdict.step == LOOP, verdict
    assert not verdict.contained
    hung = splats_of("hung-task")
    steps = (
        StepResult(FIO, "fio", "fail", "kernel io_timeout during step", splats=lost),
        StepResult(LOOP, "fio", "fail", "kernel hung_task", splats=hung),
    )
    verdict = judge(_cost(run(steps=steps, splats=(*lost, *hung))))
    assert verdict.cls == EMULATOR_ARTEFACT and not verdict.contained  # the hang taints more


def test_lost_io_is_contained_to_its_step_an_int3_oops_is_not():
    lost = splats_of("tcg-rr-lost-io")
    steps = (
        StepResult(FIO, "fio", "fail", "kernel io_timeout during step", splats=lost),
        StepResult(LOOP, "fio", "pass", metrics={"write_iops": 9000.0}),
    )
    verdict = judge(_cost(run(steps=steps, splats=lost)))
    assert verdict.cls == EMULATOR_ARTEFACT and verdict.contained
    assert Verdict.from_dict(verdict.to_dict()) == verdict
    again = after_retry(verdict, "out/console.attempt1.log", verdict)
    assert again.cls == EMULATOR_ARTEFACT and again.contained
    assert not after_retry(verdict, "out/console.attempt1.log", judge(run())).contained
    unowned = judge(_cost(run(steps=(steps[1],), splats=lost)))  # in no step: which one hurt?
    assert unowned.cls == EMULATOR_ARTEFACT and not unowned.contained
    int3 = faulted("tcg-int3")
    assert judge(int3).cls == EMULATOR_ARTEFACT and not judge(int3).contained


def test_a_step_failing_on_its_own_beside_contained_lost_io_is_a_test_failure():
    lost = splats_of("tcg-rr-lost-io")
    steps = (
        StepResult(FIO, "fio", "fail", "kernel io_timeout during step", splats=lost),
        StepResult("check/sparse", "check", "fail", "blocks leaked"),
    )
    verdict = judge(_cost(run(steps=steps, splats=lost)))
    assert verdict.cls == TEST_FAILURE and verdict.step == "check/sparse"
    assert "tcg-round-robin-lost-io" in verdict.summary and not verdict.retry
    assert verdict.contained  # comparisons still drop the artefact's step and splats


def test_a_vm_that_ended_without_kernel_evidence_is_retried_once():
    """The console closed before the agent's last marker and the kernel said nothing (QEMU
    killed by a signal looks so): infra, retried; a second boot that passes is the verdict,
    the first attempt kept; the same twice stays infra (never a kernel failure)."""
    steps = (
        StepResult("boot", "setup", "pass"),
        StepResult(FIO, "fio", "error", "never finished: the VM exited"),
    )
    gone = run(steps=steps, stop_reason="eof", infra_error="run stopped (eof) during " + FIO)
    first = judge(gone)
    assert first.cls == INFRA_ERROR and first.retry == "vm-exit" and first.step == FIO
    assert judge(dataclasses.replace(gone, environment=Environment(accel="host"))).retry == ""
    passed = after_retry(first, "out/console.attempt1.log", judge(run()))
    assert passed.cls == PASS and passed.attempts == 2 and not passed.retry
    assert passed.artefacts[0]["console_log"] == "out/console.attempt1.log"
    assert exit_code([with_verdict(run(), passed)]) == 0
    twice = after_retry(first, "out/console.attempt1.log", judge(gone))
    assert twice.cls == INFRA_ERROR and not twice.retry and "both attempts" in twice.summary
    oops = after_retry(first, "out/console.attempt1.log", judge(faulted("oops-null")))
    assert oops.cls == KERNEL_FAILURE  # the second boot showed the kernel's own fault


def test_rcu_stall_of_a_vm_the_host_did_not_run_is_an_emulator_artefact_retried_once():
    """Recorded in this harness's own suite while other TCG guests shared the 2 host cores:
    nothing printed for 20 s, then an RCU stall on an idle CPU that the kernel flags
    "(false positive?)". Retried like int3; a repeat is the kernel's."""
    found = splats_of("tcg-starved-rcu-stall")
    assert [s.kind for s in found] == ["rcu_stall"]
    first = judge(run(splats=found, stop_reason="oops"))
    assert first.cls == EMULATOR_ARTEFACT and first.retry == EMULATOR_ARTEFACT
    assert first.signature == "tcg-starved-vm"
    assert after_retry(first, "log", judge(run())).attempts == 2
    again = after_retry(first, "log", first)
    assert again.cls == KERNEL_FAILURE and "came back on retry" in again.summary
    # the same report under KVM, and a stall the kernel does not doubt (a planted one), are
    # the kernel's at once
    assert judge(run("kvm", splats=found, stop_reason="oops")).cls == KERNEL_FAILURE
    real = judge(run(splats=splats_of("rcu-stall"), stop_reason="oops"))
    assert real.cls == KERNEL_FAILURE and not real.retry


EFLAGS_CONSOLES = ("tcg-eflags-debug-trap", "tcg-eflags-null-deref")


def test_a_splat_with_reserved_eflags_bits_is_the_emulator_even_when_it_comes_back():
    # Recorded Debian 6.12.118 boots under QEMU 7.2 multi-threaded TCG: a #DB in kernel
    # mode then a NULL dereference (EFLAGS 7ff8b002), and a NULL dereference on its own
    # (EFLAGS 41ac8646). No CPU holds those bits: the kernel under test did not do this.
    for name in EFLAGS_CONSOLES:
        first = judge(run(splats=splats_of(name), stop_reason="oops"))
        assert first.cls == EMULATOR_ARTEFACT, (name, first.summary)
        assert first.signature == "impossible-eflags" and first.retry == EMULATOR_ARTEFACT
        assert after_retry(first, "log", judge(run())).cls == PASS
        again = after_retry(first, "log", first)
        assert again.cls == EMULATOR_ARTEFACT and "no x86 CPU can hold" in again.summary
        assert exit_code([with_verdict(run(), again)]) == 2


def test_every_other_recorded_oops_keeps_its_kernel_verdict():
    """The rule reads the splat's own trap frame only: every real fault recorded (planted
    variants under TCG and KVM, Debian's own splats) still judges the kernel."""
    for log in sorted(CONSOLE.glob("*.log")):
        if log.stem in EFLAGS_CONSOLES:
            continue
        verdict = judge(run(splats=splats_of(log.stem), stop_reason="oops"))
        assert verdict.signature != "impossible-eflags", log.stem


def test_impossible_eflags_is_no_kernel_verdict_under_any_accelerator():
    verdict = judge(run("kvm", splats=splats_of("tcg-eflags-null-deref"), stop_reason="oops"))
    assert verdict.cls == EMULATOR_ARTEFACT and verdict.retry == EMULATOR_ARTEFACT
    assert "under KVM (impossible-eflags)" in verdict.summary
