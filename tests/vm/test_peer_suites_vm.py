"""The real peer suites (blktests, fstests) in a real TCG guest on Debian's 6.12 kernel: the
checkouts in ../shared/peer-suites (or $HARNESS_PEER_SUITES) built on the host, run from a
writable copy in the guest, one JUnit testcase per suite test."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report.junit import write_junit
from harness.run.engine import run_one
from harness.run.request import RunRequest
from tests.conftest import PEER_SUITES

pytestmark = pytest.mark.slow

KERNEL = "debian:6.12"
SUITES = PEER_SUITES

if not (SUITES / "blktests" / "check").is_file():
    pytest.skip(f"no peer suites at {SUITES} (set HARNESS_PEER_SUITES)", allow_module_level=True)


EXPUNGE = Path(__file__).parents[1] / "data" / "peer" / "expunge" / "blktests"


def test_blktests_loop_group_passes_or_says_why_not(tmp_path: Path) -> None:
    """Debian 6.12 lacks the fix loop/013 checks for, and loop/003's 1-second and
    loop/009's 5-second limits are tight for TCG on a loaded host: they are on the 6.12
    known-failure list, so their failures are expected ones (a pass is said); every other
    test passes or is not run with the suite's reason (010 and 011: the suite cannot parse
    Debian's release)."""
    suite = f"blktests:{SUITES / 'blktests'}@loop:expunge={EXPUNGE}"
    req = RunRequest(KERNEL, tmp_path / "run", plan="none", suites=(suite,))
    run = run_one(req)
    suite = [s for s in run.steps if s.kind == "suite"]
    assert [s.id for s in suite] == [f"blktests/loop/{n:03d}" for n in range(1, 14)]
    known = {"blktests/loop/003", "blktests/loop/009", "blktests/loop/013"}  # EXPUNGE/6.12
    bad = [
        (s.id, s.status, s.message)
        for s in suite
        if s.status not in ("pass", "skip") and not (s.status == "xfail" and s.id in known)
    ]
    assert not bad, bad
    assert run.verdict.get("class") == "pass", run.verdict
    assert all(s.message.startswith("not run: ") for s in suite if s.status == "skip")
    assert not any("is not installed" in s.message for s in suite)  # the harness installs them
    junit = tmp_path / "junit.xml"
    write_junit(junit, [run])
    names = {c.get("name") for c in ET.parse(junit).getroot().iter("testcase")}
    assert {s.id for s in suite} <= names


def test_fstests_ext4_032_on_the_vms_disks(tmp_path: Path) -> None:
    req = RunRequest(
        KERNEL,
        tmp_path / "run",
        plan="none",
        suites=(f"fstests:{SUITES / 'fstests'}@ext4/032:timeout=1500",),
    )
    run = run_one(req)
    step = next(s for s in run.steps if s.id == "fstests/ext4/032")
    assert step.status == "pass", (step.status, step.message)
    assert step.details["suite_status"] == "pass"
