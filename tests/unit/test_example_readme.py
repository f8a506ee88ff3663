"""The README's first A/B names the example series that is in examples/ and applies to
Debian's 6.12 source as an mbox the harness reads, in a short section (the slow test runs
the command itself: tests/vm/test_example_ab_vm.py)."""

from __future__ import annotations

import shlex
from pathlib import Path

from harness.kernel import buildspec, series

ROOT = Path(__file__).resolve().parents[2]


def readme_command() -> list[str]:
    """The `harness ab ...` line of README.md's "Your first A/B" section, as argv."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Your first A/B", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.startswith("    harness ab ")]
    assert len(lines) == 1, f"expected one `harness ab` line in the section, got {lines}"
    return shlex.split(lines[0])


def test_the_readme_command_compares_debian_612_with_and_without_the_example():
    argv = readme_command()
    assert argv[:2] == ["harness", "ab"]
    base = buildspec.parse_build_spec(argv[argv.index("--base") + 1])
    candidate = buildspec.parse_build_spec(argv[argv.index("--candidate") + 1])
    assert base.location == candidate.location == "linux-source-6.12"
    assert base.series is None and candidate.series == "examples/loop-delay.mbox"
    loaded = series.load_series(str(ROOT / candidate.series))
    assert [p.subject for p in loaded.patches] == [
        "[PATCH] loop: example: wait example_delay_us before each request"
    ]
    assert "+++ b/drivers/block/loop.c" in (ROOT / candidate.series).read_text()


def test_the_first_ab_section_stays_short():
    """The README is meant to stay under 8 KB; this section is held to its share of it."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Your first A/B", 1)[1].split("\n## ", 1)[0]
    assert len(section.encode()) < 600
