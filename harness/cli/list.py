"""`harness list [workloads|targets|checks|plans]`: the suite's names, one line each."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from harness.suite import plans

_LISTERS: dict[str, Callable[[], list[tuple[str, str]]]] = {
    "workloads": plans.list_workloads,
    "targets": plans.list_targets,
    "checks": plans.list_checks,
    "plans": plans.list_plans,
}


def format_listing(kinds: list[str]) -> str:
    """The text `harness list` prints: a header per kind, then `name  description` lines."""
    out = []
    for kind in kinds:
        rows = _LISTERS[kind]()
        width = max(len(name) for name, _ in rows)
        out.append(f"{kind}:")
        out.extend(f"  {name:<{width}}  {desc}" for name, desc in rows)
    return "\n".join(out)


def handler(ns: argparse.Namespace) -> int:
    kinds = [ns.what] if ns.what else list(_LISTERS)
    print(format_listing(kinds))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list workloads, targets, checks and plans")
    parser.add_argument("what", nargs="?", choices=list(_LISTERS), help="only this kind")
    parser.set_defaults(func=handler)
