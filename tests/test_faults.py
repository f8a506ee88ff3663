"""The fault catalogue (README "Fault catalogue"), each fault made real on the real harness
process: one line on stderr, no traceback, the documented exit code, and nothing left on
the host (QEMU, loop devices, dm devices, mounts, the run's disk images).

The kernel's own faults (panic at boot, oops, hang past the step timeout) are judged as
kernel failures by the verdict tests (tests/test_vm_integration.py, tests/test_verdict_vm.py);
this module covers the host's and the harness's faults. The fast ones need no VM; the slow
ones share boots: one run is both "QEMU killed with SIGKILL" and "a second run into the
same output directory".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_signals import (
    KERNEL,
    PLAN,
    RUNNING,
    assert_host_clean,
    cases,
    error_text,
    host_state,
    one_line,
    start,
    step_began,
    wait_for,
)

HARNESS = [sys.executable, "-m", "harness"]
ROOT = Path(__file__).parent.parent


def harness(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = subprocess.run(
        [*HARNESS, *argv], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )
    return done.returncode, done.stderr


def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    line = one_line(err)
    for needle in needles:
        assert needle in line, line


# --- bad input: one line naming the fix, exit 2, before anything runs ---------------------


def test_output_directory_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    rc, err = harness("run", "--out", str(tmp_path / "file"))
    assert_one_line_error(rc, err, "not a directory", "pick another path")


@pytest.mark.parametrize("where", ["/proc/x", "readonly"])
def test_output_directory_unwritable(tmp_path: Path, where: str) -> None:
    if where == "readonly":
        ro = tmp_path / "ro"
        ro.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], check=True)
        where = str(ro / "out")
    try:
        rc, err = harness("run", "--out", where)
    finally:
        subprocess.run(["umount", str(tmp_path / "ro")], capture_output=True)
    assert_one_line_error(rc, err, "not writable", "--out")


def _malformed(tmp: Path) -> dict[str, tuple[list[str], str]]:
    (tmp / "bad.json").write_text("{not json")
    (tmp / "keys.json").write_text(json.dumps({"name": "x", "fio": [], "bogus": 1}))
    (tmp / "topo.json").write_text(json.dumps({"disks": [{"name": "d", "bus": "floppy"}]}))
    (tmp / "empty.mbox").write_text("not a patch\n")
    return {
        "plan-json": (["--plan", str(tmp / "bad.json")], "not valid JSON"),
        "plan-keys": (["--plan", str(tmp / "keys.json")], "unknown keys"),
        "plan-name": (["--plan", "no-such-plan"], "unknown plan"),
        "topology": (["--topology", str(tmp / "topo.json")], "floppy"),
        "kernel": (["--kernel", "nonsense:1"], "nonsense"),
        "series": (["--kernel", f"src:debian:linux-source-6.12+series={tmp}/none.mbox"], "none"),
        "series-empty": (
            ["--kernel", f"src:debian:linux-source-6.12+series={tmp}/empty.mbox"],
            "empty.mbox",
        ),
        "config": (["--kernel", "src:debian:linux-source-6.12+config=no-such-fragment"], "no-such"),
        "shard": (["--shard", "3/2"], "--shard"),
    }


@pytest.mark.parametrize(
    "case",
    ["plan-json", "plan-keys", "plan-name", "topology", "kernel", "series", "series-empty",
     "config", "shard"],
)  # fmt: skip
def test_malformed_input_is_one_line(tmp_path: Path, case: str) -> None:
    argv, needle = _malformed(tmp_path)[case]
    before = host_state()
    rc, err = harness("run", *argv, "--out", str(tmp_path / "out"))
    assert_one_line_error(rc, err, needle)
    assert_host_clean(before)
    assert not list((tmp_path / "out").glob("*/disks")), "images made for a refused run"


@pytest.mark.parametrize(
    ("tool", "package"),
    [("qemu-system-x86_64", "qemu-system-x86"), ("fio", "fio"), ("mkfs.xfs", "xfsprogs")],
)
def test_missing_tool_names_its_package(tmp_path: Path, tool: str, package: str) -> None:
    # Hide the tool from this process only: a private mount namespace where it is /dev/null
    # (not executable), so neither PATH nor the sbin fallback finds it.
    path = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
    assert path, f"{tool} is not installed on this host"
    script = f'mount --bind /dev/null "{path}" && exec "$@"'
    rc, err = harness_in_ns(script, "run", "--out", str(tmp_path / "out"))
    assert_one_line_error(rc, err, f"'{tool}' not found", f"apt-get install {package}")


def test_missing_vng_names_the_fix(tmp_path: Path) -> None:
    venv_bin = Path(sys.executable).parent
    vng = venv_bin / "vng"
    assert vng.exists()
    script = f'mount --bind /dev/null "{vng}" && exec "$@"'
    env = {**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    rc, err = harness_in_ns(script, "run", "--out", str(tmp_path / "out"), env=env)
    assert_one_line_error(rc, err, "'vng' not found", "bootstrap.sh")


def harness_in_ns(script: str, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
         *HARNESS, *argv],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )  # fmt: skip
    return done.returncode, done.stderr


# --- faults during a real run --------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "faults.json"
    path.write_text(json.dumps(PLAN))
    return path


def qemu_children(pid: int) -> list[int]:
    from harness.signals import descendants

    found = []
    for child in descendants(pid):
        try:
            if Path(f"/proc/{child}/comm").read_text().strip().startswith("qemu-system"):
                found.append(child)
        except OSError:
            continue
    return found


@pytest.mark.slow
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
    wait_for(lambda: kept.exists() and step_began(run_dir / "console.log", RUNNING),
             "the retried boot's first step")  # fmt: skip
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


@pytest.mark.slow
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
