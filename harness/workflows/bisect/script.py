"""The executor of a `script:PATH` bisect test: a VM run whose one step is the user's script.

The smallest honest way: the same VM executor (disks, virtme-ng, console supervision, splat
scan, timeouts, assembly) with a plan of one synthetic step, and harness/workflows/
guest/bisect_probe.py in the agent's place. The script is copied into the shared directory first:
the guest's /tmp is its own tmpfs, so a script under the host's /tmp would not be seen.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from harness.kernel.model import Kernel
from harness.paths import GUEST_DIR
from harness.run.executor import Launch
from harness.run.request import RunRequest
from harness.run.vm import GUEST_WORKDIR, VmExecutor, boot_spec, check_out_dir, guest_side
from harness.suite.plan import Plan, Step
from harness.vm import topology as topo_mod
from harness.vm.launch import vng_argv, vng_env

GUEST_RUNNER = GUEST_DIR / "bisect_probe.py"
SCRIPT_NAME = "bisect-test.sh"
DEFAULT_SCRIPT_TIMEOUT_S = 300


def script_plan(step_id: str, disks: list[dict], timeout_s: int) -> Plan:
    """A plan of one step: the script, run by guest/bisect_probe.py instead of the agent."""
    step = Step(
        id=step_id,
        kind="check",
        timeout_s=timeout_s,
        target={"name": "guest", "kind": "raw"},
        check="script",
    )
    return Plan(
        name="bisect-script", mode="vm", workdir=GUEST_WORKDIR, disks=tuple(disks), steps=(step,)
    )


def runner_argv(
    python: str, package: str, shared: str, step_id: str, timeout_s: int
) -> tuple[str, ...]:
    """guest/bisect_probe.py's command line, in the guest's paths (the package and the
    shared directory live elsewhere in a minimal guest root)."""
    return (
        python,
        f"{package}/{GUEST_RUNNER.name}",
        "--script",
        f"{shared}/{SCRIPT_NAME}",
        "--results",
        shared,
        "--id",
        step_id,
        "--timeout",
        str(timeout_s),
    )


class ScriptExecutor(VmExecutor):
    """Boots the kernel like every VM run and runs `script` in the guest as step `step_id`."""

    def __init__(self, script: Path, step_id: str, timeout_s: int = DEFAULT_SCRIPT_TIMEOUT_S):
        super().__init__()
        self.script, self.step_id, self.timeout_s = script, step_id, timeout_s

    def plan(self, req: RunRequest, kernel: Kernel) -> Plan:
        check_out_dir(req)
        self.topology = topo_mod.load(req.topology)
        return script_plan(self.step_id, self.topology.plan_disks(), self.timeout_s)

    def prepare(self, req: RunRequest, kernel: Kernel, plan: Plan, shared: Path) -> None:
        super().prepare(req, kernel, plan, shared)
        shutil.copy2(self.script, shared / SCRIPT_NAME)

    def launch(self, req: RunRequest, kernel: Kernel, plan: Plan, shared: Path) -> Launch:
        assert self.topology is not None and self.accel is not None
        side = guest_side(req, kernel, shared)
        spec = boot_spec(req, kernel, self.topology, plan, self.accel.name, side, self.images)
        python = side.agent[0]  # the interpreter the root has (-S -E: the probe is stdlib)
        argv = runner_argv(python, side.package, side.shared, self.step_id, self.timeout_s)
        spec = dataclasses.replace(spec, exec_argv=argv)
        argv = vng_argv(spec)
        (req.out_dir / "vng-argv.json").write_text(json.dumps(argv, indent=1))
        return Launch(argv, req.out_dir / "console.log", env=vng_env(spec.vng, dict(os.environ)))
