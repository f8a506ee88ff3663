"""Options several commands share: --guest-root (harness.vm.guestroot), which every command
that boots a VM takes."""

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
