"""`harness bench boot`: how far the harness boot is from the physical floor."""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from harness.bench import BootFigures, floor_boot, milestones, write_boot_plan
from harness.errors import InfraError, UserError
from harness.kernel.spec import DEFAULT_KERNEL, resolve
from harness.pipeline import RunRequest, run_one
from harness.vm import accel as accel_mod


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmarks that print figures")
    p.add_argument("what", choices=("boot",), help="boot: harness boot vs bare QEMU floor")
    p.add_argument("--kernel", default=DEFAULT_KERNEL, metavar="SPEC")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    p.set_defaults(func=handle)


def measure(spec: str, reps: int, accel: str) -> tuple[BootFigures, str]:
    kernel = resolve(spec)
    if kernel.is_host:
        raise UserError("bench boot needs a kernel to boot, not 'host'")
    chosen = accel_mod.choose(accel, kernel.image)
    floors, harness_s, marks = [], [], {}
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        plan = write_boot_plan(Path(tmp))
        for rep in range(reps):
            floors.append(floor_boot(kernel, chosen.name))
            result = run_one(
                RunRequest(
                    kernel=spec, out_dir=Path(tmp) / f"r{rep}", plan=str(plan), accel=chosen.name
                ),
                kernel=kernel,
            )
            boot = result.steps[0]
            if boot.status != "pass":
                raise InfraError(f"harness boot failed: {boot.message} ({result.console_log})")
            harness_s.append(boot.duration_s)
            marks = milestones(Path(result.console_log).read_text(errors="replace"))
    return BootFigures(floors, harness_s, marks), chosen.name


def handle(ns: argparse.Namespace) -> int:
    if ns.reps < 1:
        raise UserError("--reps must be at least 1")
    figures, accel = measure(ns.kernel, ns.reps, ns.accel)
    med = statistics.median
    print(f"kernel {ns.kernel}, accel {accel.upper()}, {ns.reps} reps (medians)")
    print(
        f"  floor   (bare QEMU + busybox initramfs -> init): {med(figures.floor_s):6.1f} s  "
        f"{[round(x, 1) for x in figures.floor_s]}"
    )
    print(
        f"  harness (vng start -> agent's first step):       {med(figures.harness_s):6.1f} s  "
        f"{[round(x, 1) for x in figures.harness_s]}"
    )
    print(f"  ratio harness/floor: {figures.ratio:.2f} (goal <= 2)")
    if figures.milestones:
        print("  where the last boot spent its time (guest clock, s since kernel start):")
        for name, stamp in figures.milestones.items():
            print(f"    {name:<11} {stamp:6.1f}")
    return 0
