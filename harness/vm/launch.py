"""virtme-ng command lines. Pure: a BootSpec in, a list[str] out.

virtme-ng glues its arguments into a shell string for virtme-run (and joins --qemu-opts
with spaces), so every QEMU word is passed through shlex.quote to survive that shell.
"""

from __future__ import annotations

import base64
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import MissingToolError, UserError
from harness.vm.pathsafe import RWDIR_CHARS, check_vng_path


def find_vng() -> str:
    """vng on PATH, else next to this interpreter (a venv that is not activated)."""
    found = shutil.which("vng") or shutil.which("vng", path=str(Path(sys.executable).parent))
    if not found:
        raise MissingToolError("vng", None)
    return found


@dataclass(frozen=True)
class Share:
    """A host directory the guest sees at another path (the minimal guest root: the host's
    paths do not exist there)."""

    guest: str
    host: Path
    writable: bool


@dataclass(frozen=True)
class BootSpec:
    """Everything one VM boot needs."""

    image: Path
    exec_argv: tuple[str, ...]  # what the guest runs (the agent)
    rw_dirs: tuple[Path, ...]  # host dirs shared read-write at the same path
    qemu_args: tuple[str, ...] = ()  # disk fragments etc.
    append: tuple[str, ...] = ()  # extra kernel command-line words
    accel: str = "tcg"  # "tcg" | "kvm"
    cpus: int = 2
    memory_mb: int = 2048
    cwd: Path = Path("/")
    vng: str = "vng"
    qemu: str = ""  # a qemu-system-x86_64 other than the system's (harness.vm.qemu)
    measure: str = "wall"  # "cost": instruction counting (COST_QEMU_ARGS), TCG only
    initrd: Path | None = None  # the harness's initramfs (harness.vm.boot_initramfs)
    root: Path | None = None  # the guest's root (harness.vm.guestroot); None: the host's
    shares: tuple[Share, ...] = ()  # mounted at their guest paths


# Words every harness boot appends: keep all console output, name the stack overflow, make
# hung tasks visible fast enough for short checks, and never reboot into a loop.
# Modules udev would load for emulated hardware no test touches (KVM inside TCG, the q35
# SATA DVD, ICH9 watchdog/SMBus, CPU frequency drivers): under TCG each modprobe is slow and
# udev settle waits for all of them, which is most of virtme-ng's boot time.
GUEST_MODULE_BLACKLIST = (
    *("kvm", "kvm_amd", "kvm_intel", "powernow_k8", "acpi_cpufreq"),
    *("ahci", "libahci", "sr_mod", "cdrom", "floppy"),
    *("iTCO_wdt", "iTCO_vendor_support", "lpc_ich", "i2c_i801", "i2c_smbus", "i6300esb"),
    *("pcspkr", "serio_raw", "joydev", "evdev", "psmouse", "button"),
    # CPU-feature crypto drivers udev loads for `-cpu max` (crc32c_intel stays: XFS uses it)
    *("cryptd", "aesni_intel", "ghash_clmulni_intel", "polyval_clmulni"),
    *("sha1_ssse3", "sha256_ssse3", "sha512_ssse3", "crct10dif_pclmul", "crc32_pclmul"),
)
# A hung task announces itself this fast (the detector checks once per period, so a task
# blocked at t is reported between t+20 and t+40 s, and again each period it stays
# blocked); harness.vm.faults calls it a hang at 60 s blocked, a stall if it runs on before:
# a hang is diagnosed well before any step timeout, and slow emulated I/O is not a hang.
# Recorded in every result (Environment.hung_task_timeout_s).
HUNG_TASK_TIMEOUT_S = 20
BASE_APPEND = (
    "loglevel=7",
    "panic=-1",
    # not a kernel parameter of its own (the kernel passes it to init and ignores it): the
    # sysctl.* form sets /proc/sys/kernel/hung_task_timeout_secs at boot (5.8+)
    f"sysctl.kernel.hung_task_timeout_secs={HUNG_TASK_TIMEOUT_S}",
    # report a blocked task every period for as long as it stays blocked (default: 10
    # reports in all): harness.vm.faults confirms a hang by a task's repeated reports
    "sysctl.kernel.hung_task_warnings=-1",
    "modprobe.blacklist=" + ",".join(GUEST_MODULE_BLACKLIST),
    # no PS/2 mouse port: on kernels with psmouse built in (lean builds) its protocol probe
    # holds the root mount back (the kernel waits for running probes first): 0.46 s of a
    # lean 6.12 TCG boot. Nothing the harness runs has a mouse.
    "i8042.noaux",
)


# Under a loaded TCG host the clocksource watchdog marks the emulated TSC unstable at random
# times; the kernel then flips the sched_clock static key, live-patching code with int3
# while the other vCPU runs it, which multi-threaded TCG can turn into an "Oops: int3" /
# "Fatal exception in interrupt" panic. A TSC declared reliable is never flipped.
# Other runtime patchers remain (static keys flipped later, ftrace enabled at run time), so
# a "Oops: int3" under multi-threaded TCG is still retried and, if it does not come back,
# classified as an emulator artefact (harness.verdict).
TCG_APPEND = ("tsc=reliable",)
# And the race itself: recorded (tests/data/console/tcg-int3.log) a vCPU trapped on the
# temporary int3 of a jump-label site that text_poke_bp had already restored, i.e. it ran
# translated code that multi-threaded TCG had not yet thrown away; it hit ~1-2% of boots.
# Single-threaded (round-robin) TCG would avoid it, but QEMU before 8.1 elides the guest's
# memory barriers in that mode (tcg_gen_mb without CF_PARALLEL) while device emulation runs
# in QEMU's I/O thread beside the vCPU thread: the NVMe shadow-doorbell handshake (guest
# writes its doorbell, mb(), reads the event index; QEMU the reverse) then loses submissions.
# Measured on QEMU 7.2: 10 of 46 round-robin NVMe boots had "I/O tag N ... timeout,
# aborting" (a 2 s randread fell to 20 IOPS; an XFS log write blocked its kworker past the
# hung-task timeout), 0 of 52 multi-threaded ones. So multi-threaded TCG, always named (a
# bare --disable-kvm lets QEMU pick), and the int3 race is retried and classified
# (harness.verdict) instead.
TCG_QEMU_ARGS = ("-accel", "tcg,thread=multi")

# The host's root as the guest sees it: virtme-ng's own 9p flags (--force-9p) plus
# cache=loose, so the guest keeps what it read (pages, attributes, directory entries) instead
# of asking QEMU again on every stat, open and exec. The root is read-only and nothing the
# host changes during a run is read through it (plans and results go through the --rwdir
# share, a mount of its own without caching). The kernel keeps the last rootflags= given, so
# this one, appended after virtme-ng's, wins. Measured in a lean 6.12 TCG guest: first
# `fio --version` 1.62 -> 1.05 s, `python3 guest/agent.py --help` 1.53 -> 0.94 s (second run).
ROOT_9P_FLAGS = "rootflags=version=9p2000.L,trans=virtio,access=any,msize=524288,cache=loose"


# Cost mode: guest time advances by instructions executed (1 ns each: shift=0), never by
# host time (sleep=off: an idle guest warps to its next timer; align=off: no throttling to
# real time), so figures do not move with host load. icount needs single-threaded TCG;
# virtme-ng passes no accelerator under --disable-kvm (QEMU would pick MTTCG), so say it.
# Round-robin TCG's lost NVMe submissions (above) were not seen under icount (0 of 25
# boots); should one happen, the "I/O tag ... timeout" report names it (harness.klog.splats
# kind io_timeout) and the run is an emulator artefact (harness.verdict).
COST_QEMU_ARGS = ("-accel", "tcg,thread=single", "-icount", "shift=0,sleep=off,align=off")


def check_paths(spec: BootSpec) -> None:
    """Every path of `spec` that virtme-ng pastes into its shell line (harness.vm.pathsafe);
    the QEMU words are shell-quoted below, and their paths are QEMU-quoted by their makers."""
    check_vng_path(spec.image, "kernel image")
    for rw_dir in spec.rw_dirs:
        check_vng_path(rw_dir, "shared directory (under --out)", RWDIR_CHARS)
    check_vng_path(spec.cwd, "guest working directory")
    if spec.initrd is not None:
        check_vng_path(spec.initrd, "initramfs")
    if spec.root is not None:
        check_vng_path(spec.root, "guest root")
    if spec.qemu:
        check_vng_path(spec.qemu, "QEMU binary")
    for share in spec.shares:  # virtme-ng takes GUEST=HOST, each side in its rwdir syntax
        check_vng_path(share.guest, "guest path of a shared directory", RWDIR_CHARS)
        check_vng_path(share.host, "shared directory", RWDIR_CHARS)


def vng_argv(spec: BootSpec) -> list[str]:
    """The `vng --run` command line for a BootSpec; UserError for a path virtme-ng's shell
    would interpret."""
    check_paths(spec)
    # --force-9p: Debian's only virtiofsd here is QEMU's old C one, which virtme-ng cannot
    # drive; it retries it for seconds on every boot before falling back to 9p anyway.
    argv = [spec.vng, "--run", str(spec.image), "--verbose", "--disable-monitor", "--force-9p"]
    if spec.accel == "tcg" or spec.measure == "cost":
        argv.append("--disable-kvm")
    if spec.qemu:
        argv += ["--qemu", spec.qemu]
    argv += ["--cpus", str(spec.cpus), "--memory", f"{spec.memory_mb}M"]
    if spec.root is not None:
        argv += ["--root", str(spec.root)]
    argv += [f"--rwdir={d}" for d in spec.rw_dirs]
    for share in spec.shares:
        argv.append(f"--{'rwdir' if share.writable else 'rodir'}={share.guest}={share.host}")
    # virtme-ng takes --cwd as a host path inside the root
    argv += ["--cwd", str(spec.root / str(spec.cwd).lstrip("/") if spec.root else spec.cwd)]
    for word in appended_words(spec):
        argv += ["--append", word]
    argv += ["--exec", shlex.join(spec.exec_argv)]
    check_cmdline_length(spec)
    if spec.measure == "cost":
        accel_args: tuple[str, ...] = COST_QEMU_ARGS
    else:
        accel_args = TCG_QEMU_ARGS if spec.accel == "tcg" else ()
    # QEMU takes the last -initrd: this one, after virtme-ng's own
    initrd = ("-initrd", str(spec.initrd)) if spec.initrd else ()
    qemu_args = (*spec.qemu_args, *accel_args, *initrd)
    if qemu_args:
        argv.append("--qemu-opts=" + " ".join(shlex.quote(a) for a in qemu_args))
    return argv


def appended_words(spec: BootSpec) -> tuple[str, ...]:
    """The kernel command-line words the harness adds to virtme-ng's own."""
    words = (*BASE_APPEND, ROOT_9P_FLAGS, *(TCG_APPEND if spec.accel == "tcg" else ()))
    return (*words, *spec.append)


# x86's COMMAND_LINE_SIZE (with its NUL): the kernel cuts a longer line, and what is cut
# is virtme-ng's init= at the end, so the guest cannot start the agent.
COMMAND_LINE_MAX = 2047
# virtme-ng's own words around ours (hostname, overlays, console, root flags ...): 456
# bytes measured (virtme-ng 1.x dry run); init=, shared directories and the module link
# are counted from their paths.
VNG_OWN_BYTES = 470


def cmdline_estimate(spec: BootSpec) -> int:
    """About how long (never shorter than) the kernel command line virtme-ng will build."""
    size = VNG_OWN_BYTES + len(" ".join(appended_words(spec)))
    size += len(base64.b64encode(shlex.join(spec.exec_argv).encode())) + 14  # virtme.exec=`..`
    size += len(spec.vng) + 60  # init=VENV/lib/pythonX.Y/site-packages/virtme/guest/bin/...
    # virtme_initmountN=PATH virtme_initmountN_fstype=9p virtme_initmountN_access=rw
    size += sum(len(str(d)) + 75 for d in spec.rw_dirs)
    size += sum(len(sh.guest) + 75 for sh in spec.shares)
    kernel_tree = spec.image.parent.parent
    if (kernel_tree / "lib" / "modules").is_dir():
        # a kernel with modules: virtme_link_mods=TREE/lib/modules/RELEASE, and virtme-ng's
        # initramfs mounts the root, so no rootfstype=9p rootflags=... raid=... ro (96 bytes)
        size += len(str(kernel_tree)) + 60 - 96
    return size


def check_cmdline_length(spec: BootSpec) -> None:
    """UserError when the guest's command line would be cut (the guest would not start)."""
    size = cmdline_estimate(spec)
    if size > COMMAND_LINE_MAX:
        raise UserError(
            f"the guest kernel's command line would be about {size} bytes, over Linux's "
            f"{COMMAND_LINE_MAX + 1}: give a shorter --out path (or fewer --append words)"
        )


def vng_env(vng: str, base: dict[str, str]) -> dict[str, str]:
    """vng starts virtme-run through a shell by name, so its directory must be on PATH."""
    env = dict(base)
    env["PATH"] = f"{Path(vng).parent}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    return env


def agent_argv(python: str, agent: Path, plan: Path, results: Path) -> tuple[str, ...]:
    """How the guest (or the host, in host mode) starts the agent."""
    return (python, str(agent), "--plan", str(plan), "--results", str(results))
