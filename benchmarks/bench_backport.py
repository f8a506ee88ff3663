"""Print backport figures: wall time per stage per base, and the second base's cost
relative to the first.

    .venv/bin/python benchmarks/bench_backport.py [--base SPEC --base SPEC]
        [--series MBOX] [--series-for BASE=MBOX] [--reps N] [--plan PLAN] [--out DIR]

Default: the stand-in series on src:debian:linux-source-6.12 and, through its backport
(--series-for), on src:debian:linux-source-7.2 — apply, build unpatched + patched, A/B
with 1 rep of a one-row plan. Build times depend on the cache: the first run of a base
builds it cold (~11-15 min for a lean tree here); later runs are cache hits, so the
figures then show the apply and A/B stages. Run it under `flock /tmp/harness-heavy.lock`
on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from harness.cli.backport import pair
from harness.workflows.backport import report as backport_report
from harness.workflows.backport.workflow import BackportRequest, run_backport

ROOT = Path(__file__).resolve().parent.parent
SERIES = ROOT / "tests/data/series"
B612, B72 = "src:debian:linux-source-6.12", "src:debian:linux-source-7.2"
STAGES = ("apply_s", "build_base_s", "build_s", "ab_s")
PLAN = {
    "name": "backport-bench",
    "description": "one short loop fio row",
    "runtime_s": 3,
    "size_mb": 64,
    "fio": [{"workloads": ["randwrite-4k"], "targets": ["loop-dio-on-xfs"]}],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", action="append", help=f"default: {B612} and {B72}")
    p.add_argument("--series", default=str(SERIES / "backport-standin.mbox"))
    p.add_argument("--series-for", action="append", metavar="BASE=MBOX")
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--plan", help="plan name or file (default: one short loop fio row)")
    p.add_argument("--out", help="output directory (default: a temporary one)")
    ns = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    bases = tuple(ns.base or (B612, B72))
    series_for = [pair(s, "series-for") for s in ns.series_for or ()]
    if not ns.base and not ns.series_for:
        series_for = [(B72, str(SERIES / "backport-standin-7.2.mbox"))]
    out = Path(ns.out or tempfile.mkdtemp(prefix="bench-backport-"))
    out.mkdir(parents=True, exist_ok=True)
    plan = ns.plan
    if plan is None:
        plan = str(out / "plan.json")
        Path(plan).write_text(json.dumps(PLAN))
    req = BackportRequest(ns.series, bases, out, tuple(series_for), plan=plan, reps=ns.reps)
    t0 = time.monotonic()
    rows = run_backport(req)
    total = time.monotonic() - t0
    backport_report.write_all(out, rows)
    print(f"\nbackport bench: {len(rows)} base(s), {total:.1f} s in all; table in {out}")
    print(f"{'base':40} {'verdict':12} " + " ".join(f"{s:>12}" for s in STAGES) + f" {'total':>9}")
    sums = []
    for row in rows:
        cells = [row.durations.get(s) for s in STAGES]
        sums.append(sum(c for c in cells if c is not None))
        shown = " ".join(f"{c:12.1f}" if c is not None else f"{'-':>12}" for c in cells)
        print(f"{row.base:40} {row.verdict:12} {shown} {sums[-1]:9.1f}")
    if len(sums) >= 2 and sums[0] > 0:
        print(
            f"second base costs {sums[1] / sums[0]:.2f}x the first ({sums[1]:.1f} s vs "
            f"{sums[0]:.1f} s)"
        )


if __name__ == "__main__":
    main()
