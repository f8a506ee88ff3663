"""Types shared by the guest agent's parts (targets, workloads, checks). Stdlib only."""

from __future__ import annotations

import contextlib

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any


class Skip(Exception):
    """Raised by a target, workload or check that cannot run here; the message is the reason."""


class DiskMissing(Exception):
    """A disk the plan attached is not there (its driver is missing): the step is an error."""


class StepFailure(Exception):
    """Raised by a check whose assertion failed; the message is what a developer acts on."""


class Record:
    """Base of the guest's value types: fields in __slots__, repr and equality by field.

    Not dataclasses: `import dataclasses` pulls in inspect, ast and dis, and every class
    compiles its generated methods at import. Measured in a lean 6.12 TCG guest
    (`python3 -X importtime`): 0.13 s of each agent start (Debian 6.12: ~0.2 s), for four
    small classes. The agent starts on every boot.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]


class Outcome(Record):
    """What a check or workload returns when it finished (pass, fail, xfail). Immutable."""

    __slots__ = ("status", "message", "metrics", "details")

    def __init__(
        self,
        status: str,  # pass | fail | xfail (the runner also makes skip and error)
        message: str = "",
        metrics: dict[str, float] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        put = object.__setattr__
        put(self, "status", status)
        put(self, "message", message)
        put(self, "metrics", {} if metrics is None else metrics)
        put(self, "details", {} if details is None else details)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Outcome is immutable: cannot set {name}")


class Prepared(Record):
    """A target made ready for I/O.

    `path` is what fio gets as --filename (a block device or a file); the other fields tell
    checks what stands behind it. Teardown is registered on the Context's ExitStack.
    """

    __slots__ = (
        "name",
        "kind",
        "path",
        "device",
        "backing_file",
        "mountpoint",
        "fs",
        "loop_dev",
        "extra",
    )

    def __init__(
        self,
        name: str,
        kind: str,
        path: str,
        device: str | None = None,  # block device under test (raw disk, /dev/loopN, dm)
        backing_file: str | None = None,  # file behind loop / dm-linear
        mountpoint: str | None = None,  # filesystem that holds backing_file or the file
        fs: str | None = None,
        loop_dev: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.name, self.kind, self.path, self.device = name, kind, path, device
        self.backing_file, self.mountpoint, self.fs = backing_file, mountpoint, fs
        self.loop_dev, self.extra = loop_dev, {} if extra is None else extra


class Context(Record):
    """Per-run state handed to every part: where to work, which disks, how to clean up."""

    __slots__ = ("workdir", "mode", "disks", "results", "disk_problems", "cleanup")

    def __init__(
        self,
        workdir: str,
        mode: str,  # "vm" | "host"
        disks: dict[str, str],  # plan disk name -> /dev path found by serial
        results: str = "",  # the shared results directory (fio JSON files are kept there)
        disk_problems: dict[str, str] | None = None,  # plan disk name -> why absent
        cleanup: contextlib.ExitStack | None = None,
    ) -> None:
        self.workdir, self.mode, self.disks, self.results = workdir, mode, disks, results
        self.disk_problems = {} if disk_problems is None else disk_problems
        self.cleanup = contextlib.ExitStack() if cleanup is None else cleanup
