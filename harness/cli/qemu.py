"""`harness qemu [show|install|remove]`: which QEMU boots the guests, and Debian's newer one
(bookworm-backports) unpacked into the cache or forgotten again (harness.run.qemu_install)."""

from __future__ import annotations

import argparse

from harness.run import qemu_install
from harness.vm import qemu


def handler(ns: argparse.Namespace) -> int:
    if ns.action == "install":
        print(f"installed: {qemu_install.install()} ({qemu.installed_launcher()})")
    elif ns.action == "remove":
        qemu_install.remove()
    chosen = qemu.binary()
    print(f"guests boot with: {qemu_install.version_of(chosen)} ({chosen})")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "qemu",
        help="show the QEMU guests boot with; install Debian's backports QEMU into the cache",
        description=f"{__doc__} ${qemu.QEMU_ENV}=PATH (or 'system') overrides the choice.",
    )
    parser.add_argument("action", nargs="?", default="show", choices=("show", "install", "remove"))
    parser.set_defaults(func=handler)
