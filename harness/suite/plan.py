"""The typed plan: built once on the host, serialised to plan.json (docs/CONTRACT.md), cut
into shards for CI job matrices and remote hosts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.suite import stack_scope

_STEP_KEYS = ("id", "kind", "timeout_s", "target", "workload", "check", "params", "xfail")


@dataclass(frozen=True)
class Step:
    """One planned step: a fio workload on a target, or a check on a target."""

    id: str
    kind: str  # "fio" | "check" | "suite" (a peer suite test, harness.suite.peer)
    timeout_s: int
    target: dict[str, Any]
    workload: dict[str, Any] | None = None  # fio steps
    check: str | None = None  # check steps
    params: dict[str, Any] = field(default_factory=dict)
    xfail: str | None = None

    @property
    def target_name(self) -> str:
        return str(self.target.get("name", ""))

    @property
    def workload_name(self) -> str:
        return str((self.workload or {}).get("name", ""))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "timeout_s": self.timeout_s,
            "target": self.target,
        }
        if self.kind == "fio":
            data["workload"] = self.workload
        else:
            data["check"] = self.check
            data["params"] = self.params
        if self.xfail:
            data["xfail"] = self.xfail
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        values = {k: data[k] for k in _STEP_KEYS if k in data}
        values.setdefault("params", {})
        return cls(**values)


@dataclass(frozen=True)
class Plan:
    """What the agent runs: the steps, the disks it may use, where it may write."""

    name: str
    mode: str  # "vm" | "host"
    workdir: str
    disks: tuple[dict[str, Any], ...]
    steps: tuple[Step, ...]
    trace_stack: bool = False
    shard: tuple[int, int] | None = None
    stack_scope: tuple[str, ...] = ()  # functions the stack tracer is limited to (stack_scope.py)

    @property
    def boot_append(self) -> tuple[str, ...]:
        """Kernel command-line words this plan needs. A plan that measures stack depth gets
        the ftrace stack tracer from boot (`stacktrace`): enabling it later live-patches
        every function with int3 while other vCPUs run, which oopses guests under TCG. A
        plan with a stack scope gets the tracer limited to those functions instead."""
        if self.stack_scope:
            return (stack_scope.boot_word(self.stack_scope),)
        traced = self.trace_stack or any(s.check == "stack" for s in self.steps)
        return ("stacktrace",) if traced else ()

    @property
    def real_udev(self) -> bool:
        """Peer suites drive udev themselves (blktests loop/009 waits for its partition
        events with `udevadm control --ping`): their guest keeps the real udevd instead of
        the boot's stand-in (harness.vm.standins), which answers every call with success."""
        return any(s.kind == "suite" for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "version": 1,
            "name": self.name,
            "mode": self.mode,
            "workdir": self.workdir,
            "disks": list(self.disks),
            "trace_stack": self.trace_stack,
            "steps": [s.to_dict() for s in self.steps],
        }
        if self.shard is not None:
            data["shard"] = list(self.shard)
        if self.stack_scope:
            data["stack_scope"] = list(self.stack_scope)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            name=str(data["name"]),
            mode=str(data["mode"]),
            workdir=str(data["workdir"]),
            disks=tuple(data.get("disks", ())),
            steps=tuple(Step.from_dict(s) for s in data["steps"]),
            trace_stack=bool(data.get("trace_stack", False)),
            shard=tuple(data["shard"]) if data.get("shard") else None,  # type: ignore[arg-type]
            stack_scope=stack_scope.resolve(data.get("stack_scope"), "plan.json"),
        )

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2))

    def groups(self) -> list[list[Step]]:
        """Steps that share a prepared target, in plan order: the unit a shard keeps whole.
        A peer suite's tests share no target: each is a unit of its own."""
        by_target: dict[str, list[Step]] = {}
        for step in self.steps:
            key = step.id if step.kind == "suite" else step.target_name
            by_target.setdefault(key, []).append(step)
        return list(by_target.values())

    def shard_of(self, index: int, count: int) -> Plan:
        """Shard `index` (1..count) of `count`: every step lands in exactly one shard, steps
        of one target stay together, shards are balanced by their steps' timeouts, and the
        cut depends only on the plan (stable across runs and hosts)."""
        if count < 1 or not 1 <= index <= count:
            raise UserError(f"shard {index}/{count}: use I/N with 1 <= I <= N")
        groups = self.groups()
        cost = [sum(s.timeout_s for s in g) for g in groups]
        order = sorted(range(len(groups)), key=lambda i: (-cost[i], i))
        load = [0] * count
        owner: dict[int, int] = {}
        for gi in order:
            lightest = min(range(count), key=lambda b: (load[b], b))
            owner[gi] = lightest
            load[lightest] += cost[gi]
        mine = {s.id for gi, g in enumerate(groups) if owner[gi] == index - 1 for s in g}
        steps = tuple(s for s in self.steps if s.id in mine)
        return replace(self, steps=steps, shard=(index, count))
