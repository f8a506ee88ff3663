"""Benchmark: the smallest planted kernel slowdown the A/B verdict catches, and A/A alarms.

    .venv/bin/python benchmarks/bench_ab.py [--measure wall,cost] [--reps 3]
        [--slowdowns 50,25,10] [--trials 1] [--plan FILE]

The planted slowdown is a real change in the kernel's loop I/O path: the lean 6.12 build
plus tests/data/series/slowdown.mbox, whose loop.harness_spin_us=N busy-waits N us in
every request loop's worker handles (built incrementally, ~20 s); in cost mode its
loop.harness_spin_loops=N runs an empty loop N times instead (udelay reads the TSC, which
under instruction counting does not cost what it waits; an empty loop costs a fixed
number of instructions). Every side boots that
same image; only the command line differs, so nothing else can explain a difference.
The default plan (tests/data/ab/bench-plan.json) puts its loop rows on a tmpfs file: no
emulated-disk wait, so under instruction counting their figures are pure CPU cost (a wait
on the NVMe costs the guest until its next timer there, an artefact); raw NVMe rows are
the control that must not move.

Per measure mode (wall: wall-clock figures; cost: QEMU instruction counting):
1. Calibrate: one boot without spin measures the reference loop row's IOPS; the per-request
   time t = 1/IOPS gives, for a planted IOPS drop s, a first spin t*s/(1-s) (the loop worker
   serialises requests, so the spin adds to each one's service time; a loop iteration is
   first taken to cost 2.5 ns). In cost mode each planted slowdown is then calibrated at its
   own size: a boot with the spin measures the drop; off by more than 15% of the target, the
   spin is scaled by (time to add) / (time it added), then moved along the secant of the
   last two boots, up to 4 boots. Under instruction counting a spinning request costs
   ~1.4-2 us more than its loop (553, 262 and 175 loops on every request gave -19.0, -14.3,
   -13.1%: no per-request spin planted 10%), so in cost mode a small slowdown spins
   N times longer on one request in N (`loop.harness_spin_every=N`, N chosen so that each
   spin adds >= 10 us). In wall mode the reference is the median of 3 boots and each spin is
   the model's, measured once (a single wall-mode boot moves +-20% with the host).
2. Each trial runs one interleaved schedule, every repetition: the base (spin 0), an
   identical A/A side, and one side per planted slowdown.
3. Prints per slowdown the measured change of the reference metric, whether it was flagged,
   how many loop rows' IOPS were flagged and how many raw rows were (should be 0); the
   smallest slowdown flagged in every trial; and the A/A false alarms (all metrics, checks).

Long: per mode, the reference boot(s), up to 4 calibration boots per slowdown (cost; 1 in
wall), then (2 + len(slowdowns)) x reps x trials. Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import statistics
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.paths import PROJECT_ROOT  # noqa: E402
from harness.results.compare import Comparison, MetricComparison, compare  # noqa: E402
from harness.workflows.ab import workflow as ab  # noqa: E402

SERIES = PROJECT_ROOT / "tests" / "data" / "series" / "slowdown.mbox"
KERNEL = f"src:debian:linux-source-6.12+series={SERIES}"
PLAN = PROJECT_ROOT / "tests" / "data" / "ab" / "bench-plan.json"
REF_STEP = "fio/loop-dio-on-tmpfs/randread-4k"
REF_METRIC = "read_iops"
# the slowdown knob per measure mode: (kernel parameter, its unit)
KNOBS = {"wall": ("loop.harness_spin_us", "us"), "cost": ("loop.harness_spin_loops", "loops")}


def spin_for(ref_iops: float, pct: int, ns_per_unit: float = 1000.0, every: int = 1) -> int:
    """Spin (in the knob's units: 1000 ns per us, or ns per loop) that lowers a serial
    worker's IOPS by pct percent, when one request in `every` spins."""
    return max(1, round(added_ns(ref_iops, pct) * every / ns_per_unit))


def added_ns(ref_iops: float, pct: int) -> float:
    """Per-request time a pct percent IOPS drop adds to a serial worker's requests."""
    return 1e9 / ref_iops * pct / (100 - pct)


# first guess of what one knob unit costs (ns): a microsecond, or one empty-loop iteration
# (2.51 ns measured here in cost mode); calibration corrects it at every planted size
UNIT_NS = {"wall": 1000.0, "cost": 2.5}
# Boots per planted size (cost mode refines; in wall mode one boot moves +-20% with the
# host, which no refinement can chase: the model's spin is measured once, for the record)
# and for the reference (wall mode: the median of 3, a single boot was 20% low once).
CALIBRATION_BOOTS = {"wall": 1, "cost": 4}
REF_BOOTS = {"wall": 3, "cost": 1}
TOLERANCE = 0.15  # of the planted drop
# Under instruction counting a spinning request costs ~1.4-2 us more than its loop's
# instructions, so in cost mode a small slowdown spins on one request in `every`, each
# spin adding at least this much (the fixed part then weighs <~20% of what is planted).
SPUN_NS = 10_000.0


@dataclasses.dataclass(frozen=True)
class Plant:
    """A planted slowdown: `spin` knob units on one request in `every`."""

    spin: int
    every: int = 1

    def append(self, measure: str) -> tuple[str, ...]:
        knob = KNOBS[measure][0]
        every = (f"loop.harness_spin_every={self.every}",) if self.every > 1 else ()
        return (f"{knob}={self.spin}", *every)

    def __str__(self) -> str:
        return f"{self.spin}" + (f" every {self.every}" if self.every > 1 else "")


def every_for(measure: str, ref_iops: float, pct: int) -> int:
    if measure != "cost":
        return 1  # harness_spin_every thins the empty loop only; udelay is per request
    return max(1, math.ceil(SPUN_NS / added_ns(ref_iops, pct)))


def drop_pct(ref_iops: float, iops: float) -> float:
    return 100.0 * (1.0 - iops / ref_iops)


def refine(ref_iops: float, pct: int, tried: list[tuple[int, float]]) -> int:
    """The next spin: scaled by (time to add) / (time it added) after one boot; after two,
    the secant through the last two (spin, added time) points, which also finds the fixed
    part a spinning request costs beyond its loop."""
    target = added_ns(ref_iops, pct)
    points = [(spin, 1e9 / iops - 1e9 / ref_iops) for spin, iops in tried]
    spin, added = points[-1]
    if len(points) >= 2 and points[-1][1] != points[-2][1]:
        (s0, a0), (s1, a1) = points[-2], points[-1]
        guess = s1 + (target - a1) * (s1 - s0) / (a1 - a0)
        return max(1, round(guess)) if guess > 0 else max(1, spin // 2)
    return spin * 2 if added <= 0 else max(1, round(spin * target / added))


def calibrate_spins(args, measure: str, run_one, ref: float) -> dict[int, Plant]:  # noqa: ANN001
    """Per planted slowdown, the plant that measured within TOLERANCE of it (or the last)."""
    unit = KNOBS[measure][1]
    plants = {}
    for pct in args.slowdowns:
        every = every_for(measure, ref, pct)
        plant = Plant(spin_for(ref, pct, UNIT_NS[measure], every), every)
        boots = CALIBRATION_BOOTS[measure]
        tried = []
        for boot in range(boots):
            name = f"calibrate-{pct}-{boot}"
            iops = calibrate(args, measure, run_one, plant.append(measure), name)
            tried.append((plant.spin, iops))
            drop = drop_pct(ref, iops)
            print(
                f"[{measure}] planting {pct}%: {plant} {unit} -> {REF_METRIC} {iops:.0f} "
                f"({-drop:+.1f}%)",
                flush=True,
            )
            if abs(drop - pct) <= TOLERANCE * pct:
                break
            if boot + 1 < boots:
                plant = Plant(refine(ref, pct, tried), every)
        plants[pct] = plant
    return plants


def reference(run) -> float | None:  # noqa: ANN001 - RunResult
    for step in run.steps:
        if step.id == REF_STEP and step.status == "pass":
            return step.metrics.get(REF_METRIC)
    return None


def request(args: argparse.Namespace, measure: str, out: Path, reps: int) -> ab.AbRequest:
    base = ab.Side(ab.BASE, args.kernel)
    return ab.AbRequest(
        base,
        ab.Side(ab.CANDIDATE, args.kernel),
        out,
        plan=args.plan,
        reps=reps,
        accel="tcg",
        runtime_s=args.runtime,
        measure=measure,
    )


def calibrate(args: argparse.Namespace, measure: str, run_one, append=(), name="calibrate"):  # noqa: ANN001, ANN201
    req = request(args, measure, args.out / measure / name, 1)
    side = dataclasses.replace(req.base, append=tuple(append))
    result = run_one(ab.run_request(req, ab.Slot(0, side)))
    value = reference(result)
    if not value:
        sys.exit(f"calibration run has no {REF_STEP} {REF_METRIC}: {result.infra_error}")
    return float(value)


def iops_rows(c: Comparison, prefix: str) -> list[MetricComparison]:
    return [
        m
        for m in c.metrics
        if m.family in ("primary", "descriptive")
        and m.metric.endswith("_iops")
        and prefix in m.step_id
    ]


def one_trial(args, measure: str, run_one, spins: dict[int, Plant], trial: int) -> dict:  # noqa: ANN001
    out = args.out / measure / f"trial{trial}"
    req = request(args, measure, out, args.reps)
    sides = [req.base, ab.Side("aa", args.kernel)]
    sides += [ab.Side(f"slow{p}", args.kernel, append=s.append(measure)) for p, s in spins.items()]

    def progress(done):  # noqa: ANN001, ANN202
        slot, result = done[-1]
        print(
            f"  {measure} trial {trial} {slot.name}: ref {reference(result)} "
            f"{result.infra_error or ''}",
            flush=True,
        )

    done = ab.run_interleaved(
        ab.schedule(sides, args.reps),
        lambda slot: ab.run_request(req, slot),
        run_one,
        after_each=progress,
    )
    base_runs = ab.runs_of(done, ab.BASE)
    result = {"aa": compare(base_runs, ab.runs_of(done, "aa")), "slow": {}}
    (out / "aa").mkdir(parents=True, exist_ok=True)
    ab.save_pooled(out / "aa", req, result["aa"])  # `harness report` regenerates these
    for pct, spin in spins.items():
        c = compare(base_runs, ab.runs_of(done, f"slow{pct}"))
        cand = ab.Side(ab.CANDIDATE, args.kernel, append=spin.append(measure))
        (out / f"slow{pct}").mkdir(parents=True, exist_ok=True)
        ab.save_pooled(out / f"slow{pct}", dataclasses.replace(req, candidate=cand), c)
        result["slow"][pct] = c
    return result


@contextlib.contextmanager
def host_load(n: int) -> Iterator[None]:
    """n busy processes on the host while the trials run (the load wall mode suffers)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def ref_metric(c: Comparison) -> MetricComparison | None:
    return next((m for m in c.metrics if (m.step_id, m.metric) == (REF_STEP, REF_METRIC)), None)


def flagged(c: Comparison) -> bool:
    m = ref_metric(c)
    return m is not None and m.verdict == "regression"


def smallest_reliable(slowdowns: list[int], trials: list[dict]) -> int | None:
    """The smallest slowdown flagged in every trial, with every larger one flagged too."""
    reliable = None
    for pct in slowdowns:  # largest first
        if not all(flagged(t["slow"][pct]) for t in trials):
            break
        reliable = pct
    return reliable


def _row_counts(c: Comparison) -> str:
    loop, raw = iops_rows(c, "/loop-"), iops_rows(c, "/raw-")
    hit = sum(m.verdict == "regression" for m in loop)
    moved = sum(m.verdict in ("regression", "improvement") for m in raw)
    changes = ", ".join(f"{m.change_pct:+.1f}%" for m in raw if m.change_pct is not None)
    unjudged = raw and all(m.verdict == "descriptive" for m in raw)
    why = " - descriptive: under icount a disk wait is no cost figure" if unjudged else ""
    return (
        f"loop IOPS rows flagged {hit}/{len(loop)}, raw rows moved {moved}/{len(raw)} "
        f"({changes}{why})"
    )


def report(args: argparse.Namespace, measure: str, spins: dict[int, Plant], trials: list) -> None:
    print(f"\n[{measure}] reps={args.reps} trials={len(trials)} reference {REF_STEP}")
    for pct, spin in spins.items():
        for t in trials:
            c = t["slow"][pct]
            m = ref_metric(c)
            eff = (
                f"{m.effect.estimate:+.1f}% [{m.effect.low:+.1f}, {m.effect.high:+.1f}]"
                if (m and m.effect)
                else "-"
            )
            print(
                f"  planted {pct:>3}% (spin {spin!s:>4} {KNOBS[measure][1]}): measured {eff}, "
                f"{'FLAGGED' if flagged(c) else 'missed'}; {_row_counts(c)}"
            )
    reliable = smallest_reliable(list(spins), trials)
    alarms = sum(len(t["aa"].regressions) + len(t["aa"].improvements) for t in trials)
    judged = sum(len(t["aa"].metrics) + len(t["aa"].statuses) for t in trials)
    print(
        f"  smallest planted slowdown flagged reliably: "
        f"{f'{reliable}%' if reliable is not None else 'none of those tried'}"
    )
    load = f"; {args.load} busy host process(es) during the trials" if args.load else ""
    print(
        f"  A/A false alarms: {alarms} of {judged} metrics+checks in {len(trials)} trial(s){load}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernel", default=KERNEL, help="a kernel with loop.harness_spin_us")
    p.add_argument("--plan", default=str(PLAN))
    p.add_argument("--measure", default="wall,cost", help="comma-separated: wall, cost")
    p.add_argument("--reps", type=int, default=ab.DEFAULT_REPS)
    p.add_argument(
        "--slowdowns",
        default="50,25,10",
        type=lambda s: sorted({int(x) for x in s.split(",")}, reverse=True),
    )
    p.add_argument("--trials", type=int, default=1)
    p.add_argument("--runtime", type=int, default=None)
    p.add_argument("--ref-iops", type=float, help="skip calibration, use this reference")
    p.add_argument("--load", type=int, default=0, help="busy host processes during trials")
    default_out = PROJECT_ROOT / "out" / f"bench-ab-{datetime.now():%Y%m%d-%H%M%S}"
    p.add_argument("--out", type=Path, default=default_out)
    args = p.parse_args()
    from harness.kernel.resolve import resolve_kernel
    from harness.run.engine import executor_for, require

    kernel = require(resolve_kernel(args.kernel))

    def run_one(req):  # noqa: ANN001, ANN202
        return executor_for(kernel).run(req, kernel)

    for measure in args.measure.split(","):
        refs = [
            calibrate(args, measure, run_one, name=f"calibrate-ref{i}")
            for i in range(0 if args.ref_iops else REF_BOOTS[measure])
        ]
        ref = args.ref_iops or statistics.median(refs)
        spins = calibrate_spins(args, measure, run_one, ref)
        print(
            f"[{measure}] reference {REF_METRIC} {ref:.0f}: spins {spins} ({KNOBS[measure][1]})",
            flush=True,
        )
        with host_load(args.load):
            trials = [one_trial(args, measure, run_one, spins, t) for t in range(args.trials)]
        report(args, measure, spins, trials)


if __name__ == "__main__":
    main()
