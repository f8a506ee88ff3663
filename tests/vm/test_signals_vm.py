"""Real signals to the real harness process (a subprocess, SIGINT restored to its default as
a CI runner's shell would not): mid-run, mid-A/B, a second signal during cleanup, and
mid-build. After each: the exit code, one line on stderr, the files written and what is
left on the host (QEMU, loop devices, dm devices, mounts, the run's disk images).

Slow: each case boots the Debian kernel once under TCG (~40 s) and stops it early.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import junitparser
import pytest

from tests.conftest import default_sigint, loop_devices, qemu_pids

KERNEL = "debian:6.12"
HARNESS = [sys.executable, "-m", "harness"]
# Two fio steps: the first is cut short by the signal, the second never runs.
PLAN = {
    "name": "signals",
    "runtime_s": 40,
    "size_mb": 64,
    "fio": [{"workloads": ["randread-4k", "randwrite-4k"], "targets": ["raw-nvme0"]}],
}
RUNNING, NEXT = "fio/raw-nvme0/randread-4k", "fio/raw-nvme0/randwrite-4k"


def host_state() -> tuple[set[int], str, str, str]:
    dm = subprocess.run(["dmsetup", "ls"], capture_output=True, text=True).stdout
    mounts = Path("/proc/mounts").read_text()
    return qemu_pids(), loop_devices(), dm, mounts


def assert_host_clean(before: tuple[set[int], str, str, str]) -> None:
    qemu, loops, dm, mounts = host_state()
    assert qemu <= before[0], "a QEMU process was left running"
    assert loops == before[1], "a loop device was left behind"
    assert dm == before[2], "a dm device was left behind"
    assert mounts == before[3], "a mount was left behind"


def start(argv: list[str], tmp: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*HARNESS, *argv],
        stdout=(tmp / "stdout").open("w"),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
        cwd=Path(__file__).parents[2],
    )


def wait_for(pred, what: str, timeout: float = 400.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def step_began(console: Path, step: str) -> bool:
    try:
        return f'"begin", "id": "{step}"' in console.read_text(errors="replace")
    except OSError:
        return False


def stop(proc: subprocess.Popen[str], sig: int) -> tuple[int, str, float]:
    """Send `sig`; the exit code, stderr and seconds from the signal to the exit."""
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, time.monotonic() - t0


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("harness:")]
    assert len(lines) == 1, err
    return lines[0]


def cases(junit: Path) -> dict[str, junitparser.TestCase]:
    xml = junitparser.JUnitXml.fromfile(str(junit))
    suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]
    return {c.name: c for s in suites for c in s}


def error_text(case: junitparser.TestCase) -> str:
    return " ".join(f"{r.message} {r.text or ''}" for r in case.result)


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "signals.json"
    path.write_text(json.dumps(PLAN))
    return path


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_signal_mid_run_writes_results_and_stops_everything(
    sig: int, plan_file: Path, tmp_path: Path
) -> None:
    before, out = host_state(), tmp_path / "out"
    proc = start(["run", "--kernel", KERNEL, "--plan", str(plan_file), "--out", str(out)], tmp_path)
    run_dir = out / "0-debian_6.12"
    wait_for(lambda: step_began(run_dir / "console.log", RUNNING), "the first step")
    time.sleep(2)
    rc, err, took = stop(proc, sig)
    name = signal.Signals(sig).name
    assert rc == 2, err
    assert took < 15, f"took {took:.1f}s to stop after {name}"
    assert f"interrupted by {name}" in one_line(err)
    assert_host_clean(before)
    assert not (run_dir / "disks").exists(), "the disk images were left behind"
    assert (run_dir / "console.log").stat().st_size > 0
    assert (out / "report.md").stat().st_size > 0
    run = json.loads((out / "results.json").read_text())["runs"][0]
    assert run["stop_reason"] == f"interrupted by {name}"
    steps = {s["id"]: s for s in run["steps"]}
    assert steps["boot"]["status"] == "pass"
    assert steps[RUNNING]["status"] == "error"
    assert steps[RUNNING]["message"] == f"interrupted by {name}"
    assert steps[NEXT]["status"] == "error" and "never ran" in steps[NEXT]["message"]
    junit = cases(out / "junit.xml")
    assert f"interrupted by {name}" in error_text(junit[RUNNING])
    assert "never ran" in error_text(junit[NEXT])


def test_sighup_mid_ab_keeps_the_cut_short_run(plan_file: Path, tmp_path: Path) -> None:
    before, out = host_state(), tmp_path / "ab"
    argv = ["ab", "--base", KERNEL, "--candidate", KERNEL, "--reps", "1"]
    proc = start([*argv, "--plan", str(plan_file), "--out", str(out)], tmp_path)
    run_dir = out / "runs" / "rep0-base"
    wait_for(lambda: step_began(run_dir / "console.log", RUNNING), "the base's first step")
    rc, err, took = stop(proc, signal.SIGHUP)
    assert rc == 2, err
    assert took < 15
    assert "interrupted by SIGHUP" in one_line(err)
    assert_host_clean(before)
    assert not (run_dir / "disks").exists()
    runs = json.loads((out / "results.json").read_text())
    assert runs["ab"]["sides"] == ["base"]
    assert runs["runs"][0]["stop_reason"] == "interrupted by SIGHUP"
    assert "interrupted by SIGHUP" in error_text(cases(out / "junit.xml")[RUNNING])
    assert (out / "report.md").exists()


def test_second_signal_during_cleanup_exits_at_once(plan_file: Path, tmp_path: Path) -> None:
    before, out = host_state(), tmp_path / "out"
    proc = start(["run", "--kernel", KERNEL, "--plan", str(plan_file), "--out", str(out)], tmp_path)
    run_dir = out / "0-debian_6.12"
    wait_for(lambda: step_began(run_dir / "console.log", RUNNING), "the first step")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)  # back to back: the second lands while the first unwinds
    rc, err, _ = stop(proc, signal.SIGTERM)
    assert time.monotonic() - t0 < 5
    assert rc == 2, err
    assert "SIGTERM during cleanup after SIGINT" in err, err
    assert "Traceback" not in err
    time.sleep(0.5)  # SIGKILLed processes are reaped by init
    assert_host_clean(before)


def test_sigterm_mid_build_stops_make_and_keeps_the_cache_sound(tmp_path: Path) -> None:
    series = unique_loop_series(tmp_path)
    spec = f"src:debian:linux-source-6.12+series={series}"
    artifacts = Path(os.environ.get("HARNESS_CACHE_DIR", ".cache")) / "kbuild" / "artifacts"
    partial_before = set(artifacts.glob("*.partial"))  # failed builds keep theirs (build.log)
    proc = start(["build", spec], tmp_path)
    wait_for(lambda: "make" in descendant_names(proc.pid), "make to start", timeout=600)
    time.sleep(3)
    rc, err, took = stop(proc, signal.SIGTERM)
    assert rc == 2, err
    assert took < 15
    assert "interrupted by SIGTERM" in one_line(err)
    assert not descendant_names(proc.pid)
    leftover = subprocess.run(["pgrep", "-f", str(series)], capture_output=True, text=True)
    assert not leftover.stdout.strip(), "a build process of the interrupted spec is still running"
    partial = set(artifacts.glob("*.partial")) - partial_before
    assert not partial, "a half-built variant was left in the cache"
    # The shared object directory is consistent: the same variant now builds and boots.
    again = subprocess.run([*HARNESS, "build", spec], capture_output=True, text=True, timeout=1800)
    assert again.returncode == 0, again.stderr[-2000:]


def descendant_names(pid: int) -> list[str]:
    from harness.signals import descendants

    names = []
    for child in descendants(pid):
        try:
            names.append(Path(f"/proc/{child}/comm").read_text().strip())
        except OSError:
            continue
    return names


def unique_loop_series(tmp: Path) -> Path:
    """A one-patch series adding a comment to loop.c with a token no cache has seen."""
    import difflib

    from harness.kernel.source import debian_source  # the lean base's own tree, cached

    src = (debian_source("linux-source-6.12").repo / "drivers/block/loop.c").read_text()
    lines = src.splitlines(keepends=True)
    token = f"harness signal test {time.time_ns()}"
    at = next(i for i, line in enumerate(lines) if line.startswith("#include")) + 1
    new = [*lines[:at], f"/* {token} */\n", *lines[at:]]
    diff = "".join(
        difflib.unified_diff(lines, new, "a/drivers/block/loop.c", "b/drivers/block/loop.c")
    )
    path = tmp / "unique.mbox"
    path.write_text(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: Harness Test <harness@localhost>\nDate: Tue, 1 Dec 2026 09:00:00 +0000\n"
        f"Subject: [PATCH] loop: {token}\n\n---\n"
        "diff --git a/drivers/block/loop.c b/drivers/block/loop.c\n" + diff + "-- \n2.39.5\n\n"
    )
    return path
