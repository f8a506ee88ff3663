"""The README's first A/B, run exactly as written (its command is read out of README.md, so
the two cannot drift): Debian's 6.12 source against itself plus examples/loop-delay.mbox.
The series makes loop wait 100 us per request, so the A/B must flag loop rows, and only
loop rows, and exit 1. Needs the lean base build (a cache hit after the first one)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_command() -> list[str]:
    """The `harness ab ...` line of README.md's "Your first A/B" section, as argv."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Your first A/B", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.startswith("    harness ab ")]
    assert len(lines) == 1, f"expected one `harness ab` line in the section, got {lines}"
    return shlex.split(lines[0])


def test_the_readme_command_names_the_example_series():
    argv = readme_command()
    candidate = argv[argv.index("--candidate") + 1]
    series = candidate.split("+series=", 1)[1]
    assert (ROOT / series).is_file() and series == "examples/loop-delay.mbox"
    assert argv[argv.index("--base") + 1] == "src:debian:linux-source-6.12"


def test_the_first_ab_flags_loop_rows_and_exits_1(tmp_path):
    argv = readme_command()
    assert argv[0] == "harness"
    cmd = [sys.executable, "-m", "harness", *argv[1:], "--out", str(tmp_path / "ab")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          timeout=3 * 3600)  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    flagged = re.findall(r"^\s+REGRESSION (\S+) (\S+):", output, re.MULTILINE)
    assert any(step.startswith("fio/loop-") for step, _ in flagged), output[-3000:]
    assert all(step.startswith("fio/loop-") for step, _ in flagged), flagged
    assert (tmp_path / "ab" / "report.md").is_file()
