"""The README's first A/B, run exactly as written (its command is read out of README.md, so
the two cannot drift): Debian's 6.12 source against itself plus examples/loop-delay.mbox.
The series makes loop wait 1 ms per request, so the A/B must flag loop rows and exit 1
(a raw row flagged beside them is the host's noise at 3 reps, not the example's doing).
Needs the lean base build (a cache hit after the first one)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.unit.test_example_readme import readme_command

ROOT = Path(__file__).resolve().parents[2]


def test_the_first_ab_flags_loop_rows_and_exits_1(tmp_path):
    argv = readme_command()
    assert argv[0] == "harness"
    cmd = [sys.executable, "-m", "harness", *argv[1:], "--out", str(tmp_path / "ab")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3 * 3600)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    flagged = re.findall(r"^\s+REGRESSION (\S+) (\S+):", output, re.MULTILINE)
    assert any(step.startswith("fio/loop-") for step, _ in flagged), output[-3000:]
    assert (tmp_path / "ab" / "report.md").is_file()
