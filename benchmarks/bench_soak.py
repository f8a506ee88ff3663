"""Soak: the default job N times back to back (and the loop plan M times), optionally with
another TCG guest running beside it, and what went wrong, counted by kind.

    .venv/bin/python benchmarks/bench_soak.py [--runs 20] [--loop-runs 2] [--beside]
                                              [--kernel debian:6.12] [--out DIR]

Each run is a real `harness run` into OUT/<plan>-<i>. Its verdict comes from results.json
(runs[].verdict, written by harness.verdict); a results file from before verdicts were
stored is classified again with harness.verdict.classify. Printed: per run the exit code,
verdict class and summary, seconds; then the counts of pass, kernel failures, test
failures, infrastructure errors, emulator artefacts, runs that wrote no results, and
retries by kind (verdict.retry / attempts / artefacts). Goal: 0 spurious kernel failures
in 20 default runs on this machine with another TCG guest beside it. Not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.results.model import RunResult  # noqa: E402
from harness.verdict import classify  # noqa: E402


def verdicts_of(results: Path) -> list[dict]:
    """Each run's stored verdict, or one computed from the run when none was stored."""
    doc = json.loads(results.read_text())
    found = []
    for data in doc.get("runs", []):
        verdict = data.get("verdict") or classify(RunResult.from_dict(data)).to_dict()
        found.append(verdict)
    return found


def beside_guest(kernel: str, out: Path) -> subprocess.Popen[str]:
    """Another TCG guest running a long fio job for the whole soak (the noisy neighbour)."""
    plan = out / "beside-plan.json"
    plan.write_text(
        json.dumps(
            {
                "name": "beside",
                "runtime_s": 3600,
                "size_mb": 128,
                "fio": [
                    {"workloads": ["randwrite-4k"], "targets": ["raw-nvme0"], "timeout_s": 4000}
                ],
            }
        )
    )
    # fio prints nothing for an hour: without a long silence limit the console watchdog
    # stops the neighbour after a few minutes (the first soak here lost it after 10 runs)
    argv = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--kernel",
        kernel,
        "--accel",
        "tcg",
        "--plan",
        str(plan),
        "--silence-timeout",
        "7200",
        "--out",
        str(out / f"beside-{time.monotonic_ns()}"),
    ]
    log = (out / "beside.log").open("a")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def one_run(kernel: str, plan: str, out: Path) -> tuple[int, float, list[dict]]:
    argv = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--kernel",
        kernel,
        "--plan",
        plan,
        "--out",
        str(out),
    ]
    t0 = time.monotonic()
    with (out.parent / f"{out.name}.log").open("w") as log:
        rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    took = time.monotonic() - t0
    results = out / "results.json"
    return rc, took, verdicts_of(results) if results.exists() else []


def tally(rows: list[tuple[str, int, float, list[dict]]]) -> None:
    classes: Counter[str] = Counter()
    retries: Counter[str] = Counter()
    no_results = 0
    for _, _, _, verdicts in rows:
        if not verdicts:
            no_results += 1
        for v in verdicts:
            classes[v.get("class", "?")] += 1
            if int(v.get("attempts", 1) or 1) > 1:
                retries[v.get("retry") or "retried"] += int(v["attempts"]) - 1
            for art in v.get("artefacts", []) or []:
                retries[f"emulator-artefact:{art.get('signature', art.get('kind', '?'))}"] += 1
    print(f"\nruns: {len(rows)}")
    for cls in ("pass", "kernel-failure", "test-failure", "infra-error", "emulator-artefact"):
        print(f"  {cls:18} {classes.get(cls, 0)}")
    print(f"  {'no results':18} {no_results}")
    print("retries by kind: " + (", ".join(f"{k} {n}" for k, n in retries.items()) or "none"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="default-job runs (default 20)")
    ap.add_argument("--loop-runs", type=int, default=0, help="loop-plan runs (default 0)")
    ap.add_argument("--kernel", default="debian:6.12")
    ap.add_argument("--beside", action="store_true", help="another TCG guest runs beside")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / f"soak-{time.strftime('%H%M%S')}")
    ns = ap.parse_args()
    ns.out.mkdir(parents=True, exist_ok=True)
    neighbour = beside_guest(ns.kernel, ns.out) if ns.beside else None
    rows = []
    try:
        for plan, count in (("quick", ns.runs), ("loop", ns.loop_runs)):
            for i in range(count):
                if neighbour is not None and neighbour.poll() is not None:
                    print(f"the neighbour guest ended (exit {neighbour.returncode}): restarted")
                    neighbour = beside_guest(ns.kernel, ns.out)
                rc, took, verdicts = one_run(ns.kernel, plan, ns.out / f"{plan}-{i}")
                summary = (
                    "; ".join(f"{v.get('class')}: {v.get('summary', '')}"[:140] for v in verdicts)
                    or "no results.json"
                )
                print(f"{plan}-{i}: exit {rc} in {took:.0f}s: {summary}", flush=True)
                rows.append((plan, rc, took, verdicts))
    finally:
        if neighbour is not None:
            neighbour.terminate()  # SIGTERM: the harness stops its guest and writes results
            neighbour.wait(timeout=60)
    tally(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
