"""`harness export kcidb RESULTS_DIR... --out FILE`: results as KCIDB JSON (KernelCI)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.cli.exits import EXIT_PASS
from harness.errors import UserError
from harness.report.kcidb import kcidb_document
from harness.results.files import atomic_write_text
from harness.results.store import load_runs
from harness.run.merge import results_path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export results to other systems (kcidb)")
    formats = p.add_subparsers(dest="format", required=True, metavar="FORMAT")
    k = formats.add_parser(
        "kcidb", help="KCIDB JSON (checkouts, builds, tests), validated with kcidb-io"
    )
    k.add_argument(
        "results",
        nargs="+",
        type=Path,
        metavar="RESULTS_DIR",
        help="results directories (or results.json files)",
    )
    k.add_argument("--out", type=Path, required=True, metavar="FILE", help="the JSON file")
    k.set_defaults(func=handle_kcidb)


def handle_kcidb(ns: argparse.Namespace) -> int:
    if ns.out.is_dir():
        raise UserError(f"--out {ns.out} is a directory: name the JSON file to write")
    runs = [run for arg in ns.results for run in load_runs(results_path(arg))]
    if not runs:
        raise UserError("those results files hold no runs: nothing to export")
    data = kcidb_document(runs)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(ns.out, json.dumps(data, indent=1) + "\n")
    print(
        f"KCIDB v{data['version']['major']}.{data['version']['minor']}: "
        f"{len(data['checkouts'])} checkout(s), {len(data['builds'])} build(s), "
        f"{len(data['tests'])} test(s) -> {ns.out}"
    )
    return EXIT_PASS
