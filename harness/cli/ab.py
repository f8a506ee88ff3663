"""`harness ab`: interleaved base vs candidate comparison, statistics, reports.

Exit codes: 0 no regression, 1 a significant regression or a check regression,
2 infrastructure trouble (a run failed to produce results) or a usage error.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from rich.console import Console

from harness.cli.exits import EXIT_FAIL, EXIT_INFRA, EXIT_PASS
from harness.cli.hosts import host_options, remote_pool
from harness.cli.options import ab_options, guest_root_option
from harness.cli.progress import RichProgress, shared_console
from harness.cli.run import measure_option, preflight
from harness.errors import UserError
from harness.kernel.model import Kernel
from harness.kernel.resolve import resolve_kernel
from harness.paths import default_out_root
from harness.report.junit import write_junit
from harness.report.markdown import write_markdown
from harness.results import outlock
from harness.results.compare import GUARDED_FIELDS, Comparison, compare
from harness.results.files import ensure_writable_dir
from harness.results.model import RunResult
from harness.run.engine import executor_for, require
from harness.run.executor import Executor, RunInterrupted
from harness.run.request import RunRequest
from harness.vm.guestroot import parse
from harness.workflows.ab import workflow as ab
from harness.workflows.ab.report import (
    fmt,
    fmt_effect,
    headline,
    suite_changes,
    why_inconclusive,
)

# An inconclusive primary metric (its interval reaches past the minimum change) and
# nothing regressed: the comparison could not tell, like a run that could not (exit 2).
# A regression anywhere outranks it (1): a verdict is never softened by noise elsewhere.
VERDICT_EXIT = {
    "ok": EXIT_PASS,
    "regression": EXIT_FAIL,
    "incomplete": EXIT_INFRA,
    "inconclusive": EXIT_INFRA,
}


def _default_out() -> Path:
    return default_out_root() / f"ab-{datetime.now():%Y%m%d-%H%M%S}"


def _abs_if_file(name: str) -> str:
    # Plan and topology files are kept absolute so reproduce.sh works from any directory.
    return str(Path(name).resolve()) if Path(name).is_file() else name


def request_from_args(ns: argparse.Namespace) -> ab.AbRequest:
    """Turn the parsed `ab` arguments into an AbRequest (refusing an unallowed topology diff)."""
    topology = _abs_if_file(ns.topology)
    cand_topology = _abs_if_file(ns.candidate_topology) if ns.candidate_topology else topology
    allow = tuple(ns.allow_env_diff or ())
    if cand_topology != topology and "topology" not in allow:
        raise UserError(
            "--candidate-topology differs from --topology: add --allow-env-diff topology "
            "to compare anyway (the comparison is then marked invalid)"
        )
    return ab.AbRequest(
        base=ab.Side(ab.BASE, ns.base, topology, tuple(ns.base_append or ())),
        candidate=ab.Side(
            ab.CANDIDATE, ns.candidate, cand_topology, tuple(ns.candidate_append or ())
        ),
        out_dir=Path(ns.out).resolve() if ns.out else _default_out(),
        plan=_abs_if_file(ns.plan or ("none" if ns.suite else "quick")),
        reps=ns.reps,
        accel=ns.accel,
        runtime_s=ns.runtime,
        allow_env_diff=allow,
        alpha=ns.alpha,
        measure=ns.measure,
        suites=tuple(ns.suite),
        guest_root=parse(ns.guest_root, (ns.base, ns.candidate), "ab"),
    )


def summarize(console: Console, comparison: Comparison, out_dir: Path) -> int:
    """Print the verdict and what regressed; return the exit code."""
    console.print(headline(comparison), highlight=False)
    for item in comparison.regressions:
        if hasattr(item, "metric"):
            console.print(
                f"  REGRESSION {item.step_id} {item.metric}: {fmt_effect(item)} "
                f"(q={fmt(item.q_value, 2)} {item.family}, {item.better} is better)",
                highlight=False,
            )
        else:
            console.print(f"  REGRESSION {item.step_id}: {item.message}", highlight=False)
    new_failures, new_passes = suite_changes(comparison)
    for test in new_passes:
        console.print(f"  new pass {test}: fails on base, passes on the candidate", highlight=False)
    for m in comparison.inconclusive:
        console.print(
            f"  INCONCLUSIVE {m.step_id} {m.metric}: {why_inconclusive(m)}", highlight=False
        )
    for err in comparison.infra_errors:
        console.print(f"  infra error: {err}", highlight=False)
    console.print(f"reports: {out_dir}/report.html, report.md, junit.xml", highlight=False)
    return VERDICT_EXIT[comparison.verdict]


def resolved_runner(req: ab.AbRequest, remote: Executor | None = None):
    """Resolve both sides' kernels before anything boots; a run_one over the resolved ones
    (on the --host pool when there is one)."""
    kernels: dict[str, Kernel] = {}
    for side in req.sides:
        if side.kernel not in kernels:
            kernels[side.kernel] = require(resolve_kernel(side.kernel))

    def run_one(run_req: RunRequest) -> RunResult:
        kernel = kernels[run_req.kernel]
        return executor_for(kernel, remote).run(run_req, kernel)

    return run_one


def save_interrupted(req: ab.AbRequest, done: ab.Done) -> None:
    """After SIGINT/SIGTERM/SIGHUP: results.json, junit.xml and the reports for the runs
    done (the cut-short one included); a comparison when both sides have a run."""
    if not done:
        return
    ab.save_results(req, done)
    base, cand = ab.runs_of(done, req.base.label), ab.runs_of(done, req.candidate.label)
    try:
        comparison = compare(
            base,
            cand,
            allow_env_diff=req.allow_env_diff,
            alpha=req.alpha,
            base_label=req.base.describe(),
            cand_label=req.candidate.describe(),
        )
        ab.finish(req, comparison, req.out_dir)
    except UserError:  # one side never ran: per-run JUnit and summary instead
        runs = [result for _, result in done]
        write_junit(req.out_dir / "junit.xml", runs)
        write_markdown(req.out_dir / "report.md", runs)


def _run_ab(ns: argparse.Namespace) -> int:
    req = request_from_args(ns)
    ensure_writable_dir(req.out_dir)
    preflight([side.kernel for side in req.sides])
    with remote_pool(ns) as remote:
        return _run_ab_on(req, resolved_runner(req, remote), quiet=getattr(ns, "quiet", False))


def _run_ab_on(req: ab.AbRequest, run_one, quiet: bool = False) -> int:
    console = shared_console()  # the build and boot bars nest in the A/B's bar
    console.print(f"A/B into {req.out_dir}: {req.reps} reps x 2 sides, interleaved")
    done: ab.Done = []
    slots: list[ab.Slot] = []

    def recorded(run_req: RunRequest) -> RunResult:  # remembers what ran, for an interrupt
        result = run_one(run_req)
        done.append((slots[-1], result))
        return result

    def make_request(r: ab.AbRequest, slot: ab.Slot) -> RunRequest:
        slots.append(slot)
        return ab.run_request(r, slot)

    with outlock.hold(req.out_dir), RichProgress(console, quiet) as progress:
        try:
            comparison = ab.run_ab(req, recorded, progress=progress, make_request=make_request)
        except KeyboardInterrupt as exc:  # harness.signals: keep the run it cut short
            if isinstance(exc, RunInterrupted):
                done.append((slots[-1], exc.result))
            save_interrupted(req, done)
            raise
    return summarize(console, comparison, req.out_dir)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ab", help="compare two kernels: interleaved reps, stats, report")
    p.add_argument("--base", required=True, help="base kernel spec, e.g. debian:6.12")
    p.add_argument("--candidate", required=True, help="candidate kernel spec")
    p.add_argument("--plan", help="plan name or file (default: quick; none with --suite)")
    p.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="SPEC",
        help="a peer suite run on both sides (as in harness run --suite); a test that passes "
        "on base and fails on the candidate is a regression (a new failure)",
    )
    p.add_argument("--topology", default="default", help="topology name or file (both sides)")
    p.add_argument("--candidate-topology", help="a different topology for the candidate only")
    p.add_argument(
        "--candidate-append",
        action="append",
        metavar="WORD",
        help="extra kernel command-line word for the candidate (repeatable)",
    )
    p.add_argument(
        "--base-append",
        action="append",
        metavar="WORD",
        help="extra kernel command-line word for the base (repeatable)",
    )
    ab_options(p, ab.DEFAULT_REPS)
    p.add_argument("--alpha", type=float, default=0.05, help="FDR level (default 0.05)")
    measure_option(p)
    guest_root_option(p)
    host_options(p)
    p.add_argument("--out", help="output directory (default: out/ab-<time>)")
    allow_env_diff_option(p)
    p.set_defaults(func=_run_ab)


def allow_env_diff_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-env-diff",
        action="append",
        choices=GUARDED_FIELDS,
        metavar="FIELD",
        help=f"compare although the sides differ in FIELD ({', '.join(GUARDED_FIELDS)}); "
        "the comparison is marked invalid",
    )
