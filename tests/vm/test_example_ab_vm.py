"""The README's first A/B, run exactly as written (its command is read out of README.md, so
the two cannot drift): Debian's 6.12 source against itself plus examples/loop-delay.mbox.
The series makes loop wait 1 ms per request, so the A/B must flag loop rows and exit 1
(a raw row flagged beside them is the host's noise at 3 reps, not the example's doing).

Its base side is the default job (the quick plan, 1 s rows) on the lean kernel, three times,
in the minimal guest root (harness.vm.guestroot: a series is code from outside, so both
sides boot there): every step passes, the virtio-scsi rows included (a lean kernel's
built-in sd_mod has no /sys/module entry and no modules.builtin; the agent once called it
missing), so the minimal root holds every tool the default job needs. One A/B, six boots,
for both.
(The lean kernel in the host's root, with the bundled agent: test_upstream_rows_vm.py.)
Needs the lean base build (a cache hit after the first one)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.workflows.ab import workflow as ab
from tests.conftest import left_clean
from tests.unit.test_example_readme import readme_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def first_ab(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    argv = readme_command()
    assert argv[0] == "harness"
    out = tmp_path_factory.mktemp("first-ab") / "ab"
    cmd = [sys.executable, "-m", "harness", *argv[1:], "--out", str(out)]
    with left_clean(tmp_path_factory):
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3 * 3600)
    return done, out


def test_the_first_ab_flags_loop_rows_and_exits_1(first_ab) -> None:
    done, out = first_ab
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    flagged = re.findall(r"^\s+REGRESSION (\S+) (\S+):", output, re.MULTILINE)
    assert any(step.startswith("fio/loop-") for step, _ in flagged), output[-3000:]
    assert (out / "report.md").is_file()


def test_the_default_job_passes_on_the_lean_kernel(first_ab) -> None:
    _, out = first_ab
    base = ab.load_stored(out / "results.json").side(ab.BASE)
    assert len(base) == 3
    for run in base:
        statuses = {s.id: s.status.value for s in run.steps}
        assert set(statuses.values()) == {"pass"}, statuses
        assert any("raw-scsi0" in step for step in statuses), statuses
    argv_files = sorted((out / "runs").glob("rep*-base/vng-argv.json"))
    assert len(argv_files) == 3
    for argv_file in argv_files:
        argv = json.loads(argv_file.read_text())
        assert "--root" in argv, argv
