"""results.json: atomic save, round trip, and clear errors on malformed files."""

from __future__ import annotations

import json

import pytest

from harness.errors import UserError
from harness.results.model import Environment, KernelInfo, RunResult, Splat, StepResult
from harness.results.store import load_runs, save_runs

RUN = RunResult(
    kernel=KernelInfo("debian:6.12", "6.12.111+deb12-amd64", "/c/vmlinuz", {"package": "p"}),
    environment=Environment(accel="tcg", qemu_version="7.2.19", cpus=2),
    topology="default",
    plan="quick",
    steps=(
        StepResult(
            "fio/raw-nvme0/randread-4k",
            "fio",
            "pass",
            duration_s=6.1,
            metrics={"read_iops": 1234.0},
            details={"fio_argv": ["fio", "--rw=randread"]},
            splats=(Splat("warning", "WARNING: at x.c:1 f", 40, "cut here\nWARNING"),),
        ),
        StepResult("check/sparse", "check", "xfail", "expected"),
    ),
    splats=(Splat("panic", "Kernel panic - not syncing: x", 99, "Kernel panic"),),
    console_log="console.log",
    repetition=1,
)


def test_round_trip_with_extra(tmp_path):
    path = tmp_path / "out" / "results.json"
    save_runs(path, [RUN, RUN], extra={"command": ["harness", "run"]})
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["command"] == ["harness", "run"]
    assert len(data["runs"]) == 2
    assert load_runs(path) == [RUN, RUN]
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temp file left


def test_extra_may_not_shadow_own_keys(tmp_path):
    with pytest.raises(ValueError, match="runs"):
        save_runs(tmp_path / "r.json", [RUN], extra={"runs": []})


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "results.json"
    save_runs(path, [RUN])
    before = path.read_text()
    with pytest.raises(TypeError):  # not JSON serialisable: fails before anything is written
        save_runs(path, [RUN], extra={"bad": object()})
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not valid JSON"),
        ('{"version": 1}', "has no 'runs' list"),
        ("[1, 2]", "has no 'runs' list"),
        ('{"version": 7, "runs": []}', "version 7"),
        ('{"version": 1, "runs": [{"kernel": {}}]}', "malformed run record"),
        ('{"version": 1, "runs": [{"topology": "t"}]}', "malformed run record"),
    ],
)
def test_malformed_file_names_the_file(tmp_path, content, expected):
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(UserError, match=expected) as info:
        load_runs(path)
    assert str(path) in str(info.value)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(UserError, match=f"cannot read results file {tmp_path}/nope.json"):
        load_runs(tmp_path / "nope.json")
