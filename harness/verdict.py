"""One verdict taxonomy. Exit codes, JUnit failure vs error, `ab`'s early stop, bisect
good/bad/skip and the backport table's cells are all read from a Verdict, never decided
twice. The executor stores judge(run) in RunResult.verdict (results.json); classify()
reads it back (and judges runs written before verdicts were stored).

    pass               every step passed, the console stayed clean
    kernel-failure     the kernel broke: panic, oops, BUG, hung task, soft lockup, RCU
                       stall, a blocked-task dump at a timeout, any other splat, or a guest
                       that answered nothing twice in the same step
    test-failure       a check or fio step said fail on a kernel that stayed healthy
    infra-error        the run could not tell: QEMU died or would not start, the host ran
                       out of space, a fetch failed, the guest went unresponsive without
                       kernel evidence (retried once first), the VM ended without the
                       agent's last word and without kernel evidence (retried once first)
    emulator-artefact  a splat so common under TCG that coming back on the retry proves
                       nothing (round-robin TCG's lost NVMe I/O; under KVM the same
                       splat is a kernel failure), or one no CPU could have produced
                       (reserved RFLAGS bits in its own trap frame)

A known TCG artefact (int3 from live text patching, a starved VM's RCU stall) is retried
once, like a VM that died: if the retry passes the run passes (exit 0), the artefact kept
in `artefacts` with the first attempt's console; if it comes back it is the kernel's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from harness.klog.stacks import HANG_SPLATS, hang_message, signature, tasks, top
from harness.results.model import RunResult, Splat, StepResult, StepStatus


class VerdictClass(StrEnum):
    """The taxonomy above: what a run (or a step, a table cell) is judged to be."""

    PASS = "pass"
    KERNEL_FAILURE = "kernel-failure"
    TEST_FAILURE = "test-failure"
    INFRA_ERROR = "infra-error"
    EMULATOR_ARTEFACT = "emulator-artefact"


PASS = VerdictClass.PASS
KERNEL_FAILURE = VerdictClass.KERNEL_FAILURE
TEST_FAILURE = VerdictClass.TEST_FAILURE
INFRA_ERROR = VerdictClass.INFRA_ERROR
EMULATOR_ARTEFACT = VerdictClass.EMULATOR_ARTEFACT

KERNEL_VERDICTS = (PASS, KERNEL_FAILURE, TEST_FAILURE)  # the kernel was judged
# Worst first: a kernel failure outranks everything, because hiding it behind a later
# infrastructure error would report a broken kernel as "could not tell".
_RANK = (KERNEL_FAILURE, TEST_FAILURE, INFRA_ERROR, EMULATOR_ARTEFACT, PASS)
RETRY_SILENCE = "silence"
# The VM ended (the console closed) before the agent said it was done, and the kernel said
# nothing: QEMU killed by a signal (a segfault under multi-threaded TCG, the host's OOM
# killer) looks exactly so - virtme-ng returns 255 for any unexpected exit, and the console
# just stops. One more boot tells a hiccup from a VM that always dies there.
RETRY_VM_EXIT = "vm-exit"
EVIDENCE_CHARS = 6000
# The words after_retry ends an artefact's summary with when the retry passed. Results
# written before such a run passed stored it as an emulator-artefact with them: read so,
# that class is a pass (Verdict.from_dict).
RETRY_PASSED = "the retry passed"

# Known emulator artefacts: (name, splat kind, the Splat field searched, pattern).
# Multi-threaded TCG can run a
# stale translation of code the kernel is live-patching (text_poke_bp: static keys, jump
# labels, alternatives, ftrace) on another vCPU, and the guest takes an int3 trap that no
# patch site claims: "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI".
# A VM the host did not run: an RCU stall whose stalled CPU sat idle while the grace-period
# kthread starved, which the kernel itself flags "(false positive?)". Recorded
# (tests/data/console/tcg-starved-rcu-stall.log): a lean 6.12 boot printed nothing from
# 1.26 s to 21.7 s, then "timer wakeup didn't happen for 5245 jiffies" with CPU 0 in
# default_idle - while other TCG guests ran on the same 2 host cores. Retried once like
# int3: a kernel that really starves its RCU kthread does it again.
TCG_ARTEFACTS = (
    ("tcg-int3-text-patching", "oops", "title", re.compile(r"^(Oops: )?int3: ")),
    ("tcg-starved-vm", "rcu_stall", "excerpt", re.compile(r"\(false positive\?\)")),
)
# A CPU state no processor can hold, whatever the accelerator: RFLAGS bits 3, 5, 15 and
# 22-63 are reserved and always zero on x86 (POPF and IRET cannot set them), so a splat
# whose own register dump shows one set was written by the emulator, never by the kernel
# under test. Recorded under QEMU 7.2 multi-threaded TCG, Debian 6.12.118, in fio's
# io_submit: a #DB in kernel mode (tests/data/console/tcg-eflags-debug-trap.log: "EFLAGS:
# 7ff8b002", then the trap flag set in kmem_cache_alloc_noprof's "7ffcb702") and a NULL
# dereference in blk_mq_get_tag ("EFLAGS: 41ac8646", tcg-eflags-null-deref.log); 3 of ~180
# boots of two full test runs.
IMPOSSIBLE_STATE = "impossible-eflags"
EFLAGS_RESERVED = ~0x3FFFFF | 0x8028
_FIRST_EFLAGS = re.compile(r"\bEFLAGS: ([0-9a-f]+)")


def impossible_eflags(excerpt: str) -> bool:
    """True when the first register dump in `excerpt` (the splat's own trap frame, pushed
    by the CPU) has a reserved RFLAGS bit set."""
    found = _FIRST_EFLAGS.search(excerpt)
    return bool(found) and int(found.group(1), 16) & EFLAGS_RESERVED != 0


# Round-robin TCG on QEMU < 8.1 elides guest memory barriers beside QEMU's I/O thread and
# can lose NVMe submissions (harness.vm.launch): only cost mode runs round-robin now.
ROUND_ROBIN_ARTEFACTS = (
    ("tcg-round-robin-lost-io", "io_timeout", "title", re.compile(r"^nvme nvme\d+: I/O ")),
)
# Artefacts common enough to come back on the retry, so that coming back proves nothing:
# round-robin TCG lost NVMe I/O in 10 of 46 boots (and in 2 consecutive boots of one A/A
# side in a cost-mode bench_ab run). A repeat stays an emulator artefact (exit 2: the run
# could not tell), never a kernel failure; wall mode (multi-threaded TCG) judges the kernel.
# Each with why a repeat is still not the kernel's. A reserved flag bit cannot be the
# kernel's however often it comes back.
RECURRING_ARTEFACTS = {
    "tcg-round-robin-lost-io": "as this artefact often does: not a kernel verdict; "
    "run in wall mode to judge the kernel",
    IMPOSSIBLE_STATE: "and no x86 CPU can hold those flags: not a kernel verdict; rerun it",
}
# Artefacts whose damage stays in the step they hit, with the splats they can cause. A lost
# NVMe submission stalls its own fio until the driver's timeout aborts and resubmits it (so
# the report lands in that step), and can block a task on that I/O meanwhile; the kernel
# stays sound. So a later splat of another kind (an oops, a BUG, a warning...) is the
# kernel's own and decides the run, and the run's other clean steps still measure the
# kernel (harness.results.compare). An int3 trap is an oops: after it nothing is sound.
CONTAINED_ARTEFACTS = {"tcg-round-robin-lost-io": frozenset({"io_timeout", *HANG_SPLATS})}


@dataclass(frozen=True)
class Verdict:
    """A class with its evidence: where it happened, what showed it, and what makes two
    failures the same (signature: kind plus top frames)."""

    cls: VerdictClass
    summary: str = ""
    step: str | None = None
    evidence: str = ""
    signature: str = ""
    retry: str = ""  # why one more attempt is due: "silence", "vm-exit", "emulator-artefact"
    attempts: int = 1
    artefacts: tuple[dict[str, str], ...] = ()  # emulator artefacts seen and retried
    # an emulator artefact that spoiled only the steps it hit (CONTAINED_ARTEFACTS): the
    # run's other clean steps still count in comparisons
    contained: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "cls", VerdictClass(self.cls))

    @property
    def judged(self) -> bool:
        """True when the kernel got a verdict (pass or fail), False when the run could not tell."""
        return self.cls in KERNEL_VERDICTS

    @property
    def failed(self) -> bool:
        return self.cls in (KERNEL_FAILURE, TEST_FAILURE)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["class"] = data.pop("cls")
        data["artefacts"] = [dict(a) for a in self.artefacts]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        known = {f.name for f in dataclasses.fields(cls)} - {"cls", "artefacts"}
        values = {k: v for k, v in data.items() if k in known}
        artefacts = tuple(dict(a) for a in data.get("artefacts", ()))
        verdict = data["class"]
        retry_passed = str(values.get("summary", "")).endswith(f"; {RETRY_PASSED}")
        if verdict == EMULATOR_ARTEFACT and retry_passed:  # stored before it was a pass
            verdict, values["contained"] = PASS, False
        return cls(cls=verdict, artefacts=artefacts, **values)


def _splats_with_steps(run: RunResult) -> list[tuple[Splat, str]]:
    """Every kernel splat of the run in console order, with the step it hit ('boot' for
    the boot case, '' for none)."""
    owner = {(s.line, s.kind): step.id for step in run.steps for s in step.splats}
    seen = list(run.splats) or [s for step in run.steps for s in step.splats]
    return [(s, owner.get((s.line, s.kind), "")) for s in sorted(seen, key=lambda s: s.line)]


def tcg_artefact(splat: Splat, round_robin: bool = False) -> str:
    """The name of the known TCG artefact `splat` looks like, or ''."""
    known = TCG_ARTEFACTS + (ROUND_ROBIN_ARTEFACTS if round_robin else ())
    for name, kind, field, pattern in known:
        if splat.kind == kind and pattern.search(getattr(splat, field)):
            return name
    return ""


def _artefact(run: RunResult, splat: Splat) -> str:
    if impossible_eflags(splat.excerpt):
        return IMPOSSIBLE_STATE
    env = run.environment
    return tcg_artefact(splat, env.measure == "cost") if env.accel == "tcg" else ""


def _hang(step: str, hangs: Sequence[Splat]) -> Verdict:
    summary = hang_message(step or "boot", hangs) or f"hang in {step or 'boot'}"
    found = [t for s in hangs for t in tasks(s.excerpt)]
    blocked = [t for t in found if t.state == "D"] or found
    best = next((t for t in blocked if t.cause), blocked[0] if blocked else None)
    sig = f"hang: {top(best.cause or best.frames)}" if best else "hang"
    evidence = "\n\n".join(s.excerpt for s in hangs)[:EVIDENCE_CHARS]
    return Verdict(KERNEL_FAILURE, summary, step or None, evidence, sig)


def _splat_verdict(run: RunResult, splat: Splat, step: str) -> Verdict:
    where = f" in {step}" if step else ""
    artefact = _artefact(run, splat)
    if artefact:
        return Verdict(
            EMULATOR_ARTEFACT,
            f"emulator artefact under {run.environment.accel.upper() or 'the VM'} "
            f"({artefact}){where}: {splat.title}",
            step or None,
            splat.excerpt[:EVIDENCE_CHARS],
            artefact,
            retry=EMULATOR_ARTEFACT,
        )
    if splat.kind in HANG_SPLATS:
        steps = {st.id: st for st in run.steps}
        hangs = steps[step].splats if step in steps else (splat,)
        return _hang(step, [s for s in hangs if s.kind in HANG_SPLATS])
    summary = f"kernel {splat.kind}{where}: {splat.title}"
    sig = signature(splat.kind, splat.excerpt)
    return Verdict(KERNEL_FAILURE, summary, step or None, splat.excerpt[:EVIDENCE_CHARS], sig)


def _deciding(run: RunResult, splats: list[tuple[Splat, str]]) -> tuple[Splat, str]:
    """The splat that decides the run: the first, unless it is a contained artefact and a
    later splat is one that artefact cannot have caused (that one is the kernel's)."""
    caused = CONTAINED_ARTEFACTS.get(_artefact(run, splats[0][0]))
    if caused is not None:
        for splat, step in splats[1:]:
            if splat.kind not in caused and not _artefact(run, splat):
                return splat, step
    return splats[0]


def _contained(run: RunResult, splats: list[tuple[Splat, str]]) -> bool:
    """True when the run's only splats are one contained artefact's, each in a step: its
    other steps measured a sound kernel (Verdict.contained)."""
    if not splats or any(not step or step == "boot" for _, step in splats):
        return False
    names = {_artefact(run, s) for s, _ in splats}
    return len(names) == 1 and next(iter(names)) in CONTAINED_ARTEFACTS


def _test_failure(failed: Sequence[StepResult], why: str = "") -> Verdict:
    names = ", ".join(s.id for s in failed[:3]) + (" ..." if len(failed) > 3 else "")
    return Verdict(
        TEST_FAILURE,
        f"{len(failed)} step(s) failed: {names}{why}",
        failed[0].id,
        failed[0].message,
        f"fail: {failed[0].id}",
    )


def judge(run: RunResult) -> Verdict:
    """The class of one run (one attempt), from its splats, steps and how it stopped."""
    splats = _splats_with_steps(run)
    if splats:
        verdict = _splat_verdict(run, *_deciding(run, splats))
        if verdict.cls != EMULATOR_ARTEFACT or not _contained(run, splats):
            return verdict
        verdict = dataclasses.replace(verdict, contained=True)
        # a step that failed on its own beside a contained artefact failed on a sound kernel
        failed = [s for s in run.steps if s.status == StepStatus.FAIL and not s.splats]
        if failed:
            failure = _test_failure(failed, f" (and {verdict.summary})")
            return dataclasses.replace(failure, contained=True)
        return verdict
    if run.stop_reason in ("panic", "oops", "hang"):
        return Verdict(
            KERNEL_FAILURE, f"kernel {run.stop_reason}", None, run.console_log, run.stop_reason
        )
    failed = [s for s in run.steps if s.status == StepStatus.FAIL]
    if failed:
        return _test_failure(failed)
    if run.stop_reason == "unresponsive":
        step = next(
            (s.id for s in run.steps if s.status == StepStatus.ERROR and s.id != "boot"), None
        )
        return Verdict(
            INFRA_ERROR,
            run.infra_error or "the guest stopped answering",
            step,
            run.console_log,
            f"unresponsive: {step}",
            retry=RETRY_SILENCE,
        )
    if run.stop_reason == "eof" and run.environment.accel in ("tcg", "kvm"):
        step = next((s.id for s in run.steps if s.status == StepStatus.ERROR), None)
        return Verdict(
            INFRA_ERROR,
            run.infra_error or "the VM exited unexpectedly",
            step,
            run.console_log,
            f"vm-exit: {step}",
            retry=RETRY_VM_EXIT,
        )
    if run.infra_error:
        return Verdict(INFRA_ERROR, run.infra_error, None, run.console_log)
    errors = [s for s in run.steps if s.status == StepStatus.ERROR]
    if errors:
        return Verdict(
            INFRA_ERROR, f"{errors[0].id}: {errors[0].message}", errors[0].id, errors[0].message
        )
    return Verdict(PASS)


def classify(run: RunResult) -> Verdict:
    """The run's stored verdict, or its judgement when none was stored."""
    return Verdict.from_dict(run.verdict) if run.verdict else judge(run)


def with_verdict(run: RunResult, verdict: Verdict | None = None) -> RunResult:
    """The run with its verdict stored (judged from the run itself when not given)."""
    return dataclasses.replace(run, verdict=(verdict or judge(run)).to_dict())


def _after_silence(first: Verdict, second: Verdict) -> Verdict:
    """A guest that went silent twice in the same place is the kernel's doing."""
    if second.retry == RETRY_SILENCE and second.signature == first.signature:
        return Verdict(
            KERNEL_FAILURE,
            f"guest unresponsive in {first.step or 'boot'} twice: no console "
            "output and no answer to a blocked-task dump request",
            first.step,
            second.evidence,
            first.signature,
            attempts=2,
        )
    return dataclasses.replace(second, attempts=2, retry="")


def after_retry(first: Verdict, first_log: str, second: Verdict) -> Verdict:
    """The verdict of a retried run: `first` asked for the retry (its log kept at
    first_log), `second` is what the retry showed."""
    if first.retry == RETRY_SILENCE:
        return _after_silence(first, second)
    record = {
        "summary": first.summary,
        "signature": first.signature,
        "excerpt": first.evidence,
        "console_log": first_log,
    }
    if first.retry == RETRY_VM_EXIT:
        if second.retry == RETRY_VM_EXIT:
            why = "the VM ended without kernel evidence on both attempts"
            return dataclasses.replace(
                second,
                summary=f"{second.summary} ({why})",
                retry="",
                attempts=2,
                artefacts=(record,),
            )
        return dataclasses.replace(
            second, retry="", attempts=2, artefacts=(record, *second.artefacts)
        )
    if second.retry == EMULATOR_ARTEFACT and second.signature in RECURRING_ARTEFACTS:
        why = f"came back on retry, {RECURRING_ARTEFACTS[second.signature]}"
        return dataclasses.replace(
            second, summary=f"{second.summary} ({why})", retry="", attempts=2, artefacts=(record,)
        )
    if second.retry == EMULATOR_ARTEFACT:
        return Verdict(
            KERNEL_FAILURE,
            f"{second.summary} (came back on retry: not an artefact)",
            second.step,
            second.evidence,
            second.signature,
            attempts=2,
            artefacts=(record,),
        )
    if second.cls == PASS:
        # The emulator's hiccup, shaken off: a pass, as after a VM that died, with the
        # artefact counted and its console kept (its steps are whole: nothing contained).
        return Verdict(
            PASS,
            f"{first.summary}; {RETRY_PASSED}",
            attempts=2,
            artefacts=(record, *second.artefacts),
        )
    return dataclasses.replace(second, attempts=2, artefacts=(record,))


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The verdict that decides a set of runs (a kernel failure first, pass last)."""
    ordered = sorted(verdicts, key=lambda v: _RANK.index(v.cls))
    return ordered[0] if ordered else Verdict(PASS)
