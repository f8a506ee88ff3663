"""Command line: the only place that prints summaries and turns outcomes into exit codes.

Exit codes (harness.cli.exits): 0 everything passed, 1 a test failed, 2 infrastructure or
usage error. Each command lives in harness/cli/<command>.py: it turns the argparse
Namespace into frozen request dataclasses at once and returns an exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from harness import signals
from harness.cli import (
    ab,
    bench,
    bisect,
    build,
    export,
    merge,
    parse_log,
    progress,
    report,
    run,
    shard,
)
from harness.cli import backport as backport_cmd
from harness.cli import list as list_cmd
from harness.cli import qemu as qemu_cmd
from harness.cli.exits import EXIT_INFRA
from harness.errors import HarnessError, UserError
from harness.results.files import describe_os_error

# Every command module exposes add_parser(subparsers), which sets `func` on its parser.
COMMANDS = (run, build, list_cmd, ab, report, bench, parse_log, bisect, shard, merge, export)
COMMANDS += (backport_cmd, qemu_cmd)


DESCRIPTION = """\
Test Linux block-layer kernels and patch series in QEMU: fetch or build a kernel, boot it
with emulated NVMe and virtio-scsi disks, run fio and data-safety checks (loop, files,
device-mapper) in the guest, and write results.json, JUnit XML and a report with a verdict.

First run (Debian's 6.12 kernel, the quick plan; results under out/):
  harness run
Then try: harness run --plan loop, harness ab --help, harness list."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line and exits 2 (not its default usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress (live bars on a terminal, a line every 30 s otherwise), warnings only",
    )
    subparsers = parser.add_subparsers(dest="command", parser_class=_Parser)
    for module in COMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv, run the command, return the exit code (never raises HarnessError).

    SIGINT, SIGTERM and SIGHUP stop the command cleanly (harness.signals): results so far
    are written and the exit code is 2, like any run that could not tell."""
    with signals.handling():
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    try:
        parser = build_parser()
        if not argv:
            argv = ["run"]  # the default job
        ns = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if ns.verbose else logging.WARNING if ns.quiet else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            datefmt="%H:%M:%S",
            handlers=[progress.CurrentStderrHandler()],
        )
        if not getattr(ns, "func", None):
            parser.print_help()
            return EXIT_INFRA
        with progress.shown(quiet=ns.quiet):
            return int(ns.func(ns))
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_INFRA
    except KeyboardInterrupt as exc:
        print(
            f"harness: {signals.reason_of(exc)}: children stopped, results so far written",
            file=sys.stderr,
        )
        return EXIT_INFRA
    except OSError as exc:  # the host failed under us (a full disk mid-log): one line, no trace
        print(f"harness: error: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_INFRA
