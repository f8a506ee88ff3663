"""`harness bench boot`: how far the harness boot is from the physical floor."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from harness.cli.options import accel_option, guest_root_option
from harness.errors import UserError
from harness.kernel.spec import DEFAULT_KERNEL
from harness.paths import default_out_root
from harness.results.files import ensure_writable_dir
from harness.vm.guestroot import parse
from harness.workflows.bench.boot import BootFigures, measure


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmarks that print figures")
    p.add_argument("what", choices=("boot",), help="boot: harness boot vs bare QEMU floor")
    p.add_argument(
        "--kernel",
        action="append",
        metavar="SPEC",
        help=f"kernel to boot, repeatable (default {DEFAULT_KERNEL})",
    )
    p.add_argument("--reps", type=int, default=3, help="boots of each kind per kernel (default 3)")
    accel_option(p)
    p.add_argument("--out", type=Path, help="where the boots' logs go (default out/bench-TIME)")
    guest_root_option(p)
    p.set_defaults(func=handle)


def handle(ns: argparse.Namespace) -> int:
    if ns.reps < 1:
        raise UserError("--reps must be at least 1")
    out = ensure_writable_dir(ns.out or default_out_root() / time.strftime("bench-%Y%m%d-%H%M%S"))
    for index, spec in enumerate(ns.kernel or [DEFAULT_KERNEL]):
        root = parse(ns.guest_root, [spec], "bench")
        figures, accel = measure(spec, ns.reps, ns.accel, out / f"k{index}", root)
        print(f"guest root: {root}")
        print_figures(spec, accel, ns.reps, figures)
    print(f"logs: {out}")
    return 0


def print_figures(spec: str, accel: str, reps: int, figures: BootFigures) -> None:
    med = statistics.median
    print(f"kernel {spec}, accel {accel.upper()}, {reps} reps (medians)")
    print(
        f"  floor   (bare QEMU + busybox -> init):           {med(figures.floor_s):6.1f} s  "
        f"{[round(x, 1) for x in figures.floor_s]}"
    )
    print(
        f"  harness (vng start -> first step begins):        {med(figures.harness_s):6.1f} s  "
        f"{[round(x, 1) for x in figures.harness_s]}"
    )
    print(f"  ratio harness/floor: {figures.ratio:.2f} (goal <= 2)")
    floor, harness = figures.floor_stage_medians(), figures.stage_medians()
    print(f"    {'stage':<14} {'floor':>7} {'harness':>8}")
    for name, seconds in harness.items():
        shown = f"{floor[name]:6.1f} s" if name in floor else f"{'-':>8}"
        print(f"    {name:<14} {shown} {seconds:6.1f} s")
    for why in figures.rebooted:
        print(f"  one boot failed and was booted again (not timed): {why}")
    if figures.milestones:
        print("  milestones of the last boot (guest clock, s since kernel start):")
        for name, stamp in figures.milestones.items():
            print(f"    {name:<11} {stamp:6.1f}")
