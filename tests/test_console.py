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

DATA = Path(__file__).parent / "data" / "console"


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
