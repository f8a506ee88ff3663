"""`harness qemu install` for real: Debian's backports QEMU (10.0 on bookworm) fetched from
the machine's mirror into a cache of its own, its launcher finding its newer SeaBIOS; then
one real guest boots with it, and one with the system's (7.2 on Debian 12), the same tiny plan:
both pass, and each run records the QEMU that booted it. `remove` goes back.

Slow: a 13 MB download and two TCG boots.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.results.store import load_runs

pytestmark = pytest.mark.slow

PLAN = {
    "name": "qemu",
    "description": "raw NVMe and loop dio on over XFS, 4k random read, 1 s",
    "runtime_s": 1,
    "size_mb": 64,
    "fio": [{"workloads": ["randread-4k"], "targets": ["raw-nvme0", "loop-dio-on-xfs"]}],
}


def harness(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "harness", *args]
    return subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("qemu-cache")
    done = harness("qemu", "install", env={"HARNESS_CACHE_DIR": str(cache)})
    assert done.returncode == 0, done.stderr
    launcher = cache / "qemu" / "bin" / "qemu-system-x86_64"
    assert f"({launcher})" in done.stdout and "QEMU emulator version 10." in done.stdout
    return launcher


def boot(tmp_path: Path, qemu: str) -> tuple[int, dict]:
    (tmp_path / "plan.json").write_text(json.dumps(PLAN))
    out = tmp_path / "out"
    args = ("run", "--accel", "tcg", "--plan", str(tmp_path / "plan.json"), "--out", str(out))
    done = harness(*args, env={"HARNESS_QEMU": qemu})
    (run,) = load_runs(out / "results.json")
    return done.returncode, {"qemu": run.environment.qemu_version, "verdict": run.verdict}


def test_the_backports_qemu_boots_a_guest_and_says_so(installed, tmp_path, host_left_clean):
    rc, run = boot(tmp_path, str(installed))
    assert rc == 0, run["verdict"]
    assert run["qemu"].startswith("10."), run["qemu"]
    firmware = installed.read_text()
    assert "usr/share/seabios" in firmware  # 1.16.2 would cost ~30 s before the kernel


def test_the_systems_qemu_still_boots_when_chosen(installed, tmp_path, host_left_clean):
    system = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True)
    rc, run = boot(tmp_path, "system")
    assert rc == 0, run["verdict"]
    assert system.stdout.startswith(f"QEMU emulator version {run['qemu']}"), run["qemu"]


def test_remove_goes_back_to_the_systems(installed) -> None:
    env = {"HARNESS_CACHE_DIR": str(installed.parents[2])}
    done = harness("qemu", "remove", env=env)
    assert done.returncode == 0 and "(qemu-system-x86_64)" in done.stdout, done.stdout
    assert not installed.exists()
