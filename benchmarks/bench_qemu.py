"""Two QEMUs on the harness's own boots: the system's (7.2 on Debian 12) against the one
`harness qemu install` unpacks (bookworm-backports' 10.0), interleaved, the default job in
wall mode (multi-threaded TCG) and in cost mode (round-robin TCG with -icount).

    .venv/bin/python benchmarks/bench_qemu.py [--runs 6] [--cost-runs 4] [--out DIR]

Each run is a real `harness run --accel tcg` with HARNESS_QEMU set to 'system' or to the
installed launcher. Printed: per run the exit code, verdict, retries and the artefacts they
hid, boot seconds (the boot step: QEMU start to the agent's first word), the whole run, and
raw NVMe / loop dio-on 4k random-read IOPS; then per QEMU and mode the medians and the
counts of artefacts (int3, impossible flags, lost NVMe I/O) and non-passing runs. Run it on
a quiet host: the figures are wall-clock. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.vm import qemu  # noqa: E402

FIGURES = {
    "raw": ("fio/raw-nvme0/randread-4k", "read_iops"),
    "loop": ("fio/loop-dio-on-xfs/randread-4k", "read_iops"),
}


def one_run(which: str, measure: str, out: Path) -> dict:
    env = {**os.environ, qemu.QEMU_ENV: which}
    argv = [sys.executable, "-m", "harness", "run", "--accel", "tcg", "--measure", measure]
    argv += ["--out", str(out)]
    t0 = time.monotonic()
    with (out.parent / f"{out.name}.log").open("w") as log:
        rc = subprocess.run(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        ).returncode
    row = {"rc": rc, "took": time.monotonic() - t0, "verdict": {}, "boot": None}
    results = out / "results.json"
    if results.exists():
        run = json.loads(results.read_text())["runs"][0]
        steps = {s["id"]: s for s in run["steps"]}
        row["verdict"] = run.get("verdict") or {}
        row["qemu"] = run["environment"].get("qemu_version", "")
        row["boot"] = steps.get("boot", {}).get("duration_s")
        for name, (step, metric) in FIGURES.items():
            row[name] = steps.get(step, {}).get("metrics", {}).get(metric)
    return row


def artefacts_of(row: dict) -> list[str]:
    verdict = row["verdict"]
    found = [a.get("signature", "?") for a in verdict.get("artefacts", [])]
    if verdict.get("class") == "emulator-artefact":
        found.append(verdict.get("signature", "?"))
    return found


def median(values: list) -> str:
    got = [v for v in values if v is not None]
    return f"{statistics.median(got):.1f}" if got else "-"


def summary(rows: dict[tuple[str, str], list[dict]]) -> None:
    print("\nqemu    mode  runs  boot_s  run_s  raw_iops  loop_iops  not-pass  artefacts")
    for (label, measure), got in sorted(rows.items()):
        arts = Counter(a for r in got for a in artefacts_of(r))
        bad = sum(1 for r in got if r["rc"] != 0)
        print(
            f"{label:7} {measure:5} {len(got):4}  {median([r['boot'] for r in got]):>6}"
            f"  {median([r['took'] for r in got]):>5}  {median([r.get('raw') for r in got]):>8}"
            f"  {median([r.get('loop') for r in got]):>9}  {bad:8}  "
            + (", ".join(f"{k} {n}" for k, n in arts.items()) or "none")
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=6, help="wall-mode runs per QEMU")
    ap.add_argument("--cost-runs", type=int, default=4, help="cost-mode runs per QEMU")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / f"qemu-{time.strftime('%H%M%S')}")
    ns = ap.parse_args()
    installed = qemu.installed_launcher()
    if not installed.is_file():
        print(f"no installed QEMU at {installed}: run `harness qemu install` first")
        return 2
    sides = {"system": "system", "backports": str(installed)}
    ns.out.mkdir(parents=True, exist_ok=True)
    rows: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for measure, count in (("wall", ns.runs), ("cost", ns.cost_runs)):
        for i in range(count):
            for label, which in sides.items():  # interleaved: host drift hits both alike
                row = one_run(which, measure, ns.out / f"{label}-{measure}-{i}")
                rows[(label, measure)].append(row)
                verdict = row["verdict"]
                print(
                    f"{label}-{measure}-{i}: QEMU {row.get('qemu', '?')} exit {row['rc']} "
                    f"in {row['took']:.0f}s, boot {row['boot'] or 0:.1f}s, "
                    f"{verdict.get('class', 'no results')} {verdict.get('summary', '')[:90]}"
                    f" artefacts={artefacts_of(row)}",
                    flush=True,
                )
    summary(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
