"""The integrity rows on real boots of the lean base and its write-dropping variants."""

from __future__ import annotations

import json

import pytest

from harness.cli.main import main
from tests.conftest import LEAN_BASE, lean_variant_spec
from tests.unit.test_integrity import TARGETS


@pytest.fixture(scope="module")
def runs(lean_variant, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict]:
    lean_variant("lose-writes")
    tmp = tmp_path_factory.mktemp("integrity")
    plan = tmp / "plan.json"
    check = {"check": "integrity", "targets": list(TARGETS), "params": {"fio": False}}
    plan.write_text(json.dumps({"name": "integrity", "size_mb": 64, "checks": [check]}))
    variant = lean_variant_spec("lose-writes")
    rc = main(
        [
            "run",
            "--kernel",
            LEAN_BASE,
            "--kernel",
            variant,
            "--plan",
            str(plan),
            "--out",
            str(tmp / "out"),
        ]
    )
    doc = json.loads((tmp / "out" / "results.json").read_text())
    return rc, {r["kernel"]["spec"]: {s["id"]: s for s in r["steps"]} for r in doc["runs"]}


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
