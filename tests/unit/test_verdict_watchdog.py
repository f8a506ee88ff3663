"""The agent's watchdog thread (guest/watchdog.py): it asks for a blocked-task dump when a
step passes its timeout and when the host drops a request file, and says so on the
console. Real thread and files; the sysrq-trigger path points at a file here (writing the
host's own /proc/sysrq-trigger from a test would dump the host's tasks)."""

from __future__ import annotations

import time
from pathlib import Path

from guest.watchdog import REQUEST, Watchdog


def wait_for(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_dumps_at_the_step_timeout_once_and_on_host_request(tmp_path: Path) -> None:
    sysrq = tmp_path / "sysrq-trigger"
    events: list[dict] = []
    dog = Watchdog(str(tmp_path), events.append, sysrq=str(sysrq))
    dog.start()
    try:
        dog.arm("fio/loop", 0.3)
        assert wait_for(lambda: len(events) == 1)
        assert sysrq.read_text() == "w"
        assert events[0] == {"event": "blocked-dump", "id": "fio/loop", "why": "timeout"}
        time.sleep(1.2)
        assert len(events) == 1  # once per step
        (tmp_path / REQUEST).write_text("w\n")
        assert wait_for(lambda: len(events) == 2)
        assert events[1]["why"] == "host" and not (tmp_path / REQUEST).exists()
        dog.disarm()
        dog.arm("next", 60)
        time.sleep(1.0)
        assert len(events) == 2
    finally:
        dog.stop()
        dog.join(timeout=5)
    assert not dog.is_alive()
