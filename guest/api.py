"""Types shared by the guest agent's parts (targets, workloads, checks). Stdlib only."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any


class Skip(Exception):
    """Raised by a target, workload or check that cannot run here; the message is the reason."""


class DiskMissing(Exception):
    """A disk the plan attached is not there (its driver is missing): the step is an error."""


class StepFailure(Exception):
    """Raised by a check whose assertion failed; the message is what a developer acts on."""


@dataclass(frozen=True)
class Outcome:
    """What a check or workload returns when it finished (pass, fail, xfail)."""

    status: str  # pass | fail | xfail
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """A target made ready for I/O.

    `path` is what fio gets as --filename (a block device or a file); the other fields tell
    checks what stands behind it. Teardown is registered on the Context's ExitStack.
    """

    name: str
    kind: str
    path: str
    device: str | None = None  # block device under test (raw disk, /dev/loopN, /dev/mapper/x)
    backing_file: str | None = None  # file behind loop / dm-linear
    mountpoint: str | None = None  # filesystem that holds backing_file or the file target
    fs: str | None = None
    loop_dev: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """Per-run state handed to every part: where to work, which disks, how to clean up."""

    workdir: str
    mode: str  # "vm" | "host"
    disks: dict[str, str]  # plan disk name -> /dev path found by serial
    results: str = ""  # the shared results directory (fio JSON files are kept there)
    disk_problems: dict[str, str] = field(default_factory=dict)  # plan disk name -> why absent
    cleanup: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
