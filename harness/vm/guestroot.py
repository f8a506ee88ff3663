"""The guest's root filesystem: the host's own (read-only), or a minimal Debian root of its
own built once into the cache with mmdebstrap (docs/security.md says what each shows).

With the host's root a guest kernel can read everything the host's root can (/root/.ssh,
CI secrets, the user's trees) and copy it into console.log or the results a CI publishes.
The minimal root holds Debian's packages for what the agent and its checks run and nothing
of the host's; the guest then sees that root, the agent's code (staged into the root, see
stage_agent), the run's shared directory and the kernel's modules, nothing else.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from harness import proc
from harness.errors import InfraError, UserError
from harness.paths import cache_subdir

log = logging.getLogger(__name__)


class GuestRoot(StrEnum):
    HOST = "host"  # the host's root, read-only
    MINIMAL = "minimal"  # a cached minimal Debian root (mmdebstrap)


SUITE = "bookworm"
# What the agent, fio and the checks run in the guest (guest/agent.py TOOLS, guest/*.py):
# python3 (the agent), fio, mkfs.xfs/xfs_* (xfsprogs), mkfs.ext4/e2fsck/resize2fs
# (e2fsprogs), mkfs.btrfs (btrfs-progs), losetup/blkdiscard/fstrim/fallocate/lsblk/
# blockdev/mount (util-linux, mount), modprobe (kmod), dmsetup; busybox for virtme-ng's
# own initramfs (it looks for one in the root). minbase brings coreutils (cp) and bash
# (virtme-ng's init scripts).
PACKAGES = (
    "python3",
    "fio",
    "xfsprogs",
    "e2fsprogs",
    "btrfs-progs",
    "util-linux",
    "mount",
    "kmod",
    "dmsetup",
    "busybox",
)
# Directories the guest mounts things on: the 9p root is read-only, so they must exist in it.
SHARED_MOUNT = "/harness/shared"  # the run's shared directory (plan in, records out)
AGENTS_DIR = "/opt/harness"  # staged agents, one directory per guest-source digest
LAYOUT = 1  # bump when what ensure() adds after mmdebstrap changes
BUILD_TIMEOUT_S = 1800


def default_for(specs: Sequence[str], workflow: str) -> GuestRoot:
    """The guest root a run gets when none is asked for: minimal where the kernel carries
    code from outside (a +series= in any spec, or a backport, which always applies one),
    the host's otherwise. One decision for every spec of a workflow, so the sides of an
    A/B boot alike."""
    if workflow == "backport" or any("+series=" in spec for spec in specs):
        return GuestRoot.MINIMAL
    return GuestRoot.HOST


def parse(text: str | None, specs: Sequence[str], workflow: str) -> GuestRoot:
    """--guest-root's value (None: default_for) -> GuestRoot; anything else a usage error."""
    if text is None:
        return default_for(specs, workflow)
    try:
        return GuestRoot(text)
    except ValueError:
        names = ", ".join(g.value for g in GuestRoot)
        raise UserError(f"--guest-root {text!r}: use one of {names}") from None


def check_suites(guest_root: str, suites: Sequence[str]) -> None:
    """Peer suites (--suite) run from their builds in the host's cache with the host's
    tools, which the minimal root does not show: refuse the pair, naming the choice (the
    user then knowingly shows the guest the host's root)."""
    if suites and guest_root == GuestRoot.MINIMAL:
        raise UserError(
            "--suite runs blktests/fstests from the host's root (their builds and tools), "
            "which the minimal guest root hides: add --guest-root host to run them (the guest "
            "then sees the host's root, docs/security.md)"
        )


def root_key(suite: str, packages: Sequence[str]) -> str:
    text = "\0".join((suite, *sorted(packages), f"layout={LAYOUT}"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def mmdebstrap_argv(suite: str, packages: Sequence[str], dest: Path, mirror: str) -> list[str]:
    """The mmdebstrap command building the root into dest."""
    return [
        "mmdebstrap",
        "--variant=minbase",
        "--include=" + ",".join(packages),
        suite,
        str(dest),
        mirror,
    ]


@contextmanager
def locked(cache: Path) -> Iterator[None]:
    """One builder or stager at a time per cache (concurrent runs wait)."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def mounts_under(mountinfo: str, directory: Path) -> list[str]:
    """Mount points at or below `directory` in /proc/self/mountinfo text (its fifth field;
    octal escapes such as \\040 left as they are)."""
    prefix = str(directory).rstrip("/") + "/"
    points = (line.split()[4] for line in mountinfo.splitlines() if len(line.split()) > 4)
    return [p for p in points if p == prefix[:-1] or p.startswith(prefix)]


def remove_partial(tmp: Path) -> None:
    """Remove a half-built root, unless something is still mounted in it (mmdebstrap
    mounts /proc, /sys and device nodes into its chroot while it runs; one killed mid-way
    may leave them, and a recursive delete must never walk into them): then leave it and
    say so."""
    if not tmp.exists():
        return
    mounted = mounts_under(Path("/proc/self/mountinfo").read_text(), tmp)
    if mounted:
        log.warning(
            "left %s in place: still mounted there: %s (umount them, then remove it)",
            tmp,
            ", ".join(mounted),
        )
        return
    shutil.rmtree(tmp, ignore_errors=True)


def _build(dest: Path, mirror: str) -> None:
    """Build into DEST.tmp-PID and rename it into place; called under the cache's lock, so
    any other DEST.tmp-* is a build that died."""
    if shutil.which("mmdebstrap") is None:
        raise InfraError("mmdebstrap not found: apt-get install mmdebstrap (or --guest-root host)")
    for stale in dest.parent.glob(dest.name + ".tmp-*"):
        remove_partial(stale)
    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    log.info("building the minimal guest root %s (mmdebstrap %s, once)", dest.name, SUITE)
    out = proc.run(
        mmdebstrap_argv(SUITE, PACKAGES, tmp, mirror), timeout=BUILD_TIMEOUT_S, check=False
    )
    if out.returncode != 0:
        remove_partial(tmp)
        tail = " | ".join((out.stderr or out.stdout).strip().splitlines()[-3:])
        raise InfraError(
            f"mmdebstrap could not build the minimal guest root: {tail}; check apt's mirror "
            "and disk space, or run with --guest-root host"
        )
    for sub in (SHARED_MOUNT, AGENTS_DIR, "/usr/lib/modules"):
        (tmp / sub.lstrip("/")).mkdir(parents=True, exist_ok=True)
    tmp.rename(dest)


def ensure(mirror: Callable[[str], str | None], cache: Path | None = None) -> Path:
    """The cached minimal root directory, built when missing (under the cache's lock) from
    the Debian archive `mirror(SUITE)` names (the host's apt sources: never a name written
    here)."""
    cache = cache or cache_subdir("guest-root")
    dest = cache / f"{SUITE}-{root_key(SUITE, PACKAGES)}"
    if dest.is_dir():
        return dest
    with locked(cache):
        if not dest.is_dir():
            uri = mirror(SUITE)
            if uri is None:
                raise InfraError(
                    f"no Debian '{SUITE}' archive in /etc/apt sources to build the minimal "
                    "guest root from: add one, or run with --guest-root host"
                )
            _build(dest, uri)
    return dest


@dataclass(frozen=True)
class StagedAgent:
    """The agent as the minimal root holds it: how the guest starts it (argv before
    --plan/--results, in guest paths) and the root's fio version (the guest runs that one,
    not the host's)."""

    argv: tuple[str, ...]
    package: str  # the guest package's directory
    fio_version: str


def agent_digest(guest_dir: Path) -> str:
    """The guest package's files, by name and content."""
    h = hashlib.sha256()
    for path in sorted(p for p in guest_dir.rglob("*") if p.is_file() and _wanted(p)):
        h.update(str(path.relative_to(guest_dir)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _wanted(path: Path) -> bool:
    return "__pycache__" not in path.parts and path.suffix in (".py", ".sh", ".c")


def bundle_argv(root: Path, agent_dir: str) -> list[str]:
    """The agent bundle built by the root's own python3 (guest/boot/bundle_build.py), so its
    bytecode is the interpreter's that runs it; paths are the guest's."""
    return [
        "chroot",
        str(root),
        "/usr/bin/python3",
        "-S",
        "-E",
        f"{agent_dir}/guest/boot/bundle_build.py",
        f"{agent_dir}/guest",
        agent_dir,
        "agent",
    ]


def _stage(root: Path, guest_dir: Path, agent_dir: str) -> tuple[str, str]:
    """Copy the guest package into the root and bundle it there: (how it starts, fio)."""
    dest = root / agent_dir.lstrip("/")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(guest_dir, dest / "guest", ignore=shutil.ignore_patterns("__pycache__"))
    built = proc.run(bundle_argv(root, agent_dir), timeout=300, check=False)
    start = "bundle" if built.returncode == 0 else "source"
    if start == "source":  # not root (chroot), or a builder failure: slower, same agent
        log.warning(
            "agent bundle not built in the minimal root (%s): the agent starts from source",
            (built.stderr or built.stdout).strip()[-200:],
        )
    fio = proc.run(["chroot", str(root), "fio", "--version"], timeout=60, check=False)
    return start, fio.stdout.strip() if fio.returncode == 0 else ""


def stage_agent(root: Path, guest_dir: Path) -> StagedAgent:
    """The guest package staged into the minimal root (once per guest-source digest, under
    the cache's lock): the guest sees it at AGENTS_DIR/agent-DIGEST."""
    agent_dir = f"{AGENTS_DIR}/agent-{agent_digest(guest_dir)}"
    ready = root / agent_dir.lstrip("/") / "ready"
    if not ready.is_file():
        with locked(root.parent):
            if not ready.is_file():
                start, fio = _stage(root, guest_dir, agent_dir)
                ready.write_text(f"{start}\n{fio}\n")
    start, _, fio = ready.read_text().partition("\n")
    flags = ("-S", "-E")
    if start.strip() == "bundle":
        argv: tuple[str, ...] = ("/usr/bin/python3", *flags, f"{agent_dir}/agent.py")
    else:
        argv = ("/usr/bin/python3", *flags, f"{agent_dir}/guest/agent.py")
    return StagedAgent(argv, f"{agent_dir}/guest", fio.strip())


def modules_mount(root: Path, release: str) -> str:
    """The guest path a kernel's modules tree is mounted on in the minimal root (virtme-ng
    looks for a --root's modules in the root itself); its mount point made here."""
    guest = f"/usr/lib/modules/{release}"
    (root / guest.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return guest
