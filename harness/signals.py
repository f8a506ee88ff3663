"""Cancellation: SIGINT, SIGTERM and SIGHUP end a run the same way, cleanly.

The CLI installs `handling()` around a command. The first signal raises `Interrupted`
(a KeyboardInterrupt, so no `except Exception` or `except InfraError` on the way can swallow
it) in the main thread: supervise() kills the VM's process group and hands the partial
console outcome up, the executor turns it into a RunResult (the running step an error
"interrupted by SIGTERM", the rest never ran), and the command writes junit.xml,
results.json and the report for what ran before it exits 2.

A second signal while that cleanup runs does not wait for it: every process group below
this process is killed with SIGKILL and the process exits at once (os._exit), so nothing
is left running even when the cleanup itself hangs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType

from harness import proc

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SECOND_SIGNAL_EXIT = 2  # the infrastructure exit code (harness.cli.exits.EXIT_INFRA)


class Interrupted(KeyboardInterrupt):
    """The harness was told to stop; `signame` says by what. Layers above raise their own
    subclasses on the way up, each carrying what it could still say (the console's outcome:
    harness.vm.console.SuperviseInterrupted; the run's partial result:
    harness.run.executor.RunInterrupted)."""

    def __init__(self, signame: str = "SIGINT") -> None:
        super().__init__(f"interrupted by {signame}")
        self.signame = signame

    def __str__(self) -> str:
        return f"interrupted by {self.signame}"


def signame_of(exc: BaseException) -> str:
    """'SIGTERM' for an Interrupted, 'SIGINT' for a plain KeyboardInterrupt."""
    return getattr(exc, "signame", "SIGINT")


def reason_of(exc: BaseException) -> str:
    """The stop reason a run cut short by `exc` records: 'interrupted by SIGTERM'."""
    return f"interrupted by {signame_of(exc)}"


def _children() -> dict[int, list[int]]:
    """ppid -> [pid] over every live process, from /proc."""
    tree: dict[int, list[int]] = {}
    for pid, fields in proc.process_stats():
        tree.setdefault(int(fields[1]), []).append(pid)
    return tree


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...)."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_descendants() -> None:
    """SIGKILL every process below this one and the process groups they lead (vng -> qemu
    runs in a session of its own, so its group goes with it)."""
    for pid in descendants(os.getpid()):
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(OSError):
                kill(pid, signal.SIGKILL)


class _Handler:
    """First signal: raise Interrupted. Any later one: kill everything below, exit now."""

    def __init__(self) -> None:
        self.first: str | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.first is None:
            self.first = name
            raise Interrupted(name)
        kill_descendants()
        with contextlib.suppress(OSError):
            os.write(
                sys.stderr.fileno(),
                f"harness: {name} during cleanup after {self.first}: children killed, "
                f"exiting now\n".encode(),
            )
        os._exit(SECOND_SIGNAL_EXIT)


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM/SIGHUP raise Interrupted (then a second one exits at
    once); the previous handlers are restored after. Main thread only (the CLI)."""
    handler = _Handler()
    # A signal the parent set to be ignored (nohup, a background job's SIGINT) stays ignored.
    previous = {
        sig: signal.signal(sig, handler)
        for sig in SIGNALS
        if signal.getsignal(sig) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
