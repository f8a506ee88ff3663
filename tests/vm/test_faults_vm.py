"""Faults during a real run: a second run into a locked directory, QEMU SIGKILLed, the
host's disk full."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.vm.test_faults_cli_vm import assert_one_line_error, harness, qemu_children
from tests.vm.test_signals_vm import (
    KERNEL,
    PLAN,
    RUNNING,
    assert_host_clean,
    cases,
    error_text,
    host_state,
    start,
    step_began,
    wait_for,
)


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "faults.json"
    path.write_text(json.dumps(PLAN))
    return path


def test_second_run_into_one_directory_is_refused_and_qemu_sigkill_ends_cleanly(
    plan_file: Path, tmp_path: Path
) -> None:
    before, out = host_state(), tmp_path / "out"
    argv = ["run", "--kernel", KERNEL, "--plan", str(plan_file), "--out", str(out)]
    first = start(argv, tmp_path)
    run_dir = out / "0-debian_6.12"
    wait_for(lambda: step_began(run_dir / "console.log", RUNNING), "the first step")
    # A second run into the same directory: refused at once, naming the holder.
    rc, err = harness(*argv)
    assert_one_line_error(rc, err, "in use by another harness run", f"pid {first.pid}")
    # Now kill the first run's QEMU outright. The VM ended with nothing from the kernel, so
    # the run engine boots it once more (harness.verdict RETRY_VM_EXIT): kill that one too,
    # in the same step. Twice is an infrastructure error, never a kernel verdict.
    qemu = qemu_children(first.pid)
    assert qemu, "no QEMU below the harness"
    for pid in qemu:
        os.kill(pid, signal.SIGKILL)
    kept = run_dir / "console.attempt1.log"
    wait_for(
        lambda: kept.exists() and step_began(run_dir / "console.log", RUNNING),
        "the retried boot's first step",
    )
    again = [pid for pid in qemu_children(first.pid) if pid not in qemu]
    assert again, "no QEMU for the retried boot"
    t0 = time.monotonic()
    for pid in again:
        os.kill(pid, signal.SIGKILL)
    _, err = first.communicate(timeout=60)
    assert time.monotonic() - t0 < 15
    assert first.returncode == 2, err
    assert "Traceback" not in err
    assert_host_clean(before)
    assert not (run_dir / "disks").exists()
    junit = cases(out / "junit.xml")
    assert junit["boot"].result == []  # passed
    assert "exited before the agent finished" in error_text(junit[RUNNING])
    assert (run_dir / "console.log").stat().st_size > 0 and kept.stat().st_size > 0
    verdict = json.loads((out / "results.json").read_text())["runs"][0]["verdict"]
    assert verdict["attempts"] == 2 and "both attempts" in verdict["summary"], verdict


def test_host_disk_full_in_the_output_directory(plan_file: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(full)], check=True)
    try:
        before = host_state()
        # Leave a few KiB: the run's small files fit, console.log does not.
        filler = full / "filler"
        with filler.open("wb") as fh:
            fh.write(b"\0" * (2 * 1024 * 1024 - 48 * 1024))
        out = full / "out"
        argv = ["run", "--kernel", KERNEL, "--plan", str(plan_file), "--out", str(out)]
        proc = start(argv, tmp_path)
        _, err = proc.communicate(timeout=600)
        assert_one_line_error(proc.returncode, err, "no space left")
        assert_host_clean(before)
        assert not list(out.glob("*/disks")), "the disk images were left behind"
        assert not list(out.glob("**/.*.tmp")), "a temporary file of an atomic write was left"
    finally:
        subprocess.run(["umount", str(full)], capture_output=True)
