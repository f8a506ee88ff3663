"""Bisect, slow tier: `harness bisect --kernels BASE,VARIANT --test suite:blktests:PATH@loop/002`
names the variant (tests/data/series/loop-refuse-1k-blocksize.mbox refuses a 1 KiB loop
block size, which blktests loop/002 sets). Real builds (the variant incrementally), real
TCG boots one at a time, each running only loop/002 from the real blktests checkout."""

from __future__ import annotations

import json

import pytest

from harness.cli.main import main
from tests.conftest import LEAN_BASE, PEER_SUITES, lean_variant_spec

pytestmark = pytest.mark.slow

VARIANT = "loop-refuse-1k-blocksize"

if not (PEER_SUITES / "blktests" / "check").is_file():
    pytest.skip(f"no blktests at {PEER_SUITES} (set HARNESS_PEER_SUITES)", allow_module_level=True)


def test_bisect_on_a_suite_test_names_the_variant(lean_variant, tmp_path, host_left_clean) -> None:
    lean_variant(VARIANT)
    out = tmp_path / "out"
    test = f"suite:blktests:{PEER_SUITES / 'blktests'}@loop/002"
    argv = ["bisect", "--kernels", f"{LEAN_BASE},{lean_variant_spec(VARIANT)}", "--test", test]
    # a +series= kernel defaults to the minimal guest root, which hides the suite's tools
    argv += ["--accel", "tcg", "--guest-root", "host", "--out", str(out)]
    rc = main(argv)
    doc = json.loads((out / "bisect.json").read_text())
    report = (out / "bisect.md").read_text()
    assert rc == 0, report
    assert doc["first_bad"] == lean_variant_spec(VARIANT)
    assert doc["request"]["plan"] == "none"
    good, bad = doc["steps"]
    assert (good["outcome"], good["reason"]) == ("good", "blktests/loop/002 passed")
    assert bad["outcome"] == "bad"
    assert bad["reason"] == "blktests/loop/002 failed: loop/002 failed (output)", bad
    for step in (good, bad):  # each boot ran loop/002 and nothing else
        (run,) = step["runs"]
        results = json.loads((out / run["directory"] / "results.json").read_text())
        (record,) = results["runs"]
        assert [s["id"] for s in record["steps"]] == ["boot", "blktests/loop/002"]
