"""Options several commands share: --guest-root (harness.vm.guestroot) and --accel, which
every command that boots a VM takes, and the A/B's --reps and --runtime."""

from __future__ import annotations

import argparse

from harness.vm.guestroot import GuestRoot


def guest_root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--guest-root",
        choices=tuple(GuestRoot),
        default=None,
        help="what the VM guest sees as its root: host (the host's, read-only) or minimal (a "
        "cached Debian root holding only what the agent needs); default minimal when a "
        "kernel carries a +series= (and for backport), else host (docs/security.md)",
    )


def accel_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accel",
        choices=("auto", "kvm", "tcg"),
        default="auto",
        help="auto (default): KVM when a short probe boot works, else TCG",
    )


def ab_options(parser: argparse.ArgumentParser, default_reps: int, what: str = "") -> None:
    """--reps, --accel and --runtime of an A/B (`what` names it in --reps' help)."""
    parser.add_argument(
        "--reps",
        type=int,
        default=default_reps,
        help=f"{what}repetitions per side (default {default_reps})",
    )
    accel_option(parser)
    parser.add_argument("--runtime", type=int, help="override every fio job's runtime (seconds)")
