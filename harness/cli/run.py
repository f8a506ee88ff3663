"""`harness run`: run a plan on one or more kernels; writes junit.xml, results.json,
report.md and report.html."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

from harness.cli.exits import EXIT_FAIL, EXIT_INFRA, EXIT_PASS
from harness.cli.hosts import host_options, remote_pool
from harness.cli.options import accel_option, guest_root_option
from harness.errors import InfraError, UserError
from harness.kernel.resolve import resolve_kernel
from harness.kernel.spec import DEFAULT_KERNEL, FORMS
from harness.proc import RUN_TOOLS, VM_TOOLS, require_tools
from harness.report.junit import write_junit
from harness.report.markdown import write_markdown
from harness.report.run_html import write_html
from harness.report.versus_raw import shares, summary_lines
from harness.results import outlock
from harness.results.files import ensure_writable_dir
from harness.results.model import RunResult
from harness.results.store import save_runs
from harness.run.engine import executor_for, require
from harness.run.executor import RunInterrupted
from harness.run.request import MEASURES, RunRequest
from harness.run.shard import write_shard_record
from harness.suite.peer import parse_suite
from harness.suite.targets import raw_devices
from harness.verdict import classify, worst
from harness.vm.console import Timeouts
from harness.vm.guestroot import parse
from harness.vm.launch import find_vng


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="run a plan on kernels (the default job with no args)")
    p.add_argument(
        "--kernel",
        action="append",
        default=[],
        metavar="SPEC",
        help=f"kernel spec, repeatable ({FORMS}); default {DEFAULT_KERNEL}",
    )
    p.add_argument("--plan", help="plan name or JSON file (default: quick; none with --suite)")
    p.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="SPEC",
        help="a peer suite run after the plan's steps, repeatable: blktests:PATH@loop, "
        "fstests:PATH@ext4/032,generic/001[:fstype=xfs][:timeout=S][:budget=S][:expunge=F]; "
        "@harness-quick is the harness's curated list for TCG (docs/peer-suites.md)",
    )
    p.add_argument("--topology", default="default", help="topology name or JSON file")
    p.add_argument("--out", type=Path, help="output directory (default: out/run-TIMESTAMP)")
    accel_option(p)
    p.add_argument("--scratch", type=Path, help="host mode: the directory the agent may use")
    p.add_argument("--runtime", type=int, metavar="S", help="override every fio runtime")
    measure_option(p)
    guest_root_option(p)
    p.add_argument(
        "--append",
        action="append",
        default=[],
        metavar="WORD",
        help="extra kernel command-line word, repeatable",
    )
    p.add_argument("--boot-timeout", type=float, default=300.0, metavar="S")
    p.add_argument("--silence-timeout", type=float, default=600.0, metavar="S")
    p.add_argument(
        "--step-grace",
        type=float,
        default=60.0,
        metavar="S",
        help="added to each step's own timeout before the VM is stopped",
    )
    p.add_argument("--keep-images", action="store_true", help="keep the disks' backing images")
    p.add_argument(
        "--shard", metavar="I/N", help="run only shard I of N of the plan (see harness shard)"
    )
    remote_options(p)
    p.add_argument(
        "--bisect-exit",
        action="store_true",
        help="exit as git bisect run expects: 0 good, 1 bad, 125 skip (not a kernel verdict)",
    )
    p.set_defaults(func=handle)


def measure_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--measure",
        choices=MEASURES,
        default="wall",
        help="wall (default): wall-clock figures; cost: QEMU instruction counting (-icount), "
        "figures independent of host load, TCG only and several times slower",
    )


def remote_options(p: argparse.ArgumentParser) -> None:
    """--host and its SSH options (harness.run.remote), and --request (what a host is sent)."""
    host_options(p)
    p.add_argument(
        "--request",
        type=Path,
        metavar="FILE",
        help="run one request.json (RunRequest.to_dict; what remote hosts get)",
    )


def request_from_file(path: Path, out: Path | None) -> RunRequest:
    try:
        req = RunRequest.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise UserError(f"--request {path}: not a request.json ({exc})") from exc
    out = out or req.out_dir.parent
    return replace(req, out_dir=out.resolve() / f"0-{slug(req.kernel)}")


SLUG_MAX = 48  # the run directory is on the guest's kernel command line (2048 bytes) 3 times


def slug(spec: str) -> str:
    """A run directory name from a kernel spec: its safe characters, and when that is long
    its start and end around a hash of the whole (series paths make specs long)."""
    name = re.sub(r"[^A-Za-z0-9.+-]+", "_", spec).strip("_") or "kernel"
    if len(name) <= SLUG_MAX:
        return name
    digest = hashlib.sha256(spec.encode()).hexdigest()[:6]
    return f"{name[:20]}-{digest}-{name[-20:]}"


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'2/4' -> (2, 4); None stays None; anything else is a one-line usage error."""
    if text is None:
        return None
    index, slash, count = text.partition("/")
    if not (slash and index.isdigit() and count.isdigit()) or not 1 <= int(index) <= int(count):
        raise UserError(f"--shard {text!r}: use I/N with 1 <= I <= N, e.g. --shard 1/2")
    return int(index), int(count)


def requests_from(ns: argparse.Namespace) -> list[RunRequest]:
    """Namespace -> frozen RunRequests (one per kernel); nothing below sees the Namespace."""
    if getattr(ns, "request", None):
        return [request_from_file(ns.request, ns.out)]
    kernels = ns.kernel or [DEFAULT_KERNEL]
    out = ns.out or Path("out") / time.strftime("run-%Y%m%d-%H%M%S")
    if ns.runtime is not None and ns.runtime <= 0:
        raise UserError("--runtime must be a positive number of seconds")
    if "host" in kernels and ns.scratch is None:
        raise UserError("--kernel host needs --scratch DIR (the only place the agent may write)")
    for text in ns.suite:
        parse_suite(text)  # a usage error now, not after the kernel is resolved
    guest_root = parse(ns.guest_root, kernels, "run")
    timeouts = Timeouts(
        boot_s=ns.boot_timeout, silence_s=ns.silence_timeout, step_grace_s=ns.step_grace
    )
    return [
        RunRequest(
            kernel=k,
            out_dir=out.resolve() / f"{i}-{slug(k)}",
            topology=ns.topology,
            plan=ns.plan or ("none" if ns.suite else "quick"),
            accel=ns.accel,
            append=tuple(ns.append),
            runtime_s=ns.runtime,
            timeouts=timeouts,
            scratch=ns.scratch,
            keep_images=ns.keep_images,
            shard=parse_shard(ns.shard),
            measure=ns.measure,
            suites=tuple(ns.suite),
            guest_root=guest_root,
        )
        for i, k in enumerate(kernels)
    ]


def exit_code(runs: list[RunResult]) -> int:
    """1 if the kernel or a test failed in any run (a verdict outranks a hiccup elsewhere),
    2 if a run could not tell (infrastructure, emulator artefact), else 0."""
    verdict = worst(classify(r) for r in runs)
    if verdict.failed:
        return EXIT_FAIL
    return EXIT_PASS if verdict.judged else EXIT_INFRA


def raw_under(runs: list[RunResult]) -> dict[str, str]:
    """{target: the raw target of the disk under it} for every target the runs measured."""
    return raw_devices({s.target for r in runs for s in r.steps if s.target})


def write_outputs(out: Path, runs: list[RunResult]) -> None:
    """results.json, junit.xml, report.md and report.html; each is tried even when one
    fails (a full disk may still take the smaller ones), then the first failure is raised."""
    out.mkdir(parents=True, exist_ok=True)
    first: InfraError | None = None
    raw_of = raw_under(runs)
    for write, name in (
        (save_runs, "results.json"),
        (write_junit, "junit.xml"),
        (write_markdown, "report.md"),
        (partial(write_html, raw_of=raw_of), "report.html"),
    ):
        try:
            write(out / name, runs)
        except InfraError as exc:
            first = first or exc
    if first is not None:
        raise first


def preflight(kernels: list[str]) -> None:
    """The host tools the runs need, checked before anything is built or booted."""
    if all(k == "host" for k in kernels):
        require_tools(RUN_TOOLS)
    else:
        require_tools(VM_TOOLS)
        find_vng()


def run_summary(run: RunResult) -> list[str]:
    """What the user reads about one run: status and counts, why it stopped or failed, and
    how each target compared with the raw device under it."""
    counts = {
        s: sum(1 for x in run.steps if x.status == s)
        for s in ("pass", "fail", "error", "skip", "xfail")
    }
    status = "PASS" if run.passed else "FAIL"
    lines = [
        f"{status} {run.kernel.spec} ({run.kernel.release}) on {run.topology} under "
        f"{run.environment.accel.upper()}"
        f"{' (COST figures)' if run.environment.measure == 'cost' else ''}: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    ]
    if run.infra_error:
        lines.append(f"  stopped: {run.infra_error}; console: {run.console_log}")
    verdict = classify(run)
    if verdict.cls != "pass":  # harness.verdict: the class every exit code reads
        lines.append(f"  verdict: {verdict.cls}: {verdict.summary}")
    for artefact in verdict.artefacts:
        lines.append(
            f"  emulator artefact retried: {artefact['summary']}; "
            f"console: {artefact['console_log']}"
        )
    lines += [f"  {step.status}: {step.id}: {step.message}" for step in run.steps if step.failed]
    lines += [f"  {line}" for line in summary_lines(shares(run, raw_under([run])))]
    return lines


def handle(ns: argparse.Namespace) -> int:
    if getattr(ns, "bisect_exit", False):
        from harness.cli.bisect import answer_git_bisect

        return answer_git_bisect(lambda: _handle(ns))
    return _handle(ns)


def _handle(ns: argparse.Namespace) -> int:
    requests = requests_from(ns)
    out = requests[0].out_dir.parent
    ensure_writable_dir(out)
    # The lock comes first: nothing (shard.json included) is written into a directory
    # another run is writing, and a second run is refused before it builds anything.
    with outlock.hold(out):
        return _run_locked(ns, requests, out)


def _run_locked(ns: argparse.Namespace, requests: list[RunRequest], out: Path) -> int:
    preflight([req.kernel for req in requests])
    # Every kernel is resolved before anything boots: a conflict or a failed build stops
    # the command here, with its message, instead of in the middle of a run.
    kernels = [require(resolve_kernel(req.kernel)) for req in requests]
    write_shard_record(out, requests, kernels)  # what `harness merge` reads
    runs: list[RunResult] = []
    with remote_pool(ns) as remote:
        try:
            for req, kernel in zip(requests, kernels, strict=True):
                runs.append(executor_for(kernel, remote).run(req, kernel))
                write_outputs(out, runs)  # after every kernel: a later crash loses nothing
        except RunInterrupted as exc:  # harness.signals: keep the run it cut short
            runs.append(exc.result)
            raise
        finally:
            if runs:
                write_outputs(out, runs)
    for run in runs:
        print("\n".join(run_summary(run)))
    print(
        f"JUnit: {out / 'junit.xml'}\nresults: {out / 'results.json'}\n"
        f"report: {out / 'report.html'} (and report.md)\nlogs: {out}/*/console.log"
    )
    return exit_code(runs)
