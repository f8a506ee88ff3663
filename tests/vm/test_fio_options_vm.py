"""A hostile plan.json given straight to the host agent (root, real loop devices): fio is
never aimed at a file or made to run a command."""

from __future__ import annotations

import json
import os
import sys

import pytest

from harness import proc
from harness.paths import GUEST_DIR
from harness.suite.plans import build_plan
from tests.unit.test_fio_options import _plan_file


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices and mounts")
def test_host_agent_given_a_hostile_plan_json_writes_and_runs_nothing(tmp_path) -> None:
    """The issue's reproduction: a plan.json (bypassing the loader) aiming fio at a victim
    file and running a command, on a file-xfs row in host mode."""
    victim, ran = tmp_path / "victim", tmp_path / "ran"
    plan = build_plan(
        _plan_file(tmp_path, {"runtime": 1}), disks=[], mode="host", workdir=str(tmp_path / "work")
    ).to_dict()
    plan["steps"][0]["workload"]["fio"].update(
        {"filename": str(victim), "exec_prerun": f"touch {ran}", "size": "1M"}
    )
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    argv = [
        sys.executable,
        str(GUEST_DIR / "agent.py"),
        "--plan",
        str(tmp_path / "plan.json"),
        "--results",
        str(tmp_path),
    ]
    proc.run(argv, timeout=300, check=False)
    record = json.loads((tmp_path / "steps.jsonl").read_text().splitlines()[0])
    assert record["status"] == "error" and "'filename'" in record["message"], record
    assert not victim.exists() and not ran.exists()
