"""Interleaved A/B runs: base, candidate, base, candidate ... so drift hits both sides alike.

run_ab() drives repetitions through an injected `run_one` (harness.run.engine.run_one in
production), saves results.json after every run (an interrupted comparison keeps what it
has), refuses early when the first pair shows an environment difference not allowed, and
finally writes the comparison's reports and reproducer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.errors import UserError
from harness.report import reproducer
from harness.results import store
from harness.results.compare import (
    DEFAULT_ALPHA,
    Comparison,
    compare,
    environment_diffs,
    guard_environment,
)
from harness.results.model import RunResult
from harness.run.request import RunRequest
from harness.verdict import KERNEL_FAILURE, classify
from harness.vm.guestroot import check_suites
from harness.workflows.ab import report

log = logging.getLogger(__name__)

DEFAULT_REPS = 3
BASE, CANDIDATE = "base", "candidate"
RESULTS_KEY = "ab"  # key of our section in results.json's extra


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a kernel spec and what it boots with."""

    label: str
    kernel: str
    topology: str = "default"
    append: tuple[str, ...] = ()

    def describe(self) -> str:
        """The kernel spec plus whatever else this side boots with, for report titles."""
        extra = [f"topology {self.topology}"] if self.topology != "default" else []
        extra += [f"append {' '.join(self.append)}"] if self.append else []
        return f"{self.kernel} ({'; '.join(extra)})" if extra else self.kernel


@dataclass(frozen=True)
class AbRequest:
    """Everything that defines an A/B comparison (and its reproducer)."""

    base: Side
    candidate: Side
    out_dir: Path
    plan: str = "quick"
    reps: int = DEFAULT_REPS
    accel: str = "auto"
    runtime_s: int | None = None
    allow_env_diff: tuple[str, ...] = ()
    alpha: float = DEFAULT_ALPHA
    measure: str = "wall"  # "cost": QEMU instruction counting on every run
    suites: tuple[str, ...] = ()  # peer suites (--suite) run on both sides after the plan
    guest_root: str = "host"  # both sides boot the same root (harness.vm.guestroot)

    def __post_init__(self) -> None:
        check_suites(self.guest_root, self.suites)
        if self.reps < 1:
            raise UserError(f"--reps must be at least 1 (got {self.reps}); 3 or more for stats")
        if self.base.label == self.candidate.label:
            raise UserError("the two sides need different labels")

    @property
    def sides(self) -> tuple[Side, Side]:
        return (self.base, self.candidate)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AbRequest:
        def side(d: dict[str, Any]) -> Side:
            return Side(**{**d, "append": tuple(d.get("append", ()))})

        return cls(
            **{
                **data,
                "base": side(data["base"]),
                "candidate": side(data["candidate"]),
                "out_dir": Path(data["out_dir"]),
                "allow_env_diff": tuple(data.get("allow_env_diff", ())),
                "suites": tuple(data.get("suites", ())),
            }
        )


@dataclass(frozen=True)
class Slot:
    """One run in the schedule: repetition `rep` of side `side`."""

    rep: int
    side: Side

    @property
    def name(self) -> str:
        return f"rep{self.rep}-{self.side.label}"


def schedule(sides: Sequence[Side], reps: int) -> list[Slot]:
    """Every repetition runs each side once, the order rotated by one side per repetition
    (A B, B A, A B ...; with three sides A B C, B C A, C A B), so that no side always runs
    in the same place. A fixed order let a slot's place bias the paired comparison: an A/A
    control under multi-threaded TCG had its second side 15-20% higher in CPU per I/O in
    all three repetitions (q 0.03), another run the reverse."""
    return [
        Slot(rep, sides[(rep + i) % len(sides)]) for rep in range(reps) for i in range(len(sides))
    ]


def run_request(req: AbRequest, slot: Slot) -> RunRequest:
    """The RunRequest for one slot; its files go to OUT/runs/rep<N>-<label>/."""
    return RunRequest(
        kernel=slot.side.kernel,
        out_dir=req.out_dir / "runs" / slot.name,
        topology=slot.side.topology,
        plan=req.plan,
        accel=req.accel,
        repetition=slot.rep,
        append=slot.side.append,
        runtime_s=req.runtime_s,
        measure=req.measure,
        suites=req.suites,
        guest_root=req.guest_root,
    )


class Progress(Protocol):
    """What run_interleaved reports as it goes (the CLI shows it with rich)."""

    def started(self, index: int, total: int, slot: Slot) -> None: ...

    def finished(self, index: int, total: int, slot: Slot, result: RunResult) -> None: ...


Done = list[tuple[Slot, RunResult]]


def repeated_failure(results: Sequence[RunResult]) -> str:
    """Why a side need not run again ('' when it must): its first two repetitions ended
    with the same kernel failure in the same step (same splat kind and top frames)."""
    if len(results) < 2:
        return ""
    first, second = (classify(r) for r in results[:2])
    same = (first.step, first.signature) == (second.step, second.signature)
    if first.cls == second.cls == KERNEL_FAILURE and first.signature and same:
        where = first.step or "boot"
        return (
            f"stopped after 2 repetitions with the same kernel failure in {where} "
            f"({first.signature})"
        )
    return ""


def run_interleaved(
    slots: Sequence[Slot],
    request_for: Callable[[Slot], Any],
    run_one: Callable[[Any], RunResult],
    *,
    progress: Progress | None = None,
    after_each: Callable[[Done], None] | None = None,
    stopped: dict[str, str] | None = None,
) -> Done:
    """Run the slots in order through run_one; after_each sees everything done so far.

    A side whose first two repetitions failed the same way in the same step is not run
    again (a deterministic crash); `stopped` gets its label and why."""
    done: Done = []
    stopped = {} if stopped is None else stopped
    for index, slot in enumerate(slots):
        label = slot.side.label
        why = stopped.get(label) or repeated_failure(runs_of(done, label))
        if why:
            if label not in stopped:
                log.warning("%s: %s", label, why)
                stopped[label] = why
            continue
        if progress:
            progress.started(index, len(slots), slot)
        result = run_one(request_for(slot))
        done.append((slot, result))
        if progress:
            progress.finished(index, len(slots), slot, result)
        if result.infra_error:
            log.warning("%s: %s", slot.name, result.infra_error)
        elif classify(result).failed:
            log.warning("%s: %s", slot.name, classify(result).summary)
        if after_each:
            after_each(done)
    return done


def runs_of(done: Done, label: str) -> list[RunResult]:
    return [result for slot, result in done if slot.side.label == label]


def save_results(req: AbRequest, done: Done, stopped: dict[str, str] | None = None) -> Path:
    """results.json in req.out_dir: the runs plus which side each belongs to and the request
    (and which sides stopped repeating, and why)."""
    path = req.out_dir / "results.json"
    extra = {
        RESULTS_KEY: {
            "request": req.to_dict(),
            "sides": [s.side.label for s, _ in done],
            "stopped": dict(stopped or {}),
        }
    }
    store.save_runs(path, [result for _, result in done], extra)
    return path


def guard_early(req: AbRequest, done: Done) -> None:
    """Refuse after the first usable pair instead of after hours of runs."""
    base = [r for r in runs_of(done, req.base.label) if not r.infra_error]
    cand = [r for r in runs_of(done, req.candidate.label) if not r.infra_error]
    if base and cand:
        guard_environment(environment_diffs(base, cand), req.allow_env_diff)


def ab_argv(req: AbRequest) -> list[str]:
    """The `harness ab` arguments that reproduce this request (without --out)."""
    argv = ["ab", "--base", req.base.kernel, "--candidate", req.candidate.kernel]
    argv += ["--plan", req.plan, "--topology", req.base.topology, "--reps", str(req.reps)]
    # always said: a pinned spec loses its +series=, and with it the default root
    argv += ["--accel", req.accel, "--guest-root", req.guest_root]
    for suite in req.suites:
        argv += ["--suite", suite]
    if req.candidate.topology != req.base.topology:
        argv += ["--candidate-topology", req.candidate.topology]
    for word in req.candidate.append:
        argv += ["--candidate-append", word]
    for word in req.base.append:
        argv += ["--base-append", word]
    if req.runtime_s is not None:
        argv += ["--runtime", str(req.runtime_s)]
    for name in req.allow_env_diff:
        argv += ["--allow-env-diff", name]
    if req.alpha != DEFAULT_ALPHA:
        argv += ["--alpha", str(req.alpha)]
    if req.measure != "wall":
        argv += ["--measure", req.measure]
    return argv


def pin_kernels(req: AbRequest, comparison: Comparison) -> AbRequest:
    """The request with each side's kernel spec pinned to the exact kernel that ran."""
    sides = []
    for side, runs in ((req.base, comparison.base_runs), (req.candidate, comparison.cand_runs)):
        release = next((r.kernel.release for r in runs if r.kernel.release), "")
        sides.append(dataclasses.replace(side, kernel=reproducer.pinned_spec(side.kernel, release)))
    return dataclasses.replace(req, base=sides[0], candidate=sides[1])


def finish(req: AbRequest | None, comparison: Comparison, out_dir: Path) -> list[Path]:
    """Write junit.xml, report.md, report.html and (with a request) reproduce.sh."""
    written = report.write_reports(comparison, out_dir)
    if req is not None:
        path = out_dir / "reproduce.sh"
        pinned = pin_kernels(req, comparison)
        path.write_text(reproducer.render_reproducer(ab_argv(pinned), comparison))
        path.chmod(0o755)
        written.append(path)
    return written


def run_ab(
    req: AbRequest,
    run_one: Callable[[Any], RunResult],
    *,
    progress: Progress | None = None,
    make_request: Callable[[AbRequest, Slot], Any] = run_request,
) -> Comparison:
    """Run the interleaved comparison, write every output into req.out_dir, return it.

    run_one gets make_request(req, slot) for each slot (by default a RunRequest).

    Raises UserError (after saving results.json) when the sides' environments differ in
    a field not in req.allow_env_diff.
    """
    req.out_dir.mkdir(parents=True, exist_ok=True)
    stopped: dict[str, str] = {}

    def after_each(done: Done) -> None:
        save_results(req, done, stopped)
        guard_early(req, done)

    done = run_interleaved(
        schedule(req.sides, req.reps),
        lambda slot: make_request(req, slot),
        run_one,
        progress=progress,
        after_each=after_each,
        stopped=stopped,
    )
    save_results(req, done, stopped)
    comparison = compare(
        runs_of(done, req.base.label),
        runs_of(done, req.candidate.label),
        allow_env_diff=req.allow_env_diff,
        alpha=req.alpha,
        base_label=req.base.describe(),
        cand_label=req.candidate.describe(),
    )
    finish(req, comparison, req.out_dir)
    note_stopped(req.out_dir / "report.md", stopped)
    return comparison


def note_stopped(report_md: Path, stopped: dict[str, str]) -> None:
    """Say in report.md which sides stopped repeating a deterministic crash, and why."""
    if stopped and report_md.exists():
        lines = [
            f"- **{label}** {why}; the comparison uses the repetitions it has"
            for label, why in stopped.items()
        ]
        text = report_md.read_text().rstrip("\n") + "\n\n## Early stop\n\n" + "\n".join(lines)
        report_md.write_text(text + "\n")


@dataclass(frozen=True)
class Stored:
    """One results.json: its runs, their side labels and the A/B request (when recorded)."""

    runs: tuple[RunResult, ...]
    labels: tuple[str, ...] | None = None
    request: AbRequest | None = None

    def side(self, label: str) -> list[RunResult]:
        assert self.labels is not None
        return [r for r, lab in zip(self.runs, self.labels, strict=True) if lab == label]


def load_stored(path: Path) -> Stored:
    """Read a results.json written by `harness ab` (labelled) or `harness run` (plain)."""
    runs = tuple(store.load_runs(path))
    section = json.loads(path.read_text()).get(RESULTS_KEY)
    if section is None:
        return Stored(runs)
    labels = tuple(section.get("sides", ()))
    if len(labels) != len(runs):
        raise UserError(f"{path}: {len(labels)} side labels for {len(runs)} runs; damaged file")
    request = section.get("request")
    return Stored(runs, labels, AbRequest.from_dict(request) if request else None)


def load_comparison(
    paths: Sequence[Path], *, allow_env_diff: Sequence[str] = ()
) -> tuple[AbRequest | None, Comparison]:
    """Rebuild a Comparison from stored results.json files.

    A/B results files are pooled side by side (they must compare the same sides). Two
    plain results files (from `harness run`) are compared as base=first, candidate=second.
    Returns the first file's request (None when not recorded) and the comparison.
    """
    stored = [load_stored(p) for p in paths]
    req = stored[0].request
    if all(s.labels is not None for s in stored):
        titles = {
            (s.request.base.describe(), s.request.candidate.describe()) for s in stored if s.request
        }
        if len(titles) > 1:
            raise UserError("these results files compare different sides: report them apart")
        base = [r for s in stored for r in s.side(BASE)]
        cand = [r for s in stored for r in s.side(CANDIDATE)]
    elif len(stored) == 2 and all(s.labels is None for s in stored):
        base, cand = list(stored[0].runs), list(stored[1].runs)
    else:
        raise UserError(
            "pass A/B results.json files (from 'harness ab'), or exactly two plain "
            "results.json files to compare as base and candidate"
        )
    allowed = (*(req.allow_env_diff if req else ()), *allow_env_diff)
    comparison = compare(
        base,
        cand,
        allow_env_diff=allowed,
        alpha=req.alpha if req else DEFAULT_ALPHA,
        base_label=req.base.describe() if req else None,
        cand_label=req.candidate.describe() if req else None,
    )
    return req, comparison


def save_pooled(out_dir: Path, req: AbRequest | None, comparison: Comparison) -> Path:
    """results.json for a regenerated comparison (pooled runs), labelled by side."""
    runs = [*comparison.base_runs, *comparison.cand_runs]
    labels = [BASE] * len(comparison.base_runs) + [CANDIDATE] * len(comparison.cand_runs)
    request = dataclasses.replace(req, out_dir=out_dir).to_dict() if req else None
    path = out_dir / "results.json"
    store.save_runs(path, runs, {RESULTS_KEY: {"request": request, "sides": labels}})
    return path
