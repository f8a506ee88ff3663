"""The result model every writer reads. Frozen dataclasses with JSON round-trip.

A RunResult is one kernel booted once on one topology running one plan (one repetition).
Its steps come from the guest agent's step records (see docs/CONTRACT.md); splats come
from the host's console scan.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class StepStatus(StrEnum):
    """What one step ended as (the agent's record; docs/CONTRACT.md)."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"
    XFAIL = "xfail"  # failed as expected (a known failure)


STATUSES = tuple(StepStatus)


@dataclass(frozen=True)
class Splat:
    """A kernel oops/warning/panic found in a console log."""

    kind: str  # panic, oops, bug, warning, kasan, kfence, ubsan, lockdep, hung_task, ...
    title: str
    line: int  # 1-based line number in the console log where it starts
    excerpt: str


@dataclass(frozen=True)
class StepResult:
    """One step of a plan: a fio workload on a target, or a correctness check."""

    id: str
    kind: str  # "fio" | "check" | "setup"
    status: StepStatus
    message: str = ""
    duration_s: float = 0.0
    target: str = ""
    workload: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    splats: tuple[Splat, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", StepStatus(self.status))

    @property
    def failed(self) -> bool:
        return self.status in (StepStatus.FAIL, StepStatus.ERROR)


@dataclass(frozen=True)
class KernelInfo:
    """Where the kernel came from, enough to reproduce it."""

    spec: str
    release: str = ""
    image: str = ""
    provenance: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Environment:
    """What ran the kernel. Comparisons refuse to mix environments."""

    accel: str  # "kvm" | "tcg" | "host"
    accel_note: str = ""
    qemu_version: str = ""
    fio_version: str = ""
    host_kernel: str = ""
    host_fs: str = ""
    cpus: int = 0
    memory_mb: int = 0
    hung_task_timeout_s: int = 0  # the guest's hung_task_timeout_secs (0: not set by us)
    measure: str = "wall"  # "wall" | "cost" (QEMU -icount: guest time counts instructions)

    def properties(self) -> dict[str, str]:
        return {k: str(v) for k, v in dataclasses.asdict(self).items() if v not in ("", 0)}


@dataclass(frozen=True)
class RunResult:
    """One kernel x topology x plan run (one repetition)."""

    kernel: KernelInfo
    environment: Environment
    topology: str
    plan: str
    steps: tuple[StepResult, ...] = ()
    splats: tuple[Splat, ...] = ()
    console_log: str = ""
    infra_error: str = ""
    repetition: int = 0
    started: str = ""
    duration_s: float = 0.0
    stop_reason: str = ""  # how the VM run ended: done, panic, oops, hang, step-timeout, ...
    # hung-task reports whose task ran on (slow emulated I/O) and blocked-task dumps of a
    # run that went on: noted, not failures
    stalls: tuple[Splat, ...] = ()
    # harness.verdict.Verdict.to_dict(): the class (pass, kernel-failure, test-failure,
    # infra-error, emulator-artefact) with its evidence; {} in results written before it.
    verdict: dict[str, Any] = field(default_factory=dict)

    @property
    def panicked(self) -> bool:
        return self.stop_reason == "panic"

    @property
    def name(self) -> str:
        return f"{self.kernel.spec} / {self.topology}"

    @property
    def passed(self) -> bool:
        return not self.infra_error and not any(s.failed for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        steps = tuple(
            StepResult(**{**s, "splats": tuple(Splat(**x) for x in s.get("splats", ()))})
            for s in data.get("steps", ())
        )
        return cls(
            kernel=KernelInfo(**data["kernel"]),
            environment=Environment(**data["environment"]),
            topology=data["topology"],
            plan=data["plan"],
            steps=steps,
            splats=tuple(Splat(**x) for x in data.get("splats", ())),
            console_log=data.get("console_log", ""),
            infra_error=data.get("infra_error", ""),
            repetition=data.get("repetition", 0),
            started=data.get("started", ""),
            duration_s=data.get("duration_s", 0.0),
            stop_reason=data.get("stop_reason", ""),
            stalls=tuple(Splat(**x) for x in data.get("stalls", ())),
            verdict=data.get("verdict", {}),
        )


def step_from_record(record: dict[str, Any]) -> StepResult:
    """Build a StepResult from one guest agent JSON record (docs/CONTRACT.md)."""
    known = {f.name for f in dataclasses.fields(StepResult)} - {"splats"}
    fields = {k: v for k, v in record.items() if k in known}
    fields.setdefault("kind", "")
    if fields.get("status") not in STATUSES:
        fields["status"] = "error"
        fields["message"] = f"agent wrote unknown status {record.get('status')!r}"
    return StepResult(**fields)
