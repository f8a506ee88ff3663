"""The run engine's entry: pick the executor for a request and run it.

Kernel resolution (harness.kernel.resolve) happens before this, so a failed build or a
series that does not apply is an outcome of its own, never an exception mid-run.
"""

from __future__ import annotations

from harness.errors import BuildError, FetchError, SeriesConflict, UserError
from harness.kernel.model import Kernel
from harness.kernel.resolve import BUILD_FAILED, DOES_NOT_APPLY, Resolution, resolve_kernel
from harness.results.model import RunResult
from harness.run.executor import Executor
from harness.run.host import HostExecutor
from harness.run.request import RunRequest
from harness.run.vm import VmExecutor, check_out_dir


def executor_for(kernel: Kernel, remote: Executor | None = None) -> Executor:
    """The remote pool when one is given (--host: it runs host mode and VMs there), else
    host mode for the running kernel and a VM for everything else."""
    if remote is not None:
        return remote
    return HostExecutor() if kernel.is_host else VmExecutor()


def require(resolution: Resolution) -> Kernel:
    """The resolved kernel, or the resolution's failure raised as the error it stands for."""
    if resolution.kernel is not None:
        return resolution.kernel
    if resolution.status == DOES_NOT_APPLY:
        raise SeriesConflict(resolution.message, resolution.failure)
    if resolution.status == BUILD_FAILED:
        raise BuildError(resolution.message.split(" (build log:")[0], resolution.log_path)
    if resolution.message:
        raise FetchError(resolution.message)
    raise UserError(f"kernel {resolution.spec} could not be resolved")


def run_one(req: RunRequest, kernel: Kernel | None = None) -> RunResult:
    """Run req.plan once on `kernel` (resolving req.kernel first when not given)."""
    if kernel is None and req.kernel != "host":
        check_out_dir(req)  # a VM run: refuse paths the guest cannot use before building
    kernel = kernel or require(resolve_kernel(req.kernel))
    return executor_for(kernel).run(req, kernel)
