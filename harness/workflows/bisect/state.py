"""The bisection's request and its state file: every tested step is written to
OUT/bisect-state.json as soon as it is judged, so `harness bisect --resume OUT` continues
after Ctrl-C or a crash without testing anything twice."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.results.files import atomic_write_text
from harness.vm.guestroot import check_suites
from harness.workflows.bisect.outcome import BAD, GOOD

STATE_FILE = "bisect-state.json"
STATE_VERSION = 1
GIT, LIST = "git", "list"
GOOD_ENDPOINT, BAD_ENDPOINT, STEP = "good-endpoint", "bad-endpoint", "step"


@dataclass(frozen=True)
class BisectRequest:
    """Everything that defines a bisection (and is replayed on --resume)."""

    mode: str  # git | list
    test: str
    out_dir: Path
    good: str = ""  # git mode: the endpoint specs as given
    bad: str = ""
    kernels: tuple[str, ...] = ()  # list mode: oldest (good) first, newest (bad) last
    plan: str = "quick"
    topology: str = "default"
    accel: str = "auto"
    append: tuple[str, ...] = ()
    runtime_s: int | None = None
    runs: int = 1
    bad_if: int = 1  # a step is bad when the symptom shows in at least this many runs
    guest_root: str = "host"  # harness.vm.guestroot
    crash_is_skip: bool = False  # a kernel failure in the tested step: other, not bad

    def __post_init__(self) -> None:
        if self.mode not in (GIT, LIST):
            raise UserError(f"bisect mode must be git or list, not {self.mode!r}")
        if self.runs < 1 or not 1 <= self.bad_if <= self.runs:
            raise UserError(f"--bad-if {self.bad_if}/{self.runs}: use k/N with 1 <= k <= N")
        if self.mode == LIST and len(self.kernels) < 2:
            raise UserError("--kernels needs at least two specs: the good one first, the bad last")
        if self.test.startswith("suite:"):  # refused now, not after the first build
            check_suites(self.guest_root, (self.test.removeprefix("suite:"),))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(out_dir=str(self.out_dir), kernels=list(self.kernels), append=list(self.append))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BisectRequest:
        return cls(
            **{
                **data,
                "out_dir": Path(data["out_dir"]),
                "kernels": tuple(data.get("kernels", ())),
                "append": tuple(data.get("append", ())),
            }
        )


@dataclass(frozen=True)
class RunRecord:
    """One boot of one step: where its files are and how it was judged."""

    directory: str
    attempt: int  # 0 first try, 1 the retry after an infrastructure failure
    outcome: str  # bad | good | skip | other | infra
    reason: str
    verdict: str = ""  # the harness.verdict class
    value: float | None = None  # metric tests
    duration_s: float = 0.0
    boot_s: float = 0.0


@dataclass(frozen=True)
class StepRecord:
    """One tested commit or kernel: its build, its runs and the verdict they add up to."""

    role: str  # good-endpoint | bad-endpoint | step
    item: str  # the commit id (git) or the spec exactly as listed (list)
    label: str  # short commit + subject, or the spec
    kernel: str  # the kernel spec resolved and booted
    outcome: str  # good | bad | skip
    reason: str
    resolution: str = "ok"  # ok | does-not-apply | build-failed | fetch-failed
    build_log: str | None = None
    build_s: float = 0.0
    runs: tuple[RunRecord, ...] = ()
    bad_runs: int = 0
    judged_runs: int = 0
    confidence: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["runs"] = [dataclasses.asdict(r) for r in self.runs]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepRecord:
        runs = tuple(RunRecord(**r) for r in data.get("runs", ()))
        return cls(**{**data, "runs": runs})

    @property
    def values(self) -> list[float]:
        """The metric values of the runs that counted."""
        return [r.value for r in self.runs if r.value is not None and r.outcome in (GOOD, BAD)]


@dataclass(frozen=True)
class BisectState:
    request: BisectRequest
    steps: tuple[StepRecord, ...] = ()
    result: dict[str, Any] = field(default_factory=dict)  # set when the bisection finished

    def endpoint(self, role: str) -> StepRecord | None:
        return next((s for s in self.steps if s.role == role), None)

    def tested(self) -> list[StepRecord]:
        return [s for s in self.steps if s.role == STEP]

    def with_step(self, step: StepRecord) -> BisectState:
        return dataclasses.replace(self, steps=(*self.steps, step))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "request": self.request.to_dict(),
            "steps": [s.to_dict() for s in self.steps],
            "result": self.result,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BisectState:
        if data.get("version") != STATE_VERSION:
            raise UserError(f"bisect state version {data.get('version')}: start a new bisection")
        return cls(
            BisectRequest.from_dict(data["request"]),
            tuple(StepRecord.from_dict(s) for s in data.get("steps", ())),
            dict(data.get("result") or {}),
        )


def save_state(state: BisectState) -> Path:
    path = state.request.out_dir / STATE_FILE
    atomic_write_text(path, json.dumps(state.to_dict(), indent=1, sort_keys=True) + "\n")
    return path


def load_state(out_dir: Path) -> BisectState:
    """The state in OUT/bisect-state.json; UserError naming the fix when there is none."""
    path = out_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} not found: --resume takes the --out DIR of a bisection") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is damaged ({exc}): start a new bisection") from exc
    return BisectState.from_dict(data)
