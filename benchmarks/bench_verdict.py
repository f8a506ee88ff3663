"""Benchmark: time to verdict for a kernel that oopses and one that hangs mid-step.

    .venv/bin/python benchmarks/bench_verdict.py [--reps 1] [--out DIR]

Each variant is the lean 6.12 build plus a fault series (tests/data/series/fault-oops.mbox:
NULL dereference on the N-th loop read; fault-hang.mbox: the N-th loop direct-I/O write
blocks forever in D state), built incrementally. `harness run` boots it with the fault
armed on the command line on a plan of raw NVMe randread, loop randwrite, loop randread,
file-on-XFS randread (the hang hits in the loop randwrite, the oops in the loop randread).
Printed per run: the exit code, the verdict, the seconds from the
fault (the variant's own console line: the oops, or the moment the write starts to block)
to the harness's exit, and the total. Goal: under 90 s for an oops, 3 minutes for a hang
(before this work: 650 s and ~300 s, both reported as infrastructure errors). Every log
the run's output names is checked to exist. Not a test; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERIES = ROOT / "tests" / "data" / "series"
LEAN = "src:debian:linux-source-6.12"
PLAN = {
    "name": "bench-verdict",
    "runtime_s": 3,
    "size_mb": 128,
    "fio": [
        {"workloads": ["randread-4k"], "targets": ["raw-nvme0"]},
        {"workloads": ["randwrite-4k"], "targets": ["loop-dio-on-xfs"]},
        {"workloads": ["randread-4k"], "targets": ["loop-dio-on-xfs", "file-xfs"]},
    ],
}
VARIANTS = {  # name: (command-line word, the variant's console line at the fault, goal s)
    "fault-oops": ("loop.harness_oops_after=300", "harness_oops_after=300: dereferencing", 90),
    "fault-hang": ("loop.harness_hang_after=50", "harness_hang_after=50: blocking", 180),
}
HARNESS = [sys.executable, "-m", "harness"]


def timed_run(argv: list[str], out: Path, fault_text: str) -> tuple[int, float | None, float, str]:
    t0 = time.monotonic()
    # output to a file, not a pipe read only at the end: a chatty run would fill the pipe
    # and block the harness, which the time-to-verdict figure would then include
    log_path = out.parent / f"{out.name}.harness-output.log"
    with log_path.open("w") as log_fh:
        proc = subprocess.Popen(argv, stdout=log_fh, stderr=subprocess.STDOUT, text=True)
    fault_at = None
    while proc.poll() is None:
        if fault_at is None:
            for log in out.glob("*/console*.log"):
                if fault_text in log.read_text(errors="replace"):
                    fault_at = time.monotonic()
        time.sleep(0.2)
    end = time.monotonic()
    output = log_path.read_text(errors="replace")
    return proc.returncode, (end - fault_at) if fault_at else None, end - t0, output


def missing_logs(output: str) -> list[str]:
    """Log paths the command's output names that do not exist after it ended."""
    named = re.findall(r"(/\S+?\.log)\b", output)
    return [p for p in named if "*" not in p and not Path(p).exists()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench-verdict")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    plan = args.out / "plan.json"
    plan.write_text(json.dumps(PLAN))
    for name, (word, fault_text, goal) in VARIANTS.items():
        spec = f"{LEAN}+series={SERIES / (name + '.mbox')}"
        subprocess.run(HARNESS + ["build", spec], check=True, capture_output=True)
        for rep in range(args.reps):
            out = args.out / f"{name}-{rep}"
            argv = HARNESS + [
                "run",
                "--kernel",
                spec,
                "--plan",
                str(plan),
                "--append",
                word,
                "--out",
                str(out),
            ]
            rc, to_exit, total, output = timed_run(argv, out, fault_text)
            runs = json.loads((out / "results.json").read_text())["runs"]
            verdict = runs[0].get("verdict", {}) if runs else {}
            shown = f"{to_exit:.0f} s" if to_exit is not None else "fault line not seen"
            ok = "ok" if to_exit is not None and to_exit < goal else f"MISSED goal {goal} s"
            print(
                f"{name} #{rep}: exit {rc}, fault -> exit {shown} ({ok}), total {total:.0f} s;"
                f" {verdict.get('class')}: {verdict.get('summary')}"
            )
            for path in missing_logs(output):
                print(f"  named log missing after exit: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
