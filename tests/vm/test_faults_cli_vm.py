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
import subprocess
import sys
from pathlib import Path

import pytest

from tests.vm.test_signals_vm import (
    assert_host_clean,
    host_state,
    one_line,
)

HARNESS = [sys.executable, "-m", "harness"]
ROOT = Path(__file__).parents[2]


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
    [
        "plan-json",
        "plan-keys",
        "plan-name",
        "topology",
        "kernel",
        "series",
        "series-empty",
        "config",
        "shard",
    ],
)
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
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            *HARNESS,
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    return done.returncode, done.stderr


# --- faults during a real run --------------------------------------------------------------


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
