"""The host executor: the agent runs on the running kernel, no VM.

Safety: the agent gets no disks (it never writes to a block device the user did not name),
only a fresh directory under `--scratch DIR` as its workdir (harness.run.scratch: owned by
the user, locked, stale runs' devices torn down first), and creates its own loop devices
there; its teardown runs on exit, on error and on SIGTERM (the supervisor terminates before
it kills), and the harness's teardown catches what a killed agent left.
Kernel splats come from the kernel log lines that appeared during the run.
"""

from __future__ import annotations

from pathlib import Path

from harness import proc
from harness.errors import UserError
from harness.kernel.model import Kernel
from harness.klog.splats import scan
from harness.paths import GUEST_DIR
from harness.results.model import Environment, Splat, StepResult
from harness.run import scratch
from harness.run.assemble import KERNEL_LOG_STEP, assemble, boot_step, read_records
from harness.run.environment import collect
from harness.run.executor import Launch, LocalExecutor, agent_info, guest_python
from harness.run.request import RunRequest
from harness.suite import plans
from harness.suite.plan import Plan
from harness.vm.console import ConsoleOutcome
from harness.vm.launch import agent_argv


def _kernel_log() -> list[str]:
    return proc.run(["dmesg"], timeout=30, check=False).stdout.splitlines()


def new_lines(before: list[str], after: list[str]) -> list[str]:
    """Lines of `after` that came after `before` (the ring buffer may have dropped old ones)."""
    if before and before[-1] in after:
        return after[len(after) - after[::-1].index(before[-1]) :]
    return after[len(before) :] if after[: len(before)] == before else after


class HostExecutor(LocalExecutor):
    """The agent under the same supervision as in a VM; dmesg stands in for the console."""

    def __init__(self) -> None:
        self.kernel_log_before: list[str] = []
        self.run_dir_name = ""
        self.claim: scratch.Claim | None = None

    def plan(self, req: RunRequest, kernel: Kernel) -> Plan:
        """The plan, its workdir a new name under --scratch (made by prepare, not here:
        `harness shard` asks for plans it never runs)."""
        if req.scratch is None:
            raise UserError("host mode needs --scratch DIR: the only place the agent may write")
        if req.suites:  # they would write this machine's disks and kernel state: VM only
            raise UserError("--suite runs peer suites in a VM guest: drop --kernel host")
        proc.require_tool("losetup", "util-linux")
        self.run_dir_name = scratch.new_run_dir_name()
        workdir = req.scratch.resolve() / self.run_dir_name
        return plans.build_plan(
            req.plan, disks=[], mode="host", workdir=str(workdir), runtime_s=req.runtime_s
        )

    def prepare(self, req: RunRequest, kernel: Kernel, plan: Plan, shared: Path) -> None:
        assert req.scratch is not None and self.run_dir_name
        self.claim = scratch.claim(req.scratch, self.run_dir_name)
        self.kernel_log_before = _kernel_log()

    def teardown(self, req: RunRequest) -> None:
        if self.claim is not None:
            claim, self.claim = self.claim, None
            claim.release()

    def launch(self, req: RunRequest, kernel: Kernel, plan: Plan, shared: Path) -> Launch:
        argv = agent_argv(guest_python(), GUEST_DIR / "agent.py", shared / "plan.json", shared)
        return Launch(list(argv), req.out_dir / "agent.log", kill_grace_s=30.0)

    def collect(
        self, plan: Plan, shared: Path, outcome: ConsoleOutcome
    ) -> tuple[list[StepResult], tuple[Splat, ...]]:
        splats = scan(new_lines(self.kernel_log_before, _kernel_log()))
        steps = assemble(
            plan.steps,
            read_records(shared / "steps.jsonl"),
            outcome.reason,
            outcome.running_step,
            (),
            (),
        )
        # dmesg has no step timing: the host kernel's splats get a case of their own.
        steps.insert(0, boot_step("done", True, splats, 0.0, step_id=KERNEL_LOG_STEP))
        return steps, tuple(splats)

    def environment(self, req: RunRequest, shared: Path) -> tuple[Environment, str]:
        fio = agent_info(shared).get("fio_version", "")
        env = collect("host", "host mode: the running kernel, no VM", req.out_dir, 0, 0, fio)
        return env, "host"

    def stopped_message(self, outcome: ConsoleOutcome) -> str:
        return f"agent stopped ({outcome.reason})"
