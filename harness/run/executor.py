"""The skeleton every local run shares: plan -> shared dir -> prepare -> start under console
supervision -> collect the agent's records -> teardown -> RunResult.

An executor decides *where* a run happens. VM (harness.run.vm) and host (harness.run.host)
fill in the hooks of LocalExecutor; a remote executor implements Executor.run itself (it
ships the whole request elsewhere and brings the RunResult back).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from harness.kernel.model import Kernel
from harness.results.model import Environment, RunResult, Splat, StepResult
from harness.results.untrusted import INFO_CAP, read_untrusted
from harness.run.request import RunRequest
from harness.signals import Interrupted
from harness.suite.plan import Plan
from harness.verdict import after_retry, judge, with_verdict
from harness.vm.console import ConsoleOutcome, SuperviseInterrupted, supervise

log = logging.getLogger(__name__)


class RunInterrupted(Interrupted):
    """A signal stopped a run: `result` is the RunResult of what ran before it (the running
    step an error, the rest never ran), for the caller to write before it exits."""

    def __init__(self, signame: str, result: RunResult) -> None:
        super().__init__(signame)
        self.result = result


class Executor(Protocol):
    """Runs one request on one resolved kernel somewhere, and returns what it saw."""

    def run(self, req: RunRequest, kernel: Kernel) -> RunResult: ...


@dataclass(frozen=True)
class Launch:
    """The supervised process of one run: what to start and where its console goes."""

    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    kill_grace_s: float = 3.0
    progress: Callable[[str], None] | None = None
    request_dump: Callable[[], None] | None = None  # ask the guest for a blocked-task dump


def guest_python() -> str:
    """The interpreter the agent runs with: Debian's python3 is there in guest and host."""
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def fresh_shared_dir(out_dir: Path) -> Path:
    """The directory shared with the agent (plan in, records out), emptied for this run."""
    shared = out_dir / "shared"
    shutil.rmtree(shared, ignore_errors=True)
    shared.mkdir(parents=True)
    return shared


def agent_info(shared: Path) -> dict:
    """What the agent said about itself (agent.json), or {} when it never got that far (or
    wrote something else there: the guest can write the file, so it is read as untrusted)."""
    try:
        info = json.loads(read_untrusted(shared / "agent.json", INFO_CAP).data or b"{}")
    except (ValueError, RecursionError):
        return {}
    return info if isinstance(info, dict) else {}


# Stops that are the kernel's doing (the verdict says so) or no stop at all.
_NOT_INFRA = ("done", "panic", "oops", "hang")


def keep_log(path: Path, tag: str) -> Path:
    """Move a log aside as NAME.TAG.log so the next attempt does not overwrite it."""
    kept = path.with_name(f"{path.stem}.{tag}{path.suffix}")
    if path.exists():
        path.replace(kept)
    return kept


class LocalExecutor(ABC):
    """A run on this machine. Subclasses fill in the hooks; run() is the shared skeleton."""

    @abstractmethod
    def plan(self, req: RunRequest, kernel: Kernel) -> Plan:
        """The full plan for this run (run() cuts the request's shard from it)."""

    def prepare(self, req: RunRequest, kernel: Kernel, plan: Plan, shared: Path) -> None:
        """Make what the run needs before it starts (disks, the host's kernel log mark)."""
        return None

    @abstractmethod
    def launch(self, req: RunRequest, kernel: Kernel, plan: Plan, shared: Path) -> Launch:
        """The process to supervise."""

    @abstractmethod
    def collect(
        self, plan: Plan, shared: Path, outcome: ConsoleOutcome
    ) -> tuple[list[StepResult], tuple[Splat, ...]]:
        """Step results (boot case first) and the run's splats."""

    @abstractmethod
    def environment(self, req: RunRequest, shared: Path) -> tuple[Environment, str]:
        """What ran the kernel, and the topology name recorded with the result."""

    def teardown(self, req: RunRequest) -> None:
        """Remove what prepare made; runs on every way out."""
        return None

    def stopped_message(self, outcome: ConsoleOutcome) -> str:
        """The run's infra_error text when it did not end with the agent's final marker."""
        where = f" during {outcome.running_step}" if outcome.running_step else ""
        return f"run stopped ({outcome.reason}){where}"

    def run(self, req: RunRequest, kernel: Kernel) -> RunResult:
        """One run with its verdict stored, retried once when the verdict asks for it (a
        guest that answered nothing; a known emulator artefact). The first attempt's
        console log is kept next to the second's and named in the verdict."""
        try:
            first = self.attempt(req, kernel)
        except RunInterrupted as exc:
            raise RunInterrupted(exc.signame, with_verdict(exc.result)) from exc
        verdict = judge(first)
        if not verdict.retry:
            return with_verdict(first, verdict)
        kept = keep_log(Path(first.console_log), "attempt1")
        log.warning("%s; retrying once (first attempt's console: %s)", verdict.summary, kept)
        second = self.attempt(req, kernel)
        return with_verdict(second, after_retry(verdict, str(kept), judge(second)))

    def attempt(self, req: RunRequest, kernel: Kernel) -> RunResult:
        """One boot (or host run) of the plan, without a verdict."""
        plan = self.plan(req, kernel)
        if req.shard is not None:
            plan = plan.shard_of(*req.shard)
        shared = fresh_shared_dir(req.out_dir)
        plan.write(shared / "plan.json")
        started = datetime.now(UTC).isoformat(timespec="seconds")
        t0 = time.monotonic()
        interrupted: SuperviseInterrupted | None = None
        try:
            self.prepare(req, kernel, plan, shared)
            launch = self.launch(req, kernel, plan, shared)
            outcome = supervise(
                launch.argv,
                launch.log_path,
                req.timeouts,
                env=launch.env,
                progress=launch.progress,
                kill_grace_s=launch.kill_grace_s,
                request_dump=launch.request_dump,
            )
        except SuperviseInterrupted as exc:  # harness.signals: supervise says what ran
            outcome, interrupted = exc.outcome, exc
        finally:
            self.teardown(req)
        steps, splats = self.collect(plan, shared, outcome)
        environment, topology = self.environment(req, shared)
        result = RunResult(
            kernel=kernel.info(),
            environment=environment,
            topology=topology,
            plan=plan.name,
            steps=tuple(steps),
            splats=splats,
            console_log=str(launch.log_path),
            infra_error="" if outcome.reason in _NOT_INFRA else self.stopped_message(outcome),
            repetition=req.repetition,
            started=started,
            duration_s=time.monotonic() - t0,
            stop_reason=outcome.reason,
            stalls=outcome.stalls,
        )
        if interrupted is not None:  # the caller writes this run's results, then stops
            raise RunInterrupted(interrupted.signame, result) from interrupted
        return result
