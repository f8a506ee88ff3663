"""Bisect benchmark: the git-history bisection of tests/test_bisect_slow.py, timed.

Makes the same history (harmless, does-not-build, fix, breaking, harmless commits on the lean
base) with a fresh salt in the messages, so every commit is new to the build cache and each
step really builds in the lean object directory, then bisects it for check:sparse and prints
steps, wall time, time per step split into build / boot / test, and how many objects each
step rebuilt (CC lines in its build.log).

    flock /tmp/harness-heavy.lock .venv/bin/python benchmarks/bench_bisect.py [--reuse]

--reuse keeps the test's fixed commit ids (build cache hits: measures boots and tests only).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_bisect_slow import SPARSE_PLAN, make_history  # noqa: E402

from harness.kernel.build import kernel_from_spec  # noqa: E402
from harness.kernel.source import debian_source  # noqa: E402
from harness.workflows.bisect import workflow as bisect  # noqa: E402
from harness.workflows.bisect.state import BisectRequest  # noqa: E402


def objects_rebuilt(build_log: str | None) -> int | None:
    if not build_log or not Path(build_log).is_file():
        return None
    lines = Path(build_log).read_text(errors="replace").splitlines()
    return sum(1 for line in lines if line.strip().startswith("CC "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="fixed commits (cache hits)")
    ns = parser.parse_args()
    kernel_from_spec("src:debian:linux-source-6.12")  # the lean base: built once, then cached
    snap = debian_source("linux-source-6.12")
    salt = "" if ns.reuse else f" ({time.time():.0f})"
    commits = make_history(snap.repo, snap.commit, salt)
    out = Path(tempfile.mkdtemp(prefix="bench-bisect-"))
    plan = out / "plan.json"
    plan.write_text(json.dumps(SPARSE_PLAN))
    req = BisectRequest(
        "git",
        "check:sparse@loop-dio-on-xfs",
        out / "bisect",
        good="src:debian:linux-source-6.12",
        bad=f"git:{snap.repo}@{commits[-1]}",
        plan=str(plan),
        accel="tcg",
    )
    t0 = time.monotonic()
    state, result = bisect.run_bisect(req, progress=lambda m: print(m, flush=True))
    wall = time.monotonic() - t0
    print(f"\n{result.status}: {result.message}")
    print(
        f"steps: {len(state.steps)} ({len(state.tested())} after the 2 endpoints), "
        f"wall {wall:.0f} s\n"
    )
    print(
        f"{'role':14} {'commit':44} {'outcome':8} {'build s':>8} {'boot s':>7} {'test s':>7} "
        f"{'CC objs':>8}"
    )
    for step in state.steps:
        boot = sum(r.boot_s for r in step.runs)
        test = sum(r.duration_s for r in step.runs) - boot
        objs = objects_rebuilt(step.build_log)
        count = "-" if objs is None else str(objs)
        print(
            f"{step.role:14} {step.label[:44]:44} {step.outcome:8} {step.build_s:8.0f} "
            f"{boot:7.0f} {max(test, 0):7.0f} {count:>8}"
        )
    print(f"\nreport: {req.out_dir / 'bisect.md'}")
    return 0 if result.status == bisect.FOUND else 1


if __name__ == "__main__":
    raise SystemExit(main())
