"""One verdict taxonomy. Exit codes, JUnit failure vs error, bisect good/bad/skip and the
backport table's cells are all read from a Verdict, never decided twice.

    pass               every step passed, the console stayed clean
    kernel-failure     the kernel broke: panic, oops, BUG, hung task, lockup, RCU stall,
                       or any other splat the console scan found
    test-failure       a check or fio step said fail on a kernel that stayed healthy
    infra-error        the run could not tell: QEMU died or would not start, the host ran
                       out of space, a fetch failed, the guest went silent without kernel
                       evidence
    emulator-artefact  a splat with a known TCG signature that did not come back on retry
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.results.model import RunResult, Splat

PASS = "pass"
KERNEL_FAILURE = "kernel-failure"
TEST_FAILURE = "test-failure"
INFRA_ERROR = "infra-error"
EMULATOR_ARTEFACT = "emulator-artefact"

KERNEL_VERDICTS = (PASS, KERNEL_FAILURE, TEST_FAILURE)  # the kernel was judged
# Worst first: a kernel failure outranks everything, because hiding it behind a later
# infrastructure error would report a broken kernel as "could not tell".
_RANK = (KERNEL_FAILURE, TEST_FAILURE, INFRA_ERROR, EMULATOR_ARTEFACT, PASS)


@dataclass(frozen=True)
class Verdict:
    """A class with its evidence: where it happened and what showed it."""

    cls: str
    summary: str = ""
    step: str | None = None
    evidence: str = ""

    @property
    def judged(self) -> bool:
        """True when the kernel got a verdict (pass or fail), False when the run could not tell."""
        return self.cls in KERNEL_VERDICTS

    @property
    def failed(self) -> bool:
        return self.cls in (KERNEL_FAILURE, TEST_FAILURE)

    def to_dict(self) -> dict[str, str | None]:
        return {"class": self.cls, "summary": self.summary, "step": self.step,
                "evidence": self.evidence}  # fmt: skip


def _splat_verdict(splat: Splat, step: str | None) -> Verdict:
    where = f" in {step}" if step else ""
    return Verdict(KERNEL_FAILURE, f"kernel {splat.kind}{where}: {splat.title}", step,
                   splat.excerpt)  # fmt: skip


def classify(run: RunResult) -> Verdict:
    """The class of one run, from its steps, splats and how it stopped."""
    for step in run.steps:
        if step.splats:
            return _splat_verdict(step.splats[0], step.id)
    if run.splats:
        return _splat_verdict(run.splats[0], None)
    if run.panicked:
        return Verdict(KERNEL_FAILURE, run.infra_error or "kernel panic", None, run.console_log)
    failed = [s for s in run.steps if s.status == "fail"]
    if failed:
        names = ", ".join(s.id for s in failed[:3]) + (" ..." if len(failed) > 3 else "")
        return Verdict(TEST_FAILURE, f"{len(failed)} step(s) failed: {names}", failed[0].id,
                       failed[0].message)  # fmt: skip
    if run.infra_error:
        return Verdict(INFRA_ERROR, run.infra_error, None, run.console_log)
    errors = [s for s in run.steps if s.status == "error"]
    if errors:
        return Verdict(INFRA_ERROR, f"{errors[0].id}: {errors[0].message}", errors[0].id,
                       errors[0].message)  # fmt: skip
    return Verdict(PASS)


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The verdict that decides a set of runs (a kernel failure first, pass last)."""
    ordered = sorted(verdicts, key=lambda v: _RANK.index(v.cls))
    return ordered[0] if ordered else Verdict(PASS)
