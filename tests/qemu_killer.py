"""An injected emulator failure for slow tests: kill this test process's next QEMU."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path


def _descends_from_us(pid: int) -> bool:
    me = os.getpid()
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid == me:
            return True
    return False


class QemuKiller:
    """Kills (with `sig`) the first qemu-system-x86_64 that starts after armed.set(), 2 s
    into its boot: an injected emulator failure."""

    def __init__(self, sig: int = signal.SIGKILL) -> None:
        self.sig = sig
        self.armed = threading.Event()
        self.killed: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _pids(self) -> set[int]:
        """QEMU processes that descend from this test process (never anyone else's); by
        process name, not command line: a short-lived helper (a shell, a version probe)
        whose arguments mention QEMU is not a guest."""
        out = subprocess.run(["pgrep", "-x", "qemu-system-x86"], capture_output=True, text=True)
        return {int(p) for p in out.stdout.split() if _descends_from_us(int(p))}

    def _watch(self) -> None:
        self.armed.wait()
        before = self._pids()
        while not self.stop.is_set() and not self.killed:
            new = self._pids() - before
            if new:
                time.sleep(2)
                for pid in new:
                    try:
                        os.kill(pid, self.sig)
                    except ProcessLookupError:
                        before.add(pid)  # gone already: wait for the next QEMU
                        continue
                    self.killed.append(pid)
            time.sleep(0.2)
