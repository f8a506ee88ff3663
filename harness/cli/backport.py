"""`harness backport`: one series against several bases — apply, build, boot, check, A/B.

Exit codes: 0 every base good, 1 a base failed (conflict, build failure, a regression or a
new kernel/test failure with the series), 2 infrastructure trouble or a usage error.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from rich.console import Console

from harness.cli.exits import EXIT_FAIL, EXIT_INFRA, EXIT_PASS
from harness.cli.hosts import host_options, remote_pool
from harness.cli.options import ab_options, guest_root_option
from harness.errors import UserError
from harness.paths import default_out_root
from harness.results import outlock
from harness.results.files import ensure_writable_dir
from harness.vm.guestroot import parse
from harness.workflows.ab import workflow as ab
from harness.workflows.backport import report as backport_report
from harness.workflows.backport.model import STAGES, BaseResult
from harness.workflows.backport.workflow import (
    DEFAULT_WATCH,
    BackportRequest,
    remote_runner,
    run_backport,
)


def pair(text: str, what: str) -> tuple[str, str]:
    """'BASE=VALUE' split at the last '=' (base specs may carry +config=...)."""
    base, eq, value = text.rpartition("=")
    if not eq or not base or not value:
        raise UserError(f"--{what} {text!r}: use --{what} BASE=VALUE, BASE exactly as in --base")
    return base, value


def stop_pair(text: str) -> tuple[str, str]:
    """'[BASE=]STAGE': without a base, the stage applies to every base."""
    return pair(text, "stop-after") if "=" in text else ("*", text)


def _abs_if_file(name: str) -> str:
    return str(Path(name).resolve()) if Path(name).is_file() else name


def request_from_args(ns: argparse.Namespace) -> BackportRequest:
    out = (
        Path(ns.out).resolve()
        if ns.out
        else default_out_root() / (f"backport-{datetime.now():%Y%m%d-%H%M%S}")
    )
    series_for = tuple(pair(s, "series-for") for s in ns.series_for or ())
    return BackportRequest(
        series=_abs_if_file(ns.series),
        bases=tuple(ns.base),
        out_dir=out,
        series_for=tuple((b, _abs_if_file(s)) for b, s in series_for),
        stop_after=tuple(stop_pair(s) for s in ns.stop_after or ()),
        plan=_abs_if_file(ns.plan),
        reps=ns.reps,
        accel=ns.accel,
        topology=_abs_if_file(ns.topology),
        runtime_s=ns.runtime,
        watch=ns.watch,
        guest_root=parse(ns.guest_root, tuple(ns.base), "backport"),
        suites=tuple(ns.suite),
    )


def exit_code(rows: tuple[BaseResult, ...]) -> int:
    if any(r.failed for r in rows):
        return EXIT_FAIL
    return EXIT_INFRA if any(r.infra for r in rows) else EXIT_PASS


def _run(ns: argparse.Namespace) -> int:
    req = request_from_args(ns)
    ensure_writable_dir(req.out_dir)
    with outlock.hold(req.out_dir), remote_pool(ns) as remote:
        return _run_on(req, remote)


def _run_on(req: BackportRequest, remote) -> int:
    console = Console(stderr=True)
    console.print(f"backport into {req.out_dir}: {len(req.bases)} base(s)", highlight=False)

    def on_base(row: BaseResult) -> None:
        console.print(f"  {row.base}: {row.verdict}: {row.summary}", highlight=False)

    rows = run_backport(req, runner=remote_runner(remote), on_base=on_base)
    extra = {
        "request": {
            "series": req.series,
            "bases": list(req.bases),
            "series_for": dict(req.series_for),
            "plan": req.plan,
            "reps": req.reps,
            "watch": req.watch,
        }
    }
    backport_report.write_all(req.out_dir, rows, extra)
    print((req.out_dir / "backport.md").read_text(), end="")
    console.print(f"table: {req.out_dir}/backport.md, backport.html, backport.json, junit.xml")
    return exit_code(rows)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "backport", help="one series x several bases: apply, build, boot, check, A/B, as a table"
    )
    p.add_argument("--series", required=True, help="mbox, patch directory or message-id")
    p.add_argument(
        "--base",
        action="append",
        required=True,
        metavar="SPEC",
        help="base kernel source: git:TREE@REF, src:debian:PACKAGE, src:DIR (repeatable)",
    )
    p.add_argument(
        "--series-for",
        action="append",
        metavar="BASE=SERIES",
        help="a backported series for one base (repeatable)",
    )
    p.add_argument(
        "--stop-after",
        action="append",
        metavar="[BASE=]STAGE",
        help=f"stop a base (or all) after STAGE: {', '.join(STAGES)}",
    )
    p.add_argument("--plan", default="quick", help="plan name or file (default: quick)")
    p.add_argument("--topology", default="default", help="topology name or file")
    p.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="SPEC",
        help="a peer suite in every base's A/B (as in harness run --suite); the table's suite "
        "column lists its new failures per base",
    )
    ab_options(p, ab.DEFAULT_REPS, "A/B ")
    p.add_argument(
        "--watch",
        default=DEFAULT_WATCH,
        metavar="METRIC",
        help=f"metric the table says was seen (default {DEFAULT_WATCH})",
    )
    guest_root_option(p)
    host_options(p)
    p.add_argument("--out", help="output directory (default: out/backport-<time>)")
    p.set_defaults(func=_run)
