"""`harness report RESULTS.json...`: regenerate A/B reports from stored results."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from harness.cli.ab import allow_env_diff_option, summarize
from harness.results import outlock
from harness.results.files import ensure_writable_dir
from harness.workflows.ab import workflow as ab


def _run_report(ns: argparse.Namespace) -> int:
    paths = [Path(p).resolve() for p in ns.results]
    out_dir = Path(ns.out).resolve() if ns.out else paths[0].parent
    ensure_writable_dir(out_dir)
    with outlock.hold(out_dir):  # not while an ab run (or another report) writes there
        req, comparison = ab.load_comparison(paths, allow_env_diff=ns.allow_env_diff or ())
        if out_dir / "results.json" not in paths:
            ab.save_pooled(out_dir, req, comparison)
        ab.finish(req, comparison, out_dir)
    return summarize(Console(stderr=True), comparison, out_dir)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    r = subparsers.add_parser("report", help="regenerate A/B reports from results.json files")
    r.add_argument("results", nargs="+", help="results.json files (pooled per side)")
    r.add_argument("--out", help="output directory (default: the first file's directory)")
    allow_env_diff_option(r)
    r.set_defaults(func=_run_report)
