"""Every Debian kernel series the harness offers resolves, fetches and boots. Every series
the archive offers is resolved to its packages; by default only 6.12 (the everyday base)
and 7.0 (a split linux-binary + linux-modules kernel) are fetched and booted, to keep the
suite's time (a fetch is 15-180 MB the first time, a TCG boot 30-120 s; fetched kernels stay
in the harness cache); HARNESS_ALL_DEBIAN_SERIES=1 boots every one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.kernel import debian
from harness.paths import cache_subdir

# What the archive offered when this was written (trixie-backports + sid + bookworm).
SERIES = ("6.1", "6.12", "6.16", "6.17", "6.18", "6.19", "7.0", "7.1", "7.2", "7.3")
BOOTED_BY_DEFAULT = ("6.12", "7.0")
PLAN = {
    "name": "debian-boot",
    "description": "boot, then 4k random reads on raw NVMe for 2 s",
    "runtime_s": 2,
    "size_mb": 64,
    "fio": [{"workloads": ["randread-4k"], "targets": ["raw-nvme0"]}],
}


def offered() -> dict[str, debian.DebianKernel]:
    apt = debian.PrivateApt(cache_subdir("debian") / "apt")
    apt.refresh()
    return debian.kernels_from_pkgnames(apt.pkgnames())


def test_every_offered_series_resolves_to_a_kernel_with_modules() -> None:
    kernels = offered()
    series = {".".join(abi.split(".")[:2]) for abi in kernels}
    assert {"6.1", "6.12", "7.0"} <= series, series  # bookworm's, and a split one
    for version in sorted(series):
        chosen = debian.pick(version, kernels)
        assert chosen.abi.startswith(version + "."), (version, chosen)
        split = any(p.startswith("linux-binary-") for p in chosen.packages)
        parts = chosen.packages + chosen.missing
        assert not split or any(p.startswith("linux-modules-") for p in parts), chosen


@pytest.mark.parametrize("series", SERIES)
def test_the_series_resolves_and_boots(series: str, tmp_path: Path, host_left_clean) -> None:
    if series not in BOOTED_BY_DEFAULT and not os.environ.get("HARNESS_ALL_DEBIAN_SERIES"):
        pytest.skip("booted with HARNESS_ALL_DEBIAN_SERIES=1 (a fetch and a TCG boot each)")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    out = tmp_path / "out"
    rc = main(["run", "--kernel", f"debian:{series}", "--plan", str(plan), "--out", str(out)])
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert rc == 0, runs[0].get("infra_error") or runs[0]["verdict"]
    kernel = runs[0]["kernel"]
    assert kernel["release"].startswith(series + ".") and kernel["release"].endswith("-amd64")
    assert [s["status"] for s in runs[0]["steps"]].count("pass") >= 2  # boot + the fio row
