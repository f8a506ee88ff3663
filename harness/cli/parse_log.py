"""`harness parse-log FILE`: run the console splat detector over a saved log, print JSON.

Output: a JSON list of {kind, title, line, excerpt}. Exit 0 when the log is clean, 1 when
it holds splats, 2 when the file cannot be read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from harness.cli.exits import EXIT_FAIL, EXIT_PASS
from harness.errors import UserError
from harness.klog.splats import scan
from harness.results.model import Splat


@dataclass(frozen=True)
class ParseLogRequest:
    path: Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "parse-log",
        help="find kernel splats (panic, Oops, WARNING, hung task, ...) in a console log",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("file", type=Path, help="a saved console log (e.g. console.log)")
    parser.set_defaults(func=handler)


def handler(ns: argparse.Namespace) -> int:
    return parse_log(ParseLogRequest(path=ns.file))


def read_log_splats(path: Path) -> list[Splat]:
    """The splats in the log at `path`; UserError naming the path if it cannot be read."""
    try:
        # Consoles carry stray non-UTF-8 bytes; they must not hide a splat. Only \n ends a
        # line, so line numbers match grep -n even where a stray \r sits mid-line.
        with path.open(encoding="utf-8", errors="replace", newline="\n") as fh:
            return scan(fh)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(f"cannot read console log {path}: {reason}") from exc


def parse_log(request: ParseLogRequest, out: TextIO | None = None) -> int:
    """Print the splats of request.path as JSON to `out` (stdout); 0 if none, 1 if any."""
    out = out or sys.stdout
    splats = read_log_splats(request.path)
    json.dump([dataclasses.asdict(s) for s in splats], out, indent=2)
    out.write("\n")
    return EXIT_FAIL if splats else EXIT_PASS
