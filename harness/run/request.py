"""RunRequest: everything one run needs, frozen and serialisable (so it can be shipped to
another host and read back there)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.vm.console import Timeouts
from harness.vm.guestroot import GuestRoot, check_suites

MEASURES = ("wall", "cost")


@dataclass(frozen=True)
class RunRequest:
    """One kernel x topology x plan run (one repetition, optionally one shard of the plan)."""

    kernel: str
    out_dir: Path
    topology: str = "default"
    plan: str = "quick"
    accel: str = "auto"
    repetition: int = 0
    append: tuple[str, ...] = ()
    runtime_s: int | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    scratch: Path | None = None  # host mode: the only place the agent may write
    keep_images: bool = False
    shard: tuple[int, int] | None = None  # (index 1..count, count): run only that shard
    measure: str = "wall"  # "wall" | "cost" (QEMU instruction counting, TCG only)
    suites: tuple[str, ...] = ()  # --suite texts (harness.suite.peer.parse_suite)
    # the VM guest's root: "host" (the host's, read-only) or "minimal" (harness.vm.guestroot;
    # the CLI picks it with guestroot.parse); host mode ignores it
    guest_root: str = GuestRoot.HOST.value

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise UserError(f"--measure {self.measure!r}: use one of {', '.join(MEASURES)}")
        if self.measure == "cost" and (self.kernel == "host" or self.accel == "kvm"):
            raise UserError(
                "--measure cost counts instructions under TCG (QEMU -icount): it needs a VM "
                "kernel and --accel tcg or auto, not --kernel host or --accel kvm"
            )
        if self.guest_root not in tuple(GuestRoot):
            names = ", ".join(GuestRoot)
            raise UserError(f"--guest-root {self.guest_root!r}: use one of {names}")
        check_suites(self.guest_root, self.suites)
        if self.shard is not None:
            index, count = self.shard
            if count < 1 or not 1 <= index <= count:
                raise UserError(f"shard {index}/{count}: use I/N with 1 <= I <= N")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; from_dict(to_dict()) == self."""
        data = dataclasses.asdict(self)
        data["out_dir"] = str(self.out_dir)
        data["scratch"] = str(self.scratch) if self.scratch is not None else None
        data["append"] = list(self.append)
        data["suites"] = list(self.suites)
        data["shard"] = list(self.shard) if self.shard is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRequest:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise UserError(f"run request has unknown keys {sorted(unknown)}")
        values = dict(data)
        values["out_dir"] = Path(values["out_dir"])
        if values.get("scratch") is not None:
            values["scratch"] = Path(values["scratch"])
        values["append"] = tuple(values.get("append", ()))
        values["suites"] = tuple(values.get("suites", ()))
        values["timeouts"] = Timeouts(**values.get("timeouts", {}))
        if values.get("shard") is not None:
            values["shard"] = tuple(values["shard"])
        return cls(**values)
