"""`harness bisect`: the first bad commit (git) or kernel (list) for a --test.

Exit codes: 0 the first bad one was found, 1 the endpoints are wrong (good is not good or
bad is not bad), 2 infrastructure trouble, an inconclusive end (only skipped steps left),
an interrupted bisection (resume with --resume DIR) or a usage error.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from harness import signals
from harness.cli.exits import (
    EXIT_FAIL,
    EXIT_INFRA,
    EXIT_PASS,
    GIT_BISECT_ABORT,
    GIT_BISECT_BAD,
    GIT_BISECT_GOOD,
    GIT_BISECT_SKIP,
)
from harness.cli.hosts import host_options, remote_pool
from harness.cli.options import accel_option, guest_root_option
from harness.errors import InfraError, SeriesConflict, UserError
from harness.paths import default_out_root
from harness.results import outlock
from harness.results.files import ensure_writable_dir
from harness.vm.guestroot import parse
from harness.workflows.bisect import workflow as bisect
from harness.workflows.bisect.criterion import TEST_FORMS, parse_test
from harness.workflows.bisect.kernels import parse_kernel_list
from harness.workflows.bisect.state import GIT, LIST, STATE_FILE, BisectRequest, load_state

STATUS_EXIT = {
    bisect.FOUND: EXIT_PASS,
    bisect.ENDPOINTS_WRONG: EXIT_FAIL,
    bisect.INCONCLUSIVE: EXIT_INFRA,
    bisect.INFRASTRUCTURE: EXIT_INFRA,
    bisect.INTERRUPTED: EXIT_INFRA,
}


def _abs_if_file(name: str) -> str:
    return str(Path(name).resolve()) if Path(name).is_file() else name


def parse_bad_if(text: str | None, runs: int | None) -> tuple[int, int | None]:
    """'2/3' -> (2, 3); None -> (1, runs)."""
    if text is None:
        return 1, runs
    k, slash, n = text.partition("/")
    if not (slash and k.isdigit() and n.isdigit()) or not 1 <= int(k) <= int(n):
        raise UserError(f"--bad-if {text!r}: use k/N with 1 <= k <= N, e.g. --bad-if 2/3")
    if runs is not None and runs != int(n):
        raise UserError(f"--bad-if {text} says {n} runs but --runs is {runs}: make them agree")
    return int(k), int(n)


def request_from_args(ns: argparse.Namespace) -> BisectRequest:
    """The parsed arguments as a BisectRequest (UserError on a bad combination)."""
    if not ns.test:
        raise UserError(f"--test is required: {TEST_FORMS}")
    test = parse_test(ns.test)
    if ns.kernels and (ns.good or ns.bad):
        raise UserError("give either --kernels (a list) or --good/--bad (git), not both")
    if not ns.kernels and not (ns.good and ns.bad):
        raise UserError("give --good SPEC --bad SPEC (git or src:) or --kernels A,B,C")
    k, n = parse_bad_if(ns.bad_if, ns.runs)
    runs = n or (3 if test.kind == "metric" else 1)
    if test.kind == "metric" and runs < 2:
        raise UserError("a metric test needs --runs 2 or more (3 by default) for its statistics")
    kernels = parse_kernel_list(ns.kernels) if ns.kernels else ()
    specs = (ns.good or "", ns.bad or "", *kernels)
    out = (
        Path(ns.out).resolve()
        if ns.out
        else default_out_root() / f"bisect-{datetime.now():%Y%m%d-%H%M%S}"
    )
    text = {"script": f"script:{test.script}", "suite": f"suite:{test.suite}"}
    return BisectRequest(
        mode=LIST if ns.kernels else GIT,
        test=text.get(test.kind, test.text),
        out_dir=out,
        good=ns.good or "",
        bad=ns.bad or "",
        kernels=kernels,
        plan=_abs_if_file(ns.plan or ("none" if test.kind == "suite" else "quick")),
        topology=_abs_if_file(ns.topology),
        accel=ns.accel,
        append=tuple(ns.append or ()),
        runtime_s=ns.runtime,
        runs=runs,
        bad_if=k,
        guest_root=parse(ns.guest_root, specs, "bisect"),
        crash_is_skip=bool(ns.crash_is_skip),
    )


def handle(ns: argparse.Namespace) -> int:
    if ns.resume:
        state = load_state(Path(ns.resume).resolve())
        req = state.request
    else:
        req, state = request_from_args(ns), None
        if (req.out_dir / STATE_FILE).exists():
            raise UserError(
                f"{req.out_dir} holds a bisection: --resume {req.out_dir} or pick another --out"
            )
    ensure_writable_dir(req.out_dir)
    if ns.host and req.test.startswith("script:"):
        raise UserError(
            "--host runs plans, not script: tests; drop --host or use a check:, "
            "splat or metric test"
        )
    print(f"bisect into {req.out_dir}: {req.test}, {req.runs} run(s) per step")
    try:
        with outlock.hold(req.out_dir), remote_pool(ns) as remote:
            runner = bisect.EngineRunner(parse_test(req.test), remote)
            state, result = bisect.run_bisect(
                req, state=state, max_steps=ns.max_steps, progress=print, runner=runner
            )
    except KeyboardInterrupt:
        print(f"interrupted: continue with harness bisect --resume {req.out_dir}")
        raise
    print(f"{result.status}: {result.message}")
    if result.status == bisect.INTERRUPTED:
        print(f"continue with: harness bisect --resume {req.out_dir}")
    print(f"report: {req.out_dir / 'bisect.md'}\nJSON: {req.out_dir / 'bisect.json'}")
    return STATUS_EXIT[result.status]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bisect", help="find the first bad commit or kernel for a test")
    p.add_argument("--good", metavar="SPEC", help="good endpoint: git:TREE@REF or src:..[+..]")
    p.add_argument("--bad", metavar="SPEC", help="bad endpoint (same tree and +options)")
    p.add_argument(
        "--kernels",
        metavar="A,B,..|FILE",
        help="ordered kernel specs, oldest (good) first, newest (bad) last",
    )
    p.add_argument("--test", help="what bad means: " + TEST_FORMS.replace("%", "%%"))
    p.add_argument(
        "--plan", help="plan name or JSON file (default: quick; none with a suite: test)"
    )
    p.add_argument("--topology", default="default", help="topology name or JSON file")
    accel_option(p)
    p.add_argument("--append", action="append", metavar="WORD", help="kernel command-line word")
    p.add_argument("--runtime", type=int, metavar="S", help="override every fio runtime")
    p.add_argument("--runs", type=int, metavar="N", help="runs per step (1; metric tests: 3)")
    p.add_argument("--bad-if", metavar="k/N", help="bad when the symptom shows in k of N runs")
    p.add_argument(
        "--crash-is-skip",
        action="store_true",
        help="a kernel failure inside the tested step (check:/script:) is not the "
        "symptom: skip that kernel (default: bad)",
    )
    p.add_argument("--out", help="output directory (default: out/bisect-<time>)")
    p.add_argument("--resume", metavar="DIR", help="continue the bisection in DIR")
    p.add_argument(
        "--max-steps",
        type=int,
        metavar="N",
        help="test at most N commits/kernels now (resume later)",
    )
    guest_root_option(p)
    host_options(p)
    p.set_defaults(func=handle)


def answer_git_bisect(command: Callable[[], int]) -> int:
    """Run a command and answer in `git bisect run`'s terms: 0 good, 1 bad (the kernel or a
    test failed), 125 skip for anything that is not a kernel verdict (infrastructure, a
    failed build, a series that does not apply, a host I/O error, a bug of the harness),
    128 (abort) for a usage error or an interrupt. Python's own exit for an uncaught
    exception is 1, which git would count as bad: nothing but a verdict may say bad."""
    try:
        code = command()
    except (InfraError, SeriesConflict) as exc:
        print(f"harness: {exc} (git bisect: skip)", file=sys.stderr)
        return GIT_BISECT_SKIP
    except UserError as exc:
        print(f"harness: error: {exc} (git bisect: abort)", file=sys.stderr)
        return GIT_BISECT_ABORT
    except KeyboardInterrupt as exc:  # harness.signals: Ctrl-C, SIGTERM, SIGHUP
        print(f"harness: {signals.reason_of(exc)} (git bisect: abort)", file=sys.stderr)
        return GIT_BISECT_ABORT
    except Exception as exc:  # anything unforeseen could not tell good from bad
        detail = "".join(traceback.format_exception(exc)).rstrip()
        print(
            f"{detail}\nharness: unexpected {type(exc).__name__}: {exc} (git bisect: skip)",
            file=sys.stderr,
        )
        return GIT_BISECT_SKIP
    return {EXIT_PASS: GIT_BISECT_GOOD, EXIT_FAIL: GIT_BISECT_BAD}.get(code, GIT_BISECT_SKIP)
