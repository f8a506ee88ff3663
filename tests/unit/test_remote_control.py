"""The remote run's process control, run here: the session wrapper keeps the exit status and
writes the group id; the stop script ends the whole group (a child too), with KILL after its
grace when TERM is ignored."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from harness.run import remote
from harness.run.remote_control import run_timeout_s, session_argv, stop_argv
from harness.vm.console import Timeouts


def test_session_argv_is_setsid_wait_with_the_pidfile() -> None:
    assert session_argv("/r/harness.pgid", ["h", "run"]) == [
        "setsid",
        "-w",
        "sh",
        "-c",
        'echo $$ > "$0" && exec "$@"',
        "/r/harness.pgid",
        "h",
        "run",
    ]
    assert run_timeout_s(Timeouts(total_s=100.0)) == 200.0 + 3600.0


def test_the_wrapper_keeps_the_exit_status(tmp_path: Path) -> None:
    pidfile = tmp_path / "pg"
    done = subprocess.run(session_argv(str(pidfile), ["sh", "-c", "exit 7"]), timeout=30)
    assert done.returncode == 7 and pidfile.read_text().strip().isdigit()


def test_stop_ends_the_group_and_its_children(tmp_path: Path) -> None:
    pidfile, pids = tmp_path / "pg", tmp_path / "pids"
    script = f'trap "" TERM; sleep 300 & echo $! > {pids}; wait'  # both ignore TERM: KILL
    proc = subprocess.Popen(session_argv(str(pidfile), ["sh", "-c", script]))
    try:
        for _ in range(100):
            if pids.exists() and pids.read_text().strip():
                break
            time.sleep(0.1)
        child = int(pids.read_text())
        t0 = time.monotonic()
        assert subprocess.run(stop_argv(str(pidfile), grace_s=1), timeout=60).returncode == 0
        assert proc.wait(10) != 0 and time.monotonic() - t0 < 15
        assert not Path(f"/proc/{child}").exists() or "Z" in _state(child)
        # nothing left to stop: still exit 0, at once
        assert subprocess.run(stop_argv(str(pidfile), grace_s=1), timeout=30).returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_status_less_end_past_the_deadline_is_the_timeout() -> None:
    """invoke's timer closes the channel, and run() can return exit -1 before invoke's
    timed_out sees the timer done (CI: 'ended without an exit status (-1)' at 3 s)."""
    started = time.monotonic() - 3.2
    assert remote._killed_by_timer(-1, started, 3.0)
    assert not remote._killed_by_timer(-1, time.monotonic(), 3.0)  # a dropped link
    assert not remote._killed_by_timer(0, started, 3.0)  # it ended, late
