"""The guest agent: run a plan.json, one record per step, markers on the console.

    python3 guest/agent.py --plan DIR/plan.json --results DIR

Implements docs/CONTRACT.md. Stdlib only: it runs inside the VM with the host's root
filesystem (virtme-ng) or directly on a host. Exit code: 0 every step passed, skipped or
failed as expected; 1 a step failed or errored; 2 the agent itself could not run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import traceback

if __package__ in (None, ""):
    # Run as a script: this directory is the `guest` package, whatever it is called on disk
    # (guest/ in a checkout, harness_guest/ in an installed wheel).
    import importlib.util

    _here = os.path.dirname(os.path.abspath(__file__))
    _spec = importlib.util.spec_from_file_location(
        "guest", os.path.join(_here, "__init__.py"), submodule_search_locations=[_here]
    )
    assert _spec is not None and _spec.loader is not None
    sys.modules["guest"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["guest"])

from guest import disks, runner, sh  # noqa: E402
from guest.api import Context  # noqa: E402
from guest.protocol import emit  # noqa: E402

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("guest.agent")
TOOLS = ("fio", "losetup", "mkfs.xfs", "mkfs.ext4", "dmsetup", "fstrim", "blkdiscard", "cp")


class Terminated(BaseException):
    """SIGTERM arrived: unwind so that teardown runs, then exit 2."""


def marker(event: dict[str, Any]) -> None:
    """Print one console marker line; flushed so the host sees it at once."""
    emit(event)


def agent_info(ctx: Context, problems: dict[str, str]) -> dict[str, Any]:
    # In a VM the guest runs the host's own fio (the root is the host's, over 9p) and the
    # host records its version; exec'ing fio here was fio's cold start (64 shared libraries
    # over 9p, 1-2 s under TCG) before the first step.
    fio_version = ""
    if ctx.mode != "vm" and sh.which("fio"):
        fio_version = sh.run(["fio", "--version"], check=False)[1].strip()
    return {
        "kernel_release": os.uname().release,
        "python": sys.version.split()[0],
        "fio_version": fio_version,
        "mode": ctx.mode,
        "workdir": ctx.workdir,
        "disks": ctx.disks,
        "disk_queues": {name: disks.hw_queues(path) for name, path in ctx.disks.items()},
        "disk_problems": problems,
        "tools": {t: sh.which(t) for t in TOOLS},
        "nproc": os.cpu_count(),
        "root_mount": root_mount(),
    }


def root_mount(mounts: str = "/proc/mounts") -> str:
    """How / is mounted ("9p ro,...,cache=..."): whether the guest caches the host's root."""
    text = sh.read_text(mounts, "") or ""
    rows = [line.split() for line in text.splitlines()]
    last = [r for r in rows if len(r) >= 4 and r[1] == "/"][-1:]  # the last mount on / wins
    return f"{last[0][2]} {last[0][3]}" if last else ""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def load_plan(path: str) -> dict[str, Any]:
    with open(path) as fh:
        plan = json.load(fh)
    if not isinstance(plan, dict) or not isinstance(plan.get("steps"), list):
        raise ValueError(f"{path}: a plan is a JSON object with a 'steps' list")
    return plan


USAGE = "usage: agent.py --plan PLAN --results DIR [-v]"


def parse_args(argv: list[str]) -> dict[str, Any]:
    """--plan PLAN --results DIR [-v|--verbose] (also --opt=VALUE). Not argparse: its
    formatter imports shutil, and with it the bz2 and lzma extensions and libraries, which
    every agent start would read over 9p."""

    def usage_error(why: str) -> SystemExit:
        print(f"{USAGE}\nagent.py: {why}", file=sys.stderr)
        return SystemExit(2)

    args: dict[str, Any] = {"verbose": False}
    words = list(argv)
    while words:
        word = words.pop(0)
        if word in ("-h", "--help"):
            print(USAGE)
            raise SystemExit(0)
        if word in ("-v", "--verbose"):
            args["verbose"] = True
            continue
        name, eq, value = word.partition("=")
        if name not in ("--plan", "--results"):
            raise usage_error(f"unknown argument {word!r}")
        if not eq:
            if not words:
                raise usage_error(f"{name} needs a value")
            value = words.pop(0)
        args[name[2:]] = value
    missing = [f"--{k}" for k in ("plan", "results") if k not in args]
    if missing:
        raise usage_error(f"missing {' and '.join(missing)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args["verbose"] else logging.INFO,
        stream=sys.stderr,
        format="agent %(levelname)s: %(message)s",
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    marker({"event": "start", "release": os.uname().release, "uptime_s": sh.uptime()})
    rc = 2
    try:
        rc = _run(args["plan"], args["results"])
    except Terminated:
        log.error("terminated by SIGTERM; teardown done")
    except Exception:
        log.error("agent failed: %s", traceback.format_exc(limit=-3))
    finally:
        marker({"event": "done", "rc": rc})
    return rc


def _run(plan_path: str, results: str) -> int:
    plan = load_plan(plan_path)
    results = os.path.abspath(results)  # we chdir into workdir below
    os.makedirs(results, exist_ok=True)
    workdir = os.path.abspath(plan.get("workdir") or os.path.join(results, "work"))
    os.makedirs(workdir, exist_ok=True)
    os.chdir(workdir)  # tools that drop files in the cwd (fio state files) drop them here
    if plan.get("mode") == "host":
        # whose devices these are: the harness tears down a dead run's leftovers only once
        # this pid is gone too (harness/run/scratch.py)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(os.path.join(workdir, "agent.pid"), flags, 0o600), "w") as fh:
            fh.write(f"{os.getpid()}\n")
    found, problems = disks.find_disks(plan.get("disks", []))
    ctx = Context(
        workdir=workdir,
        mode=plan.get("mode", "vm"),
        disks=found,
        results=results,
        disk_problems=problems,
    )
    for problem in problems.values():
        log.warning("%s", problem)
    with open(os.path.join(results, "agent.json"), "w") as fh:
        json.dump(agent_info(ctx, problems), fh, indent=2)
    with open(os.path.join(results, "steps.jsonl"), "a") as out:
        return runner.run_steps(plan, ctx, out, marker)


if __name__ == "__main__":
    sys.exit(main())
