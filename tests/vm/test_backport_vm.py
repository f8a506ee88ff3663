"""`harness backport` for real: the stand-in series on Debian's linux-source-6.12 (applied,
built next to the lean base, booted under TCG, A/B against the unpatched base) and on
linux-source-7.2 (conflict in patch 2); the 7.2 backport via --series-for; a series that
applies but does not compile. 7.2 stops after apply: its cold build (~15 min) is left to
benchmarks/bench_backport.py."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli.main import main

SERIES = Path(__file__).parents[1] / "data" / "series"
B612, B72 = "src:debian:linux-source-6.12", "src:debian:linux-source-7.2"
TINY_PLAN = {
    "name": "backport-tiny",
    "description": "one short loop fio row and one check",
    "runtime_s": 2,
    "size_mb": 64,
    "fio": [{"workloads": ["randwrite-4k"], "targets": ["loop-dio-on-xfs"]}],
    "checks": [{"check": "sparse", "targets": ["loop-dio-on-xfs"]}],
}


def backport(out: Path, *args: str) -> tuple[int, dict]:
    rc = main(["backport", *args, "--out", str(out)])
    return rc, json.loads((out / "backport.json").read_text())


def by_base(doc: dict) -> dict[str, dict]:
    return {b["base"]: b for b in doc["bases"]}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, lean_base) -> tuple[int, dict, Path]:
    out = tmp_path_factory.mktemp("backport")
    plan = out / "tiny-plan.json"
    plan.write_text(json.dumps(TINY_PLAN))
    rc, doc = backport(
        out / "table",
        "--series",
        str(SERIES / "backport-standin.mbox"),
        "--base",
        B612,
        "--base",
        B72,
        "--plan",
        str(plan),
        "--reps",
        "1",
    )
    return rc, doc, out / "table"


def test_612_applies_builds_boots_and_is_compared_against_itself(matrix, host_left_clean):
    rc, doc, out = matrix
    row = by_base(doc)[B612]
    assert row["apply"] == {**row["apply"], "status": "applied", "applied": 3, "total": 3}
    assert (row["build"], row["boot"], row["verdict"]) == ("ok", "ok", "pass")
    assert row["checks"]["new_failures"] == [] and row["checks"]["passed"] >= 1
    assert row["watch"]["metric"] == "nr_blocking_writes" and row["watch"]["seen"] is False
    assert Path(row["ab_dir"], "report.html").is_file()
    runs = json.loads((out / "results.json").read_text())["runs"]
    specs = {r["kernel"]["spec"] for r in runs}
    assert specs == {B612, f"{B612}+series={SERIES / 'backport-standin.mbox'}"}
    assert all(r["stop_reason"] == "done" for r in runs)


def test_72_conflicts_in_patch_2_naming_file_and_function(matrix):
    rc, doc, out = matrix
    row = by_base(doc)[B72]
    assert rc == 1  # a base that does not take the series failed
    assert (row["apply"]["status"], row["apply"]["applied"], row["apply"]["total"]) == (
        "conflict",
        1,
        3,
    )
    conflict = row["apply"]["conflict"]
    assert conflict["patch"] == 2 and "log direct I/O" in conflict["subject"]
    assert conflict["file"] == "drivers/block/loop.c"
    assert conflict["function"] == "__loop_update_dio"
    assert "@@ -222,6 +222,8 @@" in conflict["hunk"]
    assert "blk_mq_unfreeze_queue" in conflict["hunks"][0]["base_lines"]
    assert (row["build"], row["boot"], row["verdict"]) == ("skipped", "skipped", "conflict")
    assert (
        "conflict in patch 2: drivers/block/loop.c, __loop_update_dio"
        in (out / "backport.md").read_text()
    )


def test_table_writers_junit_html_and_lint(matrix):
    rc, doc, out = matrix
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == [B612, B72]
    assert suites[1].find("testcase[@name='apply']/failure") is not None
    page = (out / "backport.html").read_text()
    assert 'href="bases/1-src-debian-linux-source-6.12/ab/report.html"' in page
    assert [w.split(" (")[0] for w in doc["lint"]] == ["backport-standin.mbox patch 2"]


def test_series_for_gives_72_its_backport(tmp_path, lean_base):
    rc, doc = backport(
        tmp_path,
        "--series",
        str(SERIES / "backport-standin.mbox"),
        "--base",
        B612,
        "--base",
        B72,
        "--series-for",
        f"{B72}={SERIES / 'backport-standin-7.2.mbox'}",
        "--stop-after",
        f"{B612}=build",
        "--stop-after",
        f"{B72}=apply",
    )
    rows = by_base(doc)
    assert rc == 0
    assert rows[B72]["backport"] and rows[B72]["series"].endswith("backport-standin-7.2.mbox")
    assert rows[B72]["apply"]["status"] == "applied" and rows[B72]["apply"]["applied"] == 3
    assert not rows[B612]["backport"] and rows[B612]["build"] == "ok"
    assert "backport backport-standin-7.2.mbox" in (tmp_path / "backport.md").read_text()


def test_series_that_does_not_compile_is_build_failed_with_log(tmp_path, lean_base):
    rc, doc = backport(
        tmp_path,
        "--series",
        str(SERIES / "backport-nobuild.mbox"),
        "--base",
        B612,
        "--stop-after",
        "build",
    )
    (row,) = doc["bases"]
    assert rc == 1
    assert row["apply"]["status"] == "applied" and row["apply"]["applied"] == 2
    assert (row["build"], row["verdict"], row["boot"]) == ("failed", "build-failed", "skipped")
    log = Path(row["build_log"])
    assert log.is_file() and "harness_backport_value" in log.read_text(errors="replace")
