"""`harness shard`: print the job matrix that cuts a plan into shards for a CI engine."""

from __future__ import annotations

import argparse

from harness.cli.exits import EXIT_PASS
from harness.kernel.spec import DEFAULT_KERNEL
from harness.run import shard


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "shard", help="print a CI job matrix: kernels x shards of a plan (see harness merge)"
    )
    p.add_argument("--plan", default="quick", help="plan name or JSON file (default: quick)")
    p.add_argument(
        "--kernel",
        action="append",
        default=[],
        metavar="SPEC",
        help=f"kernel spec, repeatable; default {DEFAULT_KERNEL}",
    )
    p.add_argument("--topology", default="default", help="topology name or JSON file")
    p.add_argument("--shards", type=int, required=True, metavar="N", help="shards per kernel")
    p.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="SPEC",
        help="a peer suite as in harness run --suite, repeatable: its tests are cut one by one",
    )
    p.add_argument(
        "--format",
        default="json",
        choices=shard.FORMATS,
        help="github: one-line {include: [...]} for fromJSON; gitlab: a child pipeline "
        "with parallel:matrix; json: the jobs (default)",
    )
    p.set_defaults(func=handle)


def handle(ns: argparse.Namespace) -> int:
    jobs = shard.matrix(
        ns.plan, ns.kernel or [DEFAULT_KERNEL], ns.shards, ns.topology, tuple(ns.suite)
    )
    print(shard.render(jobs, ns.format))
    return EXIT_PASS
