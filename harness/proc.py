"""The one place that starts external programs, times them out and cleans them up.

Every child runs in its own session so that it and everything it spawned (vng -> qemu)
can be killed as a group, on timeout, on error and on Ctrl-C.
"""

import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from harness.errors import InfraError, MissingToolError

log = logging.getLogger(__name__)


def require_tool(tool: str, package: str | None = None) -> str:
    """Return the absolute path of `tool`, or raise MissingToolError naming the package."""
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        raise MissingToolError(tool, package)
    return path


# What every run needs on this host, with the Debian package that provides it: the guest
# runs on the host's root filesystem, so fio and mkfs.xfs come from here too.
RUN_TOOLS = (("fio", "fio"), ("mkfs.xfs", "xfsprogs"), ("losetup", "util-linux"))
VM_TOOLS = (("qemu-system-x86_64", "qemu-system-x86"), *RUN_TOOLS)


def require_tools(tools: Sequence[tuple[str, str]]) -> None:
    """Check (tool, package) pairs up front: the first missing one is a MissingToolError
    naming its package, before anything is built or booted."""
    for tool, package in tools:
        require_tool(tool, package)


def process_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, stat fields after the parenthesised command: state, ppid, pgrp, ...) of every
    process in /proc; processes that vanish while being read are left out."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        yield int(entry.name), stat[stat.rindex(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`, from /proc."""
    members = []
    for pid, fields in process_stats():
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(pid)
    return members


def kill_group(pgid: int, grace_s: float = 3.0) -> None:
    """SIGTERM process group `pgid`, then SIGKILL what is left after `grace_s`.

    Zombies do not count as left: the leader may be our own unreaped child.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not group_members(pgid):
            return
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and group_members(pgid):
            time.sleep(0.05)


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    check: bool = True,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv (a list, never a shell string) with a hard timeout.

    Output is captured (or appended to `log_path` when given). On timeout the whole
    process group is killed and InfraError names the command. With check=True a non-zero
    exit raises InfraError carrying the tail of stderr.
    """
    argv = [str(a) for a in argv]
    log.debug("run: %s", argv)
    out_fh = open(log_path, "a") if log_path else None  # noqa: SIM115 - closed in finally
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=out_fh or subprocess.PIPE,
            stderr=subprocess.STDOUT if out_fh else subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if out_fh:
            out_fh.close()
        raise MissingToolError(argv[0]) from exc
    try:
        stdout, stderr = proc.communicate(input=input_text, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        kill_group(proc.pid)
        proc.communicate()
        raise InfraError(f"{argv[0]} timed out after {timeout:.0f}s: {' '.join(argv)}") from exc
    except BaseException:
        kill_group(proc.pid)
        proc.communicate()
        raise
    finally:
        if out_fh:
            out_fh.close()
    result = subprocess.CompletedProcess(argv, proc.returncode, stdout or "", stderr or "")
    if check and proc.returncode != 0:
        raise _exit_error(result, log_path)
    return result


def _exit_error(result: subprocess.CompletedProcess[str], log_path: Path | None) -> InfraError:
    """The error for a command that exited non-zero: its start, code, log and output tail."""
    where = f"; log: {log_path}" if log_path else ""
    tail = (result.stderr or result.stdout or "").strip().splitlines()[-5:]
    head = " ".join(result.args[:3])
    return InfraError(f"{head}... exited {result.returncode}{where}: " + " | ".join(tail))


def run_retrying(
    argv: Sequence[str], *, attempts: int = 3, backoff_s: float = 30.0, **kwargs
) -> subprocess.CompletedProcess[str]:
    """run() for transient failures (an apt mirror mid-sync, a device still busy): up to
    `attempts` tries, waiting backoff_s, 2*backoff_s, ... between them; the last failure
    is raised with the number of tries in its message."""
    for attempt in range(1, attempts + 1):
        try:
            return run(argv, **kwargs)
        except MissingToolError:
            raise
        except InfraError as exc:
            if attempt == attempts:
                raise InfraError(f"{exc} (failed {attempts} times)") from exc
            wait = backoff_s * attempt
            log.warning("%s failed (%s); retrying in %.0fs", argv[0], exc, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")
