"""The integrity rows on real boots of the lean base and its write-dropping variants."""

from __future__ import annotations

from tests.conftest import LEAN_BASE, lean_variant_spec
from tests.unit.test_integrity import TARGETS


def test_lean_base_passes_the_mixed_integrity_check(runs) -> None:
    _, by_spec = runs
    for target in TARGETS:
        step = by_spec[LEAN_BASE][f"check/integrity/{target}"]
        assert step["status"] == "pass", step["message"]


def test_a_kernel_losing_unaligned_writes_fails_it(runs, host_left_clean) -> None:
    rc, by_spec = runs
    assert rc == 1
    for target in TARGETS:
        step = by_spec[lean_variant_spec("lose-writes")][f"check/integrity/{target}"]
        assert step["status"] == "fail", step
        assert "writes lost" in step["message"] and "not 4 KiB aligned" in step["message"]
