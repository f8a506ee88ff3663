"""Every Debian kernel series the harness offers resolves, fetches and boots: one short
run per series under TCG. Slow (a fetch is 15-180 MB the first time; a boot 30-120 s
under TCG): fetched kernels stay in the harness cache (HARNESS_CACHE_DIR/debian/kernels,
keyed by ABI), so a second session only boots. One series:
`pytest "tests/test_debian_series_slow.py::test_the_series_resolves_and_boots[7.0]"`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.kernel import debian
from harness.paths import cache_subdir

pytestmark = pytest.mark.slow

# What `harness run --kernel debian:0` lists as available today (trixie-backports + sid +
# bookworm); test_the_list_is_what_the_archive_offers says when it changes.
SERIES = ("6.1", "6.12", "6.16", "6.17", "6.18", "6.19", "7.0", "7.1", "7.2", "7.3")
PLAN = {
    "name": "debian-boot", "description": "boot, then 4k random reads on raw NVMe for 2 s",
    "runtime_s": 2, "size_mb": 64,
    "fio": [{"workloads": ["randread-4k"], "targets": ["raw-nvme0"]}],
}  # fmt: skip


def offered() -> set[str]:
    apt = debian.PrivateApt(cache_subdir("debian") / "apt")
    apt.refresh()
    kernels = debian.kernels_from_pkgnames(apt.pkgnames())
    return {".".join(abi.split(".")[:2]) for abi in kernels}


def test_the_list_is_what_the_archive_offers() -> None:
    assert offered() == set(SERIES)


@pytest.mark.parametrize("series", SERIES)
def test_the_series_resolves_and_boots(series: str, tmp_path: Path, host_left_clean) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    out = tmp_path / "out"
    rc = main(["run", "--kernel", f"debian:{series}", "--plan", str(plan), "--out", str(out)])
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert rc == 0, runs[0].get("infra_error") or runs[0]["verdict"]
    kernel = runs[0]["kernel"]
    assert kernel["release"].startswith(series + ".") and kernel["release"].endswith("-amd64")
    assert [s["status"] for s in runs[0]["steps"]].count("pass") >= 2  # boot + the fio row
