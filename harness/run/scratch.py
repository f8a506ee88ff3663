"""Host mode's scratch directory: the one place the agent writes, as root, on the host.

The directory must belong to the invoking user and be writable by no one else (or nobody
could be kept from planting a symlink where the agent creates an image). Each run works in
a fresh subdirectory `run-PID-RANDOM` (PID: the harness's; the agent adds its own in
`agent.pid`), under an exclusive flock on the scratch directory. A run that was SIGKILLed
leaves its loop devices, device-mapper maps (named `harness-AGENTPID-N` by the agent) and
mounts behind: the next run on the same scratch directory tears down those of runs whose
processes are gone before it starts, and every run tears down its own at the end.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import UserError

log = logging.getLogger(__name__)

RUN_DIR_RE = re.compile(r"^run-(\d+)-[0-9a-f]+$")
DM_NAME_RE = re.compile(r"^harness-(\d+)-\d+$")  # guest/targets.py names its maps so
AGENT_PID_FILE = "agent.pid"  # written by guest/agent.py in host mode


def check_scratch(path: Path) -> Path:
    """The resolved scratch directory (made 0700 if missing); UserError unless it is a
    directory owned by this user that neither group nor others may write."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)
    real = path.resolve()
    st = os.lstat(real)
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"--scratch {real} is not a directory: give a directory of your own")
    if st.st_uid != os.geteuid():
        raise UserError(
            f"--scratch {real} belongs to uid {st.st_uid}, not you (uid {os.geteuid()}): "
            "the agent writes there as root; chown it or give a directory of your own"
        )
    if st.st_mode & 0o022:
        raise UserError(
            f"--scratch {real} is group or world writable (mode {st.st_mode & 0o777:o}): "
            "others could plant links where the agent writes as root; chmod go-w it"
        )
    return real


def new_run_dir_name() -> str:
    return f"run-{os.getpid()}-{secrets.token_hex(4)}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _agent_pid(run_dir: Path) -> int | None:
    try:
        fd = os.open(run_dir / AGENT_PID_FILE, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd) as fh:
        text = fh.read(32).strip()
    return int(text) if text.isdigit() else None


def stale_run_dirs(scratch: Path) -> list[Path]:
    """Run directories whose harness and agent processes are both gone."""
    stale = []
    for entry in sorted(scratch.iterdir()):
        match = RUN_DIR_RE.match(entry.name)
        if not match or entry.is_symlink() or not entry.is_dir():
            continue
        agent = _agent_pid(entry)
        if not pid_alive(int(match.group(1))) and not (agent and pid_alive(agent)):
            stale.append(entry)
    return stale


def _under(path: str, dirs: Iterable[Path]) -> bool:
    return any(path == str(d) or path.startswith(f"{d}/") for d in dirs)


def loops_under(losetup_json: str, dirs: Sequence[Path]) -> list[str]:
    """Loop devices (from `losetup --list --json -O NAME,BACK-FILE`) backed by files under
    `dirs`, newest (highest number) first: a nested loop goes before the one beneath it."""
    devices = json.loads(losetup_json or "{}").get("loopdevices", [])
    found = [d["name"] for d in devices if _under(d.get("back-file") or "", dirs)]
    return sorted(found, key=lambda n: int(re.sub(r"\D", "", n) or 0), reverse=True)


def mounts_under(mountinfo: str, dirs: Sequence[Path]) -> list[str]:
    """Mount points (from /proc/self/mountinfo) under `dirs`, last mounted first (a mount
    is listed after the one it sits on, or whose files back its loop device)."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if _under(point, dirs):
                points.append(point)
    return points[::-1]


def stale_dm_names(dmsetup_ls: str, deps: dict[str, list[str]], loops: Sequence[str]) -> list[str]:
    """Maps named by a dead agent (harness-PID-N) that sit only on the given stale loops:
    a map of a run elsewhere (another scratch directory, another pid namespace) stays."""
    stale_loops = {os.path.basename(dev) for dev in loops}
    names = []
    for line in dmsetup_ls.splitlines():
        name = line.split("\t")[0].split(" ")[0]
        match = DM_NAME_RE.match(name)
        if not match or pid_alive(int(match.group(1))):
            continue
        if deps.get(name) and set(deps[name]) <= stale_loops:
            names.append(name)
    return names


def _dm_deps(names: Iterable[str]) -> dict[str, list[str]]:
    deps = {}
    for name in names:
        out = proc.run(["dmsetup", "deps", "-o", "devname", name], timeout=30, check=False)
        deps[name] = re.findall(r"\(([^)]+)\)", out.stdout.split(":", 1)[-1])
    return deps


def _stale_maps(loops: Sequence[str]) -> list[str]:
    if not loops or not shutil.which("dmsetup") or not os.path.exists("/dev/mapper/control"):
        return []
    listed = proc.run(["dmsetup", "ls"], timeout=30, check=False).stdout
    names = [line.split()[0] for line in listed.splitlines() if line.strip()]
    candidates = [name for name in names if DM_NAME_RE.match(name)]
    return stale_dm_names(listed, _dm_deps(candidates), loops)


def tear_down(dirs: Sequence[Path]) -> None:
    """Unmount, unmap and detach everything under `dirs`, then remove them. Loops are
    listed before unmounting: a lazily unmounted file's path no longer reads as under it."""
    if not dirs:
        return
    listed = proc.run(["losetup", "--list", "--json", "-O", "NAME,BACK-FILE"], timeout=30)
    loops = loops_under(listed.stdout, dirs)
    maps = _stale_maps(loops)
    for point in mounts_under(Path("/proc/self/mountinfo").read_text(), dirs):
        log.warning("unmounting %s, left by a run that is gone", point)
        if proc.run(["umount", point], timeout=60, check=False).returncode != 0:
            proc.run(["umount", "-l", point], timeout=60, check=False)
    for name in maps:
        log.warning("removing device-mapper map %s, left by a run that is gone", name)
        proc.run(["dmsetup", "remove", "--retry", name], timeout=60, check=False)
    for dev in loops:
        log.warning("detaching %s, left by a run that is gone", dev)
        proc.run(["losetup", "-d", dev], timeout=60, check=False)
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Claim:
    """A run's hold on the scratch directory: the flock'd descriptor and its run directory."""

    scratch: Path
    run_dir: Path
    fd: int

    def release(self) -> None:
        """Tear down what this run left (the agent normally has), drop the lock."""
        try:
            tear_down([self.run_dir])
        finally:
            os.close(self.fd)


def claim(scratch: Path, run_dir_name: str) -> Claim:
    """Check and lock `scratch`, tear down stale runs' leftovers, make the run directory
    (0700, never an existing name). UserError when another run holds the lock."""
    real = check_scratch(scratch)
    fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(
            f"--scratch {real} is in use by another harness run: wait for it, or give another"
        ) from None
    try:
        tear_down(stale_run_dirs(real))
        run_dir = real / run_dir_name
        run_dir.mkdir(mode=0o700)
    except BaseException:
        os.close(fd)
        raise
    return Claim(real, run_dir, fd)
