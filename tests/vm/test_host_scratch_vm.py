"""Host mode's scratch directory (issue #24 item 4): the agent writes there as root, so the
directory must be the user's alone; each run gets a fresh locked subdirectory; images are
never opened through a link or over an existing file; a SIGKILLed run's loop devices,
maps and mounts are torn down by the next run."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from guest.targets import make_file
from harness import proc
from harness.errors import UserError
from harness.kernel.model import Kernel
from harness.run import scratch
from harness.run.host import HostExecutor
from harness.run.request import RunRequest

HOST = Kernel("host", None, os.uname().release)


def _prepared(tmp_path: Path, scratch_dir: Path) -> tuple[HostExecutor, Path]:
    """A host executor through plan() and prepare(), and the workdir its plan names."""
    req = RunRequest("host", tmp_path / "out", scratch=scratch_dir)
    executor = HostExecutor()
    plan = executor.plan(req, HOST)
    executor.prepare(req, HOST, plan, tmp_path)
    return executor, Path(plan.workdir)


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o1777])
def test_a_scratch_directory_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    shared = tmp_path / "scratch"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(UserError, match="writable.*chmod go-w"):
        _prepared(tmp_path, shared)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_scratch_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "scratch"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(UserError, match="belongs to uid 65534"):
        _prepared(tmp_path, theirs)


def test_each_run_works_in_a_fresh_private_directory_under_a_lock(tmp_path: Path) -> None:
    mine = tmp_path / "scratch"
    first, work1 = _prepared(tmp_path, mine)
    assert work1.parent == mine.resolve() and work1.is_dir()
    assert (work1.stat().st_mode & 0o777) == 0o700 and str(os.getpid()) in work1.name
    with pytest.raises(UserError, match="in use by another harness run"):
        _prepared(tmp_path, mine)
    first.teardown(RunRequest("host", tmp_path / "out"))
    second, work2 = _prepared(tmp_path, mine)
    assert work2 != work1 and not work1.exists()
    second.teardown(RunRequest("host", tmp_path / "out"))
    assert list(mine.iterdir()) == []


def test_an_image_is_never_created_through_a_link_or_over_a_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "img.raw"
    link.symlink_to(victim)
    with contextlib.ExitStack() as stack, pytest.raises(OSError):
        make_file(str(link), 1 << 20, "sparse", stack)
    with contextlib.ExitStack() as stack, pytest.raises(FileExistsError):
        make_file(str(victim), 1 << 20, "sparse", stack)
    assert victim.read_bytes() == b"precious" and link.is_symlink()


def test_leftover_parsers() -> None:
    dirs = [Path("/s/run-1-ab")]
    listed = json.dumps(
        {
            "loopdevices": [
                {"name": "/dev/loop2", "back-file": "/s/run-1-ab/img/t-0.img"},
                {"name": "/dev/loop10", "back-file": "/s/run-1-ab/mnt/t-0/backing.img"},
                {"name": "/dev/loop3", "back-file": "/s/run-1-abc/img/t-0.img"},
                {"name": "/dev/loop4", "back-file": None},
            ]
        }
    )
    assert scratch.loops_under(listed, dirs) == ["/dev/loop10", "/dev/loop2"]
    info = (
        "36 35 98:0 / /s/run-1-ab/mnt/a\\040b rw - xfs /dev/loop2 rw\n"
        "37 36 98:0 / /s/run-1-ab/mnt/a\\040b/inner rw - xfs /dev/loop10 rw\n"
        "38 35 98:0 / /s/other rw - xfs /dev/loop3 rw\n"
        "39 35 98:0 / /s/run-1-ab/mnt/t-inner-1 rw - xfs /dev/loop11 rw\n"
    )
    # t-inner-1's loop file lies in "a b"'s filesystem (a nested loop): it goes first
    assert scratch.mounts_under(info, dirs) == [
        "/s/run-1-ab/mnt/t-inner-1",
        "/s/run-1-ab/mnt/a b/inner",
        "/s/run-1-ab/mnt/a b",
    ]
    dead = _dead_pid()
    ls = f"harness-{dead}-0\t(253:0)\nharness-{dead}-1\t(253:1)\nharness-{os.getpid()}-0\t(253:2)\n"
    deps = {
        f"harness-{dead}-0": ["loop2"],
        f"harness-{dead}-1": ["loop3"],
        f"harness-{os.getpid()}-0": ["loop2"],
    }
    assert scratch.stale_dm_names(ls, deps, ["/dev/loop2"]) == [f"harness-{dead}-0"]


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _attached(path: Path) -> str:
    return proc.run(["losetup", "-f", "--show", str(path)], timeout=30).stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices and mounts")
def test_a_killed_runs_loops_and_mounts_are_torn_down_by_the_next(tmp_path: Path) -> None:
    mine = tmp_path / "scratch"
    mine.mkdir(mode=0o700)
    dead = mine / f"run-{_dead_pid()}-0badc0de"
    live = mine / f"run-{os.getpid()}-1badc0de"  # a run still going: left alone
    loops: list[str] = []
    try:
        for run_dir in (dead, live):
            (run_dir / "img").mkdir(parents=True)
            image = run_dir / "img" / "t-0.img"
            image.write_bytes(b"\0" * (4 << 20))
            loops.append(_attached(image))
        mnt = dead / "mnt" / "t-0"
        mnt.mkdir(parents=True)
        proc.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], timeout=30)
        (mnt / "backing.img").write_bytes(b"\0" * (2 << 20))
        loops.append(_attached(mnt / "backing.img"))  # a loop on a file in a mount
        executor, work = _prepared(tmp_path, mine)
        listed = proc.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], timeout=30).stdout
        assert str(dead) not in listed and str(live) in listed
        assert str(dead) not in Path("/proc/self/mountinfo").read_text()
        assert not dead.exists() and live.exists() and work.exists()
        executor.teardown(RunRequest("host", tmp_path / "out"))
        assert not work.exists() and live.exists()
    finally:
        for dev in loops:
            proc.run(["losetup", "-d", dev], timeout=30, check=False)
        proc.run(["umount", "-l", str(dead / "mnt" / "t-0")], timeout=30, check=False)
