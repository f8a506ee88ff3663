"""The VM executor: the plan's disks as QEMU images, the kernel booted under virtme-ng, the
agent started over 9p, the console supervised."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.kernel.apt_sources import archive_uri, system_sources
from harness.kernel.model import Kernel
from harness.paths import GUEST_DIR, cache_dir
from harness.results.model import Environment, Splat, StepResult
from harness.results.untrusted import write_untrusted
from harness.run import peer
from harness.run.assemble import assemble, boot_step, read_records, with_stalls
from harness.run.environment import collect
from harness.run.executor import Launch, LocalExecutor, agent_info, guest_python
from harness.run.request import RunRequest
from harness.suite import plans
from harness.suite.peer import parse_suite
from harness.suite.plan import Plan
from harness.vm import accel as accel_mod
from harness.vm import agent_bundle, boot_initramfs, guestroot, standins
from harness.vm import qemu as qemu_mod
from harness.vm import topology as topo_mod
from harness.vm.accel import Accel
from harness.vm.agent_bundle import PYTHON_FLAGS
from harness.vm.console import ConsoleOutcome
from harness.vm.launch import (
    HUNG_TASK_TIMEOUT_S,
    BootSpec,
    Share,
    find_vng,
    vng_argv,
    vng_env,
)
from harness.vm.pathsafe import RWDIR_CHARS, check_guest_visible, check_vng_path

log = logging.getLogger(__name__)

GUEST_WORKDIR = "/tmp/harness-work"  # a tmpfs overlay inside virtme-ng guests


@dataclass(frozen=True)
class GuestSide:
    """What the guest's root decides: the root (None: the host's), the host directories
    mounted elsewhere, how the agent starts (before --plan), where the shared directory is
    in the guest, where the guest package is, and the fio the guest runs ("" for the
    host's)."""

    root: Path | None
    rw_dirs: tuple[Path, ...]
    shares: tuple[Share, ...]
    agent: tuple[str, ...]
    shared: str
    package: str
    fio_version: str = ""


def guest_side(req: RunRequest, kernel: Kernel, shared: Path) -> GuestSide:
    """The host's root (every host path as it is), or the minimal root with the agent
    staged into it and the shared directory and the kernel's modules mounted into it."""
    if req.guest_root == guestroot.GuestRoot.HOST:
        python = guest_python()
        launcher = agent_bundle.ensure(python, GUEST_DIR)
        agent = (python, *PYTHON_FLAGS, str(launcher))
        return GuestSide(None, (shared,), (), agent, str(shared), str(GUEST_DIR))
    root = guestroot.ensure(lambda suite: archive_uri(system_sources(), suite))
    staged = guestroot.stage_agent(root, GUEST_DIR)
    shares = [Share(guestroot.SHARED_MOUNT, shared, writable=True)]
    if kernel.modules_dir is not None and kernel.modules_dir.is_dir():
        where = guestroot.modules_mount(root, kernel.modules_dir.name)
        shares.append(Share(where, kernel.modules_dir, writable=False))
    return GuestSide(
        root,
        (),
        tuple(shares),
        staged.argv,
        guestroot.SHARED_MOUNT,
        staged.package,
        staged.fio_version,
    )


def check_host_root_paths(shared: Path) -> None:
    """A guest on the host's root reads the agent, the kernel's modules and the stand-ins
    from the cache and the guest package at their host paths, and shares --out there."""
    fix = "set HARNESS_CACHE_DIR to a directory elsewhere (e.g. /var/lib/kernel-harness)"
    check_guest_visible(cache_dir(), "the cache directory", fix)
    check_guest_visible(GUEST_DIR, "the harness's guest package", "install the harness elsewhere")
    check_guest_visible(shared, "the --out directory", "give an --out elsewhere")


def boot_spec(
    req: RunRequest,
    kernel: Kernel,
    topology: topo_mod.Topology,
    plan: Plan,
    accel: str,
    side: GuestSide,
    images: dict[str, Path],
) -> BootSpec:
    """What to boot: the kernel, the agent to exec, the disks and the command line."""
    assert kernel.image is not None
    initrd = boot_initramfs.for_boot(kernel.modules_dir, kernel.config, topology.drivers())
    warm = boot_initramfs.warm_param((*side.agent, "--help"))
    return BootSpec(
        image=kernel.image,
        exec_argv=(*side.agent, "--plan", f"{side.shared}/plan.json", "--results", side.shared),
        rw_dirs=side.rw_dirs,
        qemu_args=tuple(topo_mod.qemu_argv(topology, images)),
        append=(
            tuple(topology.kernel_append())
            + plan.boot_append
            + req.append
            + ((warm,) if initrd and warm else ())
        ),
        accel=accel,
        cpus=topology.cpus,
        memory_mb=topology.memory_mb,
        vng=find_vng(),
        qemu=qemu_mod.for_vng(),
        measure=req.measure,
        initrd=initrd,
        root=side.root,
        shares=side.shares,
    )


def check_out_dir(req: RunRequest) -> None:
    """The guest shares a directory under --out: refuse a name virtme-ng cannot pass safely,
    or paths a guest on the host's root would not see, before any kernel is built or disk
    made (vng_argv checks every path again)."""
    check_vng_path(req.out_dir.absolute(), "--out directory", RWDIR_CHARS)
    if req.guest_root == guestroot.GuestRoot.HOST:
        check_host_root_paths(req.out_dir)


def vm_steps(plan: Plan, shared: Path, outcome: ConsoleOutcome) -> list[StepResult]:
    """The boot case, then one case per planned step."""
    booted = outcome.first_marker_s is not None
    boot_splats = [
        s for s, sid in zip(outcome.splats, outcome.splat_steps, strict=True) if sid is None
    ]
    pairs = zip(outcome.stalls, outcome.stall_steps, strict=True)
    boot_stalls = [s for s, sid in pairs if sid is None]
    boot = boot_step(outcome.reason, booted, boot_splats, outcome.first_marker_s or 0.0)
    steps = [with_stalls(boot, boot_stalls)]
    return steps + assemble(
        plan.steps,
        read_records(shared / "steps.jsonl"),
        outcome.reason,
        outcome.running_step,
        outcome.splats,
        outcome.splat_steps,
        outcome.fault_step,
        outcome.stalls,
        outcome.stall_steps,
    )


def dump_requester(shared: Path):
    """Ask the agent's watchdog (guest/watchdog.py) for a sysrq-w dump: a file in the
    shared directory, which the guest sees at once (9p without caching)."""

    def request() -> None:
        log.info("asking the guest kernel for its blocked tasks (sysrq-w)")
        try:  # the guest can plant anything under that name: replace it, never write through
            write_untrusted(shared, "sysrq-request", b"w\n")
        except OSError as exc:
            log.warning("cannot ask for a blocked-task dump: %s", exc)

    return request


class VmExecutor(LocalExecutor):
    """One boot per run; the disks live under OUT/disks and are removed on every way out."""

    def __init__(self) -> None:
        self.topology: topo_mod.Topology | None = None
        self.accel: Accel | None = None
        self.images: dict[str, Path] = {}
        self.fio_version = ""  # the guest root's, when it is not the host's

    def plan(self, req: RunRequest, kernel: Kernel) -> Plan:
        check_out_dir(req)
        self.topology = topo_mod.load(req.topology)
        plan = plans.build_plan(
            req.plan,
            disks=self.topology.plan_disks(),
            mode="vm",
            workdir=GUEST_WORKDIR,
            runtime_s=req.runtime_s,
        )
        suites = tuple(parse_suite(text) for text in req.suites)
        plan = peer.with_suites(plan, suites, kernel.release) if suites else plan
        if not plan.steps:
            raise UserError("the plan has no steps: give --suite, or a plan other than none")
        return plan

    def prepare(self, req: RunRequest, kernel: Kernel, plan: Plan, shared: Path) -> None:
        assert self.topology is not None
        # icount is TCG only: cost mode never probes KVM
        accel = "tcg" if req.measure == "cost" else req.accel
        self.accel = accel_mod.choose(accel, kernel.image, kernel.config)
        self.images = topo_mod.create_images(self.topology, req.out_dir / "disks")

    def launch(self, req: RunRequest, kernel: Kernel, plan: Plan, shared: Path) -> Launch:
        assert self.topology is not None and self.accel is not None
        side = guest_side(req, kernel, shared)
        self.fio_version = side.fio_version
        spec = boot_spec(req, kernel, self.topology, plan, self.accel.name, side, self.images)
        argv = vng_argv(spec)
        (req.out_dir / "vng-argv.json").write_text(json.dumps(argv, indent=1))
        log.info(
            "booting %s (%s, %s) under %s",
            kernel.release,
            kernel.spec,
            self.topology.name,
            self.accel.name.upper(),
        )
        # vng-argv.json keeps the plain vng line (what a developer re-runs by hand); the
        # launched one also swaps udev and systemd-tmpfiles for stand-ins where it can
        # (harness.vm.standins).
        wrap = standins.available() and not plan.real_udev
        if wrap:
            standins.compiled()  # built here (logged) rather than inside the namespace
        return Launch(
            standins.wrap_argv(argv) if wrap else argv,
            req.out_dir / "console.log",
            env=vng_env(spec.vng, dict(os.environ)),
            progress=lambda msg: log.info("[%s] %s", kernel.release, msg),
            request_dump=dump_requester(shared),
        )

    def collect(
        self, plan: Plan, shared: Path, outcome: ConsoleOutcome
    ) -> tuple[list[StepResult], tuple[Splat, ...]]:
        return vm_steps(plan, shared, outcome), outcome.splats

    def environment(self, req: RunRequest, shared: Path) -> tuple[Environment, str]:
        assert self.topology is not None and self.accel is not None
        env = collect(
            self.accel.name,
            self.accel.note,
            req.out_dir,
            self.topology.cpus,
            self.topology.memory_mb,
            agent_info(shared).get("fio_version", "") or self.fio_version,
        )
        env = dataclasses.replace(env, hung_task_timeout_s=HUNG_TASK_TIMEOUT_S)
        return dataclasses.replace(env, measure=req.measure), self.topology.name

    def teardown(self, req: RunRequest) -> None:
        if not req.keep_images:
            shutil.rmtree(req.out_dir / "disks", ignore_errors=True)

    def stopped_message(self, outcome: ConsoleOutcome) -> str:
        where = f" during {outcome.running_step}" if outcome.running_step else ""
        if outcome.reason == "panic":
            first = next((s for s in outcome.splats if s.kind == "panic"), None)
            title = f": {first.title}" if first else ""
            return f"kernel panic{where}{title}"
        if outcome.reason == "unresponsive":
            return (
                f"the guest stopped answering{where}: no console output and no answer to a "
                "blocked-task dump request"
            )
        if outcome.reason == "eof" and outcome.first_marker_s is None:
            said = f": {outcome.last_words}" if outcome.last_words else ""
            return f"the VM exited before the agent started{said} (see console.log)"
        return super().stopped_message(outcome)
