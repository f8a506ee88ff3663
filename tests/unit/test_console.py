"""Console supervision against real processes: markers, timeouts, panics, group kill.

The supervised program here is a small Python script standing in for the VM's console
stream (the real VM is exercised in test_vm_integration.py); what is under test is the
supervisor's reading, deadlines and cleanup, which are the same for any child.
"""

import os
import sys
import time
from pathlib import Path

from harness.vm.console import Timeouts, supervise
from harness.vm.faults import FaultLimits

DATA = Path(__file__).parents[1] / "data" / "console"


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "child.py"
    path.write_text(
        "import json, sys, time, subprocess\n"
        "def m(**e): print('@@HARNESS ' + json.dumps(e), flush=True)\n" + body
    )
    return [sys.executable, str(path)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_done_marker_ends_the_run(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        "m(event='begin', id='s1', timeout_s=5)\nprint('noise')\n"
        "m(event='end', id='s1', status='pass')\nm(event='done', rc=0)\n",
    )
    out = supervise(argv, tmp_path / "console.log", Timeouts(boot_s=20))
    assert out.reason == "done" and out.agent_rc == 0
    assert out.steps_begun == ("s1",) and out.steps_ended == {"s1": "pass"}
    assert "noise" in (tmp_path / "console.log").read_text()


def test_step_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    argv = script(
        tmp_path,
        f"p = subprocess.Popen(['sleep', '300'])\n"
        f"open('{pidfile}', 'w').write(str(p.pid))\n"
        "m(event='begin', id='hang', timeout_s=1)\ntime.sleep(300)\n",
    )
    t0 = time.monotonic()
    out = supervise(argv, tmp_path / "console.log", Timeouts(boot_s=20, step_grace_s=1))
    assert out.reason == "step-timeout" and out.running_step == "hang"
    assert time.monotonic() - t0 < 30
    assert not alive(int(pidfile.read_text()))
    assert "@@HOST step-timeout" in (tmp_path / "console.log").read_text()


def test_boot_timeout_without_any_marker(tmp_path: Path) -> None:
    argv = script(tmp_path, "print('booting...', flush=True)\ntime.sleep(300)\n")
    out = supervise(argv, tmp_path / "console.log", Timeouts(boot_s=2))
    assert out.reason == "boot-timeout" and out.first_marker_s is None


def test_silence_watchdog(tmp_path: Path) -> None:
    argv = script(tmp_path, "m(event='begin', id='s', timeout_s=600)\ntime.sleep(300)\n")
    out = supervise(argv, tmp_path / "console.log", Timeouts(boot_s=20, silence_s=2))
    assert out.reason == "silence"


def test_recorded_panic_is_fatal_and_attributed_to_its_step(tmp_path: Path) -> None:
    crash = next(p for p in sorted(DATA.glob("*.log")) if "sysrq" in p.name)
    argv = script(
        tmp_path,
        "m(event='begin', id='crashing', timeout_s=600)\n"
        f"sys.stdout.write(open('{crash}').read()); sys.stdout.flush()\n"
        "time.sleep(300)\n",
    )
    out = supervise(argv, tmp_path / "console.log", Timeouts(boot_s=20))
    assert out.reason == "panic"
    kinds = {s.kind for s in out.splats}
    assert "panic" in kinds
    assert set(out.splat_steps) == {"crashing"}


def test_eof_before_the_agent(tmp_path: Path) -> None:
    argv = script(tmp_path, "print('qemu: could not open disk image', flush=True)\n")
    out = supervise(argv, tmp_path / "console.log", Timeouts(boot_s=20))
    assert out.reason == "eof" and out.first_marker_s is None
    assert out.last_words == "qemu: could not open disk image"


def test_a_guest_that_cannot_start_the_agent_says_why(tmp_path: Path) -> None:
    # Recorded: HARNESS_CACHE_DIR under /var/cache, which virtme-ng hides under a tmpfs
    argv = script(tmp_path, _cat(DATA / "agent-unreachable.log"))
    out = supervise(argv, tmp_path / "console.log", Timeouts(boot_s=20))
    assert out.reason == "eof" and out.first_marker_s is None
    assert out.last_words.startswith("/usr/bin/python3: can't open file '/var/cache/"), out


def test_last_words_are_forgotten_once_the_agent_speaks(tmp_path: Path) -> None:
    body = "print('warming up', flush=True)\nm(event='start')\nprint('x')\nm(event='done', rc=0)\n"
    out = supervise(script(tmp_path, body), tmp_path / "console.log", Timeouts(boot_s=20))
    assert out.reason == "done" and out.last_words == ""


# --- kernel faults end the run fast (harness.vm.faults) -------------------------------

FAST = FaultLimits(oops_grace_s=2.0, hang_grace_s=1.0, dump_drain_s=3.0)


def _cat(path: Path) -> str:
    return f"sys.stdout.write(open('{path}').read()); sys.stdout.flush()\n"


def test_oops_in_a_step_ends_it_within_the_grace(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        "m(event='begin', id='loop', timeout_s=600)\n"
        + _cat(DATA / "oops-null.log")
        + "time.sleep(300)\n",
    )
    t0 = time.monotonic()
    out = supervise(argv, tmp_path / "console.log", Timeouts(boot_s=20, faults=FAST))
    assert out.reason == "oops" and out.fault_step == "loop" and out.fault_kind == "oops"
    assert time.monotonic() - t0 < 15
    assert "loop" in out.splat_steps


def test_a_step_that_finishes_after_its_oops_stops_the_run_at_once(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        "m(event='begin', id='loop', timeout_s=600)\n"
        + _cat(DATA / "oops-null.log")
        + "m(event='end', id='loop', status='pass')\nm(event='begin', id='next', timeout_s=9)\n"
        "time.sleep(300)\n",
    )
    out = supervise(argv, tmp_path / "console.log", Timeouts(boot_s=20, faults=FAST))
    assert out.reason == "oops" and out.fault_step == "loop"
    assert out.steps_ended == {"loop": "pass"}


# SAMPLE: a sysrq-w dump in 6.12's format (sched_show_task), one loop worker in D state.
BLOCKED_DUMP = """[  61.2] sysrq: Show Blocked State
[  61.2] task:kworker/u8:3    state:D stack:0     pid:61    tgid:61    ppid:2      flags:0x00004000
[  61.2] Workqueue: loop0 loop_workfn
[  61.2] Call Trace:
[  61.2]  <TASK>
[  61.2]  __schedule+0x3b0/0xbe0
[  61.2]  schedule+0x27/0xa0
[  61.2]  loop_harness_maybe_hang+0x8c/0xc0
[  61.2]  lo_rw_aio+0x2d5/0x360
[  61.2]  loop_process_work+0x1a3/0x400
[  61.2]  </TASK>
"""


def test_hung_task_asks_for_a_blocked_task_dump_before_stopping(tmp_path: Path) -> None:
    request = tmp_path / "sysrq-request"
    (tmp_path / "dump.log").write_text(BLOCKED_DUMP)
    argv = script(
        tmp_path,
        "m(event='begin', id='write', timeout_s=600)\n"
        + _cat(DATA / "hung-task.log")
        + f"while not __import__('os').path.exists('{request}'): time.sleep(0.1)\n"
        + _cat(tmp_path / "dump.log")
        + "time.sleep(300)\n",
    )
    out = supervise(
        argv,
        tmp_path / "console.log",
        Timeouts(boot_s=20, faults=FAST),
        request_dump=lambda: request.write_text("w"),
    )
    assert out.reason == "hang" and out.fault_step == "write"
    assert out.dump_requested and out.dump_answered
    assert "blocked_tasks" in {s.kind for s in out.splats}


def test_a_step_timeout_nobody_answers_is_unresponsive(tmp_path: Path) -> None:
    argv = script(tmp_path, "m(event='begin', id='s', timeout_s=1)\ntime.sleep(300)\n")
    timeouts = Timeouts(boot_s=20, step_grace_s=1, faults=FAST)
    out = supervise(argv, tmp_path / "console.log", timeouts, request_dump=lambda: None)
    assert out.reason == "unresponsive" and out.running_step == "s"
    assert out.dump_requested and not out.dump_answered


def test_an_agent_timeout_dump_with_nothing_blocked_lets_the_run_go_on(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        "m(event='begin', id='slow', timeout_s=600)\n"
        "m(event='blocked-dump', id='slow', why='timeout')\n"
        "print('[  9.1] sysrq: Show Blocked State', flush=True)\ntime.sleep(2)\n"
        "m(event='end', id='slow', status='error')\nm(event='done', rc=1)\n",
    )
    out = supervise(argv, tmp_path / "console.log", Timeouts(boot_s=20, faults=FAST))
    assert out.reason == "done" and out.splats == ()


def test_a_task_reported_once_that_runs_on_is_a_stall_not_a_hang(tmp_path: Path) -> None:
    lines = (DATA / "hung-task.log").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if "blocked for more than" in line)
    (tmp_path / "stall.log").write_text("\n".join(lines[first : first + 29]) + "\n")
    argv = script(
        tmp_path,
        "m(event='begin', id='write', timeout_s=600)\n"
        + _cat(tmp_path / "stall.log")
        + "time.sleep(3)\nm(event='end', id='write', status='pass')\nm(event='done', rc=0)\n",
    )
    out = supervise(
        argv, tmp_path / "console.log", Timeouts(boot_s=20, faults=FAST), request_dump=lambda: None
    )
    assert out.reason == "done" and out.splats == () and not out.dump_requested
    assert [s.kind for s in out.stalls] == ["hung_task"] and out.stall_steps == ("write",)


def test_an_agent_timeout_dump_listing_a_task_is_a_diagnostic_when_the_run_goes_on(
    tmp_path: Path,
) -> None:
    """A fio caught in D state (waiting on I/O) by the dump the agent takes at its own step
    timeout is not hung: the agent stopped it and went on (recorded in a real 6.12 run)."""
    (tmp_path / "dump.log").write_text(BLOCKED_DUMP)
    argv = script(
        tmp_path,
        "m(event='begin', id='slow', timeout_s=600)\n"
        "m(event='blocked-dump', id='slow', why='timeout')\n"
        + _cat(tmp_path / "dump.log")
        + "time.sleep(2)\nm(event='end', id='slow', status='error')\n"
        "m(event='begin', id='next', timeout_s=600)\nm(event='end', id='next', status='pass')\n"
        "m(event='done', rc=1)\n",
    )
    out = supervise(
        argv, tmp_path / "console.log", Timeouts(boot_s=20, faults=FAST), request_dump=lambda: None
    )
    assert out.reason == "done" and out.splats == ()
    assert [s.kind for s in out.stalls] == ["blocked_tasks"] and out.stall_steps == ("slow",)
    assert out.steps_ended == {"slow": "error", "next": "pass"}
