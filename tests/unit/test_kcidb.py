"""KCIDB export: real recorded runs validate with kcidb-io's schema; infrastructure
failures never read FAIL. (The export of a live run is in test_shard_merge.py.)"""

import dataclasses
import hashlib
import json
from pathlib import Path

from kcidb_io.schema import LATEST

from harness.cli.main import main
from harness.report.kcidb import kcidb_document, path_of
from harness.results.store import load_runs
from harness.run.merge import ShardRun, merge_shards

DATA = Path(__file__).parents[1] / "data"
RECORDED = DATA / "ab" / "tcg-aa-results.json"  # real TCG runs of debian:6.12


def _tests(data):
    return {(t["path"], t["build_id"], t["id"]): t for t in data["tests"]}


def test_recorded_real_runs_export_and_validate(tmp_path: Path, capsys) -> None:
    out = tmp_path / "k.json"
    assert main(["export", "kcidb", str(RECORDED), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    LATEST.validate(data)
    assert data["version"] == {"major": LATEST.major, "minor": LATEST.minor}
    assert len(data["checkouts"]) == 1 and data["checkouts"][0]["patchset_hash"] == ""
    runs = load_runs(RECORDED)
    roots = [t for t in data["tests"] if t["path"] == "harness"]
    assert len(roots) == len(runs) and {t["status"] for t in roots} == {"PASS"}
    metrics = [t for t in data["tests"] if t["path"].endswith(".read_iops")]
    assert metrics and all(t["number"]["unit"] == "IOPS" for t in metrics)
    assert "test(s)" in capsys.readouterr().out


def test_infrastructure_failures_map_to_miss_or_error_never_fail() -> None:
    run = load_runs(RECORDED)[0]
    lost = dataclasses.replace(
        run,
        infra_error="host lab1 dropped out",
        steps=tuple(dataclasses.replace(s, status="error", duration_s=0.0) for s in run.steps),
        stop_reason="host-dropped",
    )
    data = kcidb_document([lost])
    statuses = {t["path"]: t["status"] for t in data["tests"]}
    assert statuses["harness"] == "ERROR"
    assert (
        statuses["harness.boot"] == "MISS"
        and statuses["harness.fio.raw-nvme0.randread-4k"] == "MISS"
    )
    assert "FAIL" not in statuses.values()


def test_a_failed_step_is_fail_and_the_run_fails() -> None:
    run = load_runs(RECORDED)[0]
    failed = dataclasses.replace(run.steps[1], status="fail", message="lost writes")
    bad = dataclasses.replace(run, steps=(run.steps[0], failed))
    statuses = {t["path"]: t["status"] for t in kcidb_document([bad])["tests"]}
    assert statuses["harness"] == "FAIL" and statuses["harness.fio.raw-nvme0.randread-4k"] == "FAIL"


def test_merged_shards_export_too() -> None:
    run = load_runs(RECORDED)[0]
    shard = ShardRun(1, 1, run, tuple(s.id for s in run.steps[1:]))
    LATEST.validate(kcidb_document(merge_shards([shard])))


def test_patchset_hash_is_kcidbs_definition() -> None:
    """The series computes KCIDB's hash at build time; the export reads it from provenance."""
    from harness.kernel.series import load_series

    series = load_series(str(DATA / "series" / "slowdown.mbox"))
    expected = hashlib.sha256(
        "".join(hashlib.sha256(p.text.encode()).hexdigest() + "\n" for p in series.patches).encode()
    ).hexdigest()
    assert series.patchset_hash == expected
    run = load_runs(RECORDED)[0]
    prov = {**run.kernel.provenance, "series": "x.mbox", "series_patchset_hash": expected}
    patched = dataclasses.replace(run, kernel=dataclasses.replace(run.kernel, provenance=prov))
    assert kcidb_document([patched])["checkouts"][0]["patchset_hash"] == expected
    unknown = {**run.kernel.provenance, "series": "x.mbox"}  # built before the hash was kept
    older = dataclasses.replace(run, kernel=dataclasses.replace(run.kernel, provenance=unknown))
    assert "patchset_hash" not in kcidb_document([older])["checkouts"][0]


def test_step_ids_become_kcidb_paths() -> None:
    assert path_of("fio/raw-nvme0/randread-4k") == "harness.fio.raw-nvme0.randread-4k"
    assert path_of("check/stack/loop-dio-on-xfs") == "harness.check.stack.loop-dio-on-xfs"
    assert path_of("kernel/splats") == "harness.kernel.splats"


def test_export_needs_a_file_not_a_directory(tmp_path: Path, capsys) -> None:
    assert main(["export", "kcidb", str(RECORDED), "--out", str(tmp_path)]) == 2
    assert "name the JSON file" in capsys.readouterr().err
