"""`harness build SPEC`: build a kernel from source (or find it in the cache).

Prints the cache key and the artifact paths; exit 0 on success, 2 on bad input or a
failed build (the message names the build log).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from harness.kernel import buildspec

EPILOG = (
    buildspec.__doc__.split("\n", 1)[1]  # the grammar and examples, shown verbatim
    + "\nConfig fragments live in kconfigs/ (base is always applied first).\n"
)


@dataclass(frozen=True)
class BuildRequest:
    spec: buildspec.BuildSpec
    jobs: int
    rebuild: bool


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "build",
        help="build a kernel from a git tree or source package, optionally with a series",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "spec",
        help="git:REPO@REF[+series=...][+revert=...][+config=...] or src:debian:PACKAGE / src:DIR",
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME",
        help="extra config fragment (kconfigs/NAME.config or a path); repeatable",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=os.cpu_count() or 1,
        help="make -j (default: number of CPUs)",
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="drop this spec's cached artifacts first (the object dir is kept)",
    )
    parser.set_defaults(func=handler)


def to_request(ns: argparse.Namespace) -> BuildRequest:
    spec = buildspec.parse_build_spec(ns.spec).with_configs(tuple(ns.config))
    return BuildRequest(spec=spec, jobs=max(1, ns.jobs), rebuild=ns.rebuild)


def handler(ns: argparse.Namespace) -> int:
    request = to_request(ns)
    from harness.kernel import build  # imported late: `harness --help` stays fast

    if request.rebuild:
        build.remove_artifacts(build.build_inputs(request.spec).key)
    result = build.build(request.spec, request.jobs)
    durations = result.metadata.get("durations") or {}
    print(f"key:      {result.key}{'  (cache hit)' if result.cache_hit else ''}")
    print(f"release:  {result.release}")
    print(f"image:    {result.image}")
    print(f"modules:  {result.modules_dir or '-'}")
    print(f"config:   {result.config}")
    print(f"log:      {result.build_log}")
    print(f"metadata: {result.directory / 'metadata.json'}")
    if not result.cache_hit and isinstance(durations, dict):
        print("durations: " + ", ".join(f"{k}={v}" for k, v in durations.items()))
    return 0
