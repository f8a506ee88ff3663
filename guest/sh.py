"""Running commands inside the guest: argv lists only, hard timeouts, process groups killed.

The guest cannot import harness/ (stdlib only, maybe a different tree), so this is the
agent's small twin of harness/proc.py.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)

SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class CommandError(Exception):
    """A command exited non-zero or timed out; the message carries the stderr tail."""

    def __init__(self, argv: Sequence[str], rc: int | None, output: str) -> None:
        tail = " | ".join(output.strip().splitlines()[-4:])
        what = "timed out" if rc is None else f"exited {rc}"
        super().__init__(f"{' '.join(argv[:4])} {what}: {tail}")
        self.argv = list(argv)
        self.rc = rc
        self.output = output


def uptime() -> float:
    """Seconds since the kernel started (the boot benchmark splits the boot with it)."""
    try:
        with open("/proc/uptime") as fh:
            return float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


def _which_in(tool: str, path: str) -> str | None:
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory, tool)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def which(tool: str) -> str | None:
    """Absolute path of `tool`, also looking in the sbin directories PATH may lack.
    (shutil.which would do, but importing shutil loads the bz2 and lzma extensions and
    their libraries over 9p at every agent start.)"""
    if os.sep in tool:
        return tool if os.path.isfile(tool) and os.access(tool, os.X_OK) else None
    return _which_in(tool, os.environ.get("PATH") or os.defpath) or _which_in(tool, SBIN_PATH)


def _kill_group(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        for _ in range(40):
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def run(argv: Sequence[str], *, timeout: float = 120, check: bool = True) -> tuple[int, str]:
    """Run argv (never a shell string); return (rc, stdout+stderr).

    The child gets its own session so that a timeout, SIGTERM or step timeout (an exception
    raised in this thread) kills it and everything it started.
    """
    argv = [str(a) for a in argv]
    log.debug("run: %s", argv)
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":" + SBIN_PATH, LC_ALL="C")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, _ = proc.communicate()
        raise CommandError(argv, None, out or "") from None
    except BaseException:
        _kill_group(proc.pid)
        proc.communicate()
        raise
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, out or "")
    return proc.returncode, out or ""


def read_text(path: str, default: str | None = None) -> str | None:
    """The stripped content of a (sysfs/procfs) file, or `default` when it can't be read."""
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return default


def write_text(path: str, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)
