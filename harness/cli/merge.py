"""`harness merge DIR... --out DIR`: merge shard results into one results.json, JUnit and
report (see harness.run.merge for what is merged how, and what is refused).

For an A/B over shards, merge each side's shards apart and compare the two merged files:
`harness report BASE/results.json CANDIDATE/results.json`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.run import exit_code
from harness.report.junit import write_junit
from harness.report.markdown import write_markdown
from harness.results import outlock
from harness.results.files import atomic_write_text, ensure_writable_dir
from harness.results.store import save_runs
from harness.run import merge
from harness.verdict import classify


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "merge", help="merge the results of `harness run --shard` into one verdict"
    )
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="shard results dirs")
    p.add_argument("--out", type=Path, required=True, help="where the merged results go")
    p.set_defaults(func=handle)


def handle(ns: argparse.Namespace) -> int:
    out = ns.out.resolve()
    ensure_writable_dir(out)
    with outlock.hold(out):
        runs, section = merge.merge_dirs([Path(d) for d in ns.dirs])
        save_runs(out / "results.json", runs, section)
        write_junit(out / "junit.xml", runs)
        write_markdown(out / "report.md", runs)
        markdown = (out / "report.md").read_text()
        atomic_write_text(out / "report.html", merge.report_html(runs, markdown))
    for run in runs:
        verdict = classify(run)
        counts = {
            s: sum(1 for x in run.steps if x.status == s)
            for s in ("pass", "fail", "error", "skip", "xfail")
        }
        print(
            f"{verdict.cls.upper()} {run.name} ({section['merge']['shards']} shards): "
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            + (f" ({verdict.summary})" if verdict.summary else "")
        )
    print(f"JUnit: {out / 'junit.xml'}\nresults: {out / 'results.json'}")
    print(f"report: {out / 'report.md'}, {out / 'report.html'}")
    return exit_code(runs)
