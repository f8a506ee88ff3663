"""Shards and their merge on real runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.main import main
from tests.unit.test_shard_merge import HOST_PLAN, _cases


@pytest.fixture(scope="module")
def host_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("shard-host")
    plan = base / "plan.json"
    plan.write_text(json.dumps(HOST_PLAN))
    common = ["run", "--kernel", "host", "--scratch", str(base / "scratch"), "--plan", str(plan)]
    codes = {"full": main([*common, "--out", str(base / "full")])}
    for i in (1, 2):
        codes[f"s{i}"] = main([*common, "--shard", f"{i}/2", "--out", str(base / f"s{i}")])
    codes["merge"] = main(["merge", str(base / "s2"), str(base / "s1"), "--out", str(base / "m")])
    return base, codes


def test_all_shards_merged_equal_one_unsharded_run(host_runs, host_left_clean) -> None:
    base, codes = host_runs
    assert codes == {"full": 0, "s1": 0, "s2": 0, "merge": 0}
    full = json.loads((base / "full/results.json").read_text())["runs"][0]
    merged = json.loads((base / "m/results.json").read_text())["runs"][0]
    assert [(s["id"], s["status"]) for s in merged["steps"]] == [
        (s["id"], s["status"]) for s in full["steps"]
    ]
    shards = [json.loads((base / f"s{i}/results.json").read_text())["runs"][0] for i in (1, 2)]
    assert all(len(s["steps"]) == 2 for s in shards)  # kernel-log + one target each
    assert _cases(base / "m/junit.xml") == _cases(base / "full/junit.xml")
    assert "shard-tiny" in (base / "m/report.md").read_text()


def test_kcidb_export_of_a_real_merged_run_validates(host_runs, tmp_path: Path) -> None:
    base, _ = host_runs
    out = tmp_path / "kcidb.json"
    assert main(["export", "kcidb", str(base / "m"), str(base / "full"), "--out", str(out)]) == 0
    from kcidb_io.schema import LATEST

    data = json.loads(out.read_text())
    LATEST.validate(data)
    paths = {t["path"]: t for t in data["tests"]}
    assert paths["harness"]["status"] == "PASS"
    iops = paths["harness.fio.file-xfs.randread-4k.read_iops"]
    assert iops["number"]["value"] > 0 and iops["number"]["unit"] == "IOPS"
