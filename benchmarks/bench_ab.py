"""Benchmark: how small a planted slowdown the A/B verdict catches, and A/A false alarms.

    .venv/bin/python benchmarks/bench_ab.py [--plan quick] [--reps 3] [--slowdowns 50,25,10]

1. Calibrate: one boot of the kernel measures the reference IOPS (raw NVMe randread-4k).
2. One interleaved schedule per trial runs, each repetition: the base, an identical A/A
   side, and one side per planted slowdown s% whose NVMe disk QEMU throttles to
   (1 - s/100) x the calibrated IOPS.
3. Prints, per slowdown, whether the reference metric was flagged as a regression in each
   trial; the smallest slowdown flagged in every trial (and every larger one); and the A/A
   false-alarm count over the whole plan (all metrics and checks).

Long: (2 + len(slowdowns)) x reps x trials boots, minutes each under TCG. Not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.paths import PROJECT_ROOT  # noqa: E402
from harness.results.compare import compare  # noqa: E402
from harness.vm import topology as topo_mod  # noqa: E402
from harness.workflows import ab  # noqa: E402

REF_STEP = "fio/raw-nvme0/randread-4k"
REF_METRIC = "read_iops"


def throttled_topology(base: str, disk: str, iops: int, out: Path) -> str:
    """Write a copy of topology `base` whose `disk` QEMU limits to `iops`; return its path."""
    data = topo_mod.load(base).to_dict()
    for d in data["disks"]:
        if d["name"] == disk:
            d["iops_limit"] = iops
    data["name"] = f"{data['name']}-iops{iops}"
    path = out / f"{data['name']}.json"
    path.write_text(json.dumps(data, indent=1))
    return str(path)


def reference(run) -> float | None:  # noqa: ANN001 - RunResult
    for step in run.steps:
        if step.id == REF_STEP and step.status == "pass":
            return step.metrics.get(REF_METRIC)
    return None


def calibrate(args: argparse.Namespace, run_one) -> float:  # noqa: ANN001
    side = ab.Side(ab.BASE, args.kernel, args.topology)
    req = ab.AbRequest(
        side,
        ab.Side(ab.CANDIDATE, args.kernel),
        args.out / "calibrate",
        plan=args.plan,
        reps=1,
        accel=args.accel,
        runtime_s=args.runtime,
    )
    result = run_one(ab.run_request(req, ab.Slot(0, side)))
    value = reference(result)
    if not value:
        sys.exit(f"calibration run has no {REF_STEP} {REF_METRIC}: {result.infra_error}")
    return float(value)


def one_trial(args, run_one, ref_iops: float, trial: int) -> dict:  # noqa: ANN001
    out = args.out / f"trial{trial}"
    out.mkdir(parents=True, exist_ok=True)
    base = ab.Side(ab.BASE, args.kernel, args.topology)
    sides = [base, ab.Side("aa", args.kernel, args.topology)]
    for pct in args.slowdowns:
        limit = max(1, round(ref_iops * (1 - pct / 100)))
        path = throttled_topology(args.topology, args.disk, limit, out)
        sides.append(ab.Side(f"slow{pct}", args.kernel, path))
    req = ab.AbRequest(
        base,
        sides[1],
        out,
        plan=args.plan,
        reps=args.reps,
        accel=args.accel,
        runtime_s=args.runtime,
    )

    def progress(done):  # noqa: ANN001, ANN202
        slot, result = done[-1]
        print(
            f"  trial {trial} {slot.name}: ref {reference(result)} {result.infra_error or ''}",
            flush=True,
        )

    done = ab.run_interleaved(
        ab.schedule(sides, args.reps),
        lambda slot: ab.run_request(req, slot),
        run_one,
        after_each=progress,
    )
    base_runs = ab.runs_of(done, ab.BASE)
    aa = compare(base_runs, ab.runs_of(done, "aa"))
    flagged = {}
    for pct in args.slowdowns:
        c = compare(base_runs, ab.runs_of(done, f"slow{pct}"), allow_env_diff=["topology"])
        m = next((m for m in c.metrics if (m.step_id, m.metric) == (REF_STEP, REF_METRIC)), None)
        flagged[pct] = (m is not None and m.verdict == "regression", m)
    return {"aa": aa, "flagged": flagged}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernel", default="debian:6.12")
    p.add_argument("--plan", default="quick", help="the default plan of `harness ab`")
    p.add_argument("--topology", default="default")
    p.add_argument("--disk", default="nvme0", help="disk to throttle (holds the reference)")
    p.add_argument("--reps", type=int, default=ab.DEFAULT_REPS)
    p.add_argument(
        "--slowdowns",
        default="50,25,10",
        type=lambda s: sorted({int(x) for x in s.split(",")}, reverse=True),
    )
    p.add_argument("--trials", type=int, default=1)
    p.add_argument("--runtime", type=int, default=None)
    p.add_argument("--accel", default="tcg")
    p.add_argument("--ref-iops", type=float, help="skip calibration, use this reference")
    p.add_argument(
        "--out",
        type=Path,
        default=PROJECT_ROOT / "out" / f"bench-ab-{datetime.now():%Y%m%d-%H%M%S}",
    )
    args = p.parse_args()
    from harness.run.engine import run_one

    ref = args.ref_iops or calibrate(args, run_one)
    print(f"reference {REF_STEP} {REF_METRIC}: {ref:.0f}", flush=True)
    trials = [one_trial(args, run_one, ref, t) for t in range(args.trials)]
    report(args, trials)


def smallest_reliable(slowdowns: list[int], trials: list[dict]) -> int | None:
    """The smallest slowdown flagged in every trial, with every larger one flagged too."""
    reliable = None
    for pct in slowdowns:  # largest first
        if not all(t["flagged"][pct][0] for t in trials):
            break
        reliable = pct
    return reliable


def report(args: argparse.Namespace, trials: list[dict]) -> None:
    print(f"\nslowdown  flagged/trials  measured change per trial (reps={args.reps})")
    for pct in args.slowdowns:
        hits = [t["flagged"][pct] for t in trials]
        changes = " ".join(
            f"{m.change_pct:+.1f}%" if m and m.change_pct is not None else "-" for _, m in hits
        )
        print(f"{pct:>7}%  {sum(f for f, _ in hits):>7}/{len(trials):<6}  {changes}")
    aa_changes = []
    for t in trials:
        m = next(
            (m for m in t["aa"].metrics if (m.step_id, m.metric) == (REF_STEP, REF_METRIC)), None
        )
        aa_changes.append(f"{m.change_pct:+.1f}%" if m and m.change_pct is not None else "-")
    print(f"{'A/A':>8}  {'-':>7}        {' '.join(aa_changes)}  (noise: same kernel, no throttle)")
    reliable = smallest_reliable(args.slowdowns, trials)
    alarms = sum(len(t["aa"].regressions) for t in trials)
    judged = sum(len(t["aa"].metrics) + len(t["aa"].statuses) for t in trials)
    print(
        "smallest planted slowdown flagged reliably: "
        + (f"{reliable}%" if reliable is not None else "none of those tried")
    )
    print(
        f"A/A false alarms over plan {args.plan!r}: {alarms} of {judged} metrics+checks "
        f"in {len(trials)} trial(s)"
    )


if __name__ == "__main__":
    main()
