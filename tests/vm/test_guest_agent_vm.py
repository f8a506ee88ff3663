"""The guest agent in host mode on real loop devices, XFS and ext4 (root needed; slow).

Everything lives under tmp_path: scratch images, loop devices the agent creates, mounts.
Each test asserts that nothing is left attached or mounted, also after SIGTERM.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness import proc
from harness.paths import GUEST_DIR
from harness.suite.plans import build_plan

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices and mounts"),
]
AGENT = [sys.executable, str(GUEST_DIR / "agent.py")]


def leftovers(workdir) -> list[str]:
    """Loop devices backed by files under workdir and mounts under it."""
    found = []
    out = proc.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], timeout=30).stdout
    found += [line for line in out.splitlines() if str(workdir) in line]
    with open("/proc/mounts") as fh:
        found += [line for line in fh if str(workdir) in line]
    return found


@pytest.fixture
def run_plan(tmp_path):
    """Build a host plan from a dict, run the agent, return (rc, records by id, stdout)."""
    work = tmp_path / "work"

    def _run(source: dict, timeout: float = 600):
        path = tmp_path / "source.json"
        path.write_text(json.dumps(source))
        plan = build_plan(str(path), disks=[], mode="host", workdir=str(work)).to_dict()
        (tmp_path / "plan.json").write_text(json.dumps(plan))
        argv = [*AGENT, "--plan", str(tmp_path / "plan.json"), "--results", str(tmp_path)]
        res = proc.run(argv, timeout=timeout, check=False)
        lines = (tmp_path / "steps.jsonl").read_text().splitlines()
        records = {r["id"]: r for r in map(json.loads, lines)}
        return res.returncode, records, res.stdout

    yield _run
    assert leftovers(work) == []


def test_healthy_host_suite_passes_with_metrics(run_plan):
    rc, rec, out = run_plan(
        {
            "runtime_s": 2,
            "size_mb": 64,
            "fio": [
                {
                    "workloads": ["randwrite-4k", "uring-hipri-randread-4k"],
                    "targets": ["file-xfs", "loop-dio-on-xfs", "nested-loop-xfs", "raw-nvme0"],
                }
            ],
            "checks": [
                {"check": "sparse", "targets": ["loop-dio-on-xfs", "loop-dio-off-ext4"]},
                {
                    "check": "reflink",
                    "targets": ["loop-dio-on-xfs", "loop-dio-off-xfs", "loop-dio-on-ext4"],
                },
                {"check": "truncate", "targets": ["loop-dio-on-xfs", "loop-dio-off-xfs"]},
                {"check": "integrity", "targets": ["loop-dio-on-xfs", "loop-dio-off-xfs"]},
                {"check": "dio-alignment"},
            ],
        }
    )
    statuses = {k: r["status"] for k, r in rec.items()}
    assert rc == 0, statuses
    loop_fio = rec["fio/loop-dio-on-xfs/randwrite-4k"]
    assert loop_fio["status"] == "pass"
    assert {
        "write_iops",
        "write_bw_mib",
        "write_clat_p50_us",
        "write_clat_p99_us",
        "ctxsw_per_io",
        "cpu_us_per_io",
    } <= set(loop_fio["metrics"])
    assert loop_fio["details"]["loop_dio"] == "1"
    assert rec["fio/nested-loop-xfs/randwrite-4k"]["status"] == "pass"
    assert (
        "does not support polled I/O"
        in rec["fio/loop-dio-on-xfs/uring-hipri-randread-4k"]["message"]
    )
    assert rec["fio/raw-nvme0/randwrite-4k"]["status"] == "skip"  # host mode: no disk named
    assert "no reflink" in rec["check/reflink/loop-dio-on-ext4"]["message"]
    assert rec["check/reflink/loop-dio-on-ext4"]["status"] == "skip"
    for key in (
        "check/sparse/loop-dio-on-xfs",
        "check/truncate/loop-dio-off-xfs",
        "check/integrity/loop-dio-on-xfs",
        "check/dio-alignment/loop-dio-on-xfs4k-bs512",
    ):
        assert statuses[key] == "pass", rec[key]["message"]
    trunc = rec["check/truncate/loop-dio-on-xfs"]["details"]
    assert {"read_past_end", "write_past_end", "shrink_device_size"} <= set(trunc)
    markers = [json.loads(x.split(" ", 1)[1]) for x in out.splitlines() if x.startswith("@@")]
    assert markers[0]["event"] == "start" and markers[1]["event"] == "begin"
    assert markers[-1] == {"event": "done", "rc": 0}
    assert sum(m["event"] == "end" for m in markers) == len(rec)


# Each check against a target that really misbehaves for what it asserts.
BAD = {
    "sparse": ({"kind": "loop", "fs": "xfs", "alloc": "fallocate"}, {}, "not thin-provisioned"),
    "reflink": ({"kind": "loop", "fs": "xfs"}, {"clone_method": "hardlink"}, "changed the clone"),
    "truncate": (
        {"kind": "loop", "fs": "xfs", "sizelimit_mb": 64},
        {},
        "device size did not follow the file",
    ),
    "integrity": (
        {"kind": "loop", "fs": "xfs"},
        {"inject": "punch-backing"},
        "verify=crc32c found bad data",
    ),
    "dio-alignment": (
        {"kind": "loop", "fs": "xfs", "block_size": 4096},
        {"io_bs": 512},
        "failed with EINVAL",
    ),
}


@pytest.mark.parametrize("check", sorted(BAD))
def test_check_fails_on_real_bad_behaviour(run_plan, check):
    target, params, expect = BAD[check]
    rc, rec, _ = run_plan(
        {
            "size_mb": 64,
            "targets": {"bad": target},
            "checks": [{"check": check, "targets": ["bad"], "params": params}],
        }
    )
    record = rec[f"check/{check}/bad"]
    assert (rc, record["status"]) == (1, "fail"), record
    assert expect in record["message"]


def test_timeout_and_crash_become_error_records_and_the_agent_goes_on(run_plan):
    rc, rec, _ = run_plan(
        {
            "size_mb": 64,
            "targets": {"broken": {"kind": "loop", "fs": "xfs", "block_size": 999}},
            "fio": [
                {
                    "workloads": ["randwrite-4k"],
                    "targets": ["loop-dio-on-xfs"],
                    "fio": {"runtime": 60},
                    "timeout_s": 5,
                },
                {"workloads": ["randwrite-4k"], "targets": ["broken"]},
                {"workloads": ["randread-4k"], "targets": ["file-ext4"], "fio": {"runtime": 1}},
            ],
        }
    )
    assert rc == 1
    assert rec["fio/loop-dio-on-xfs/randwrite-4k"]["status"] == "error"
    assert "timed out after 5s" in rec["fio/loop-dio-on-xfs/randwrite-4k"]["message"]
    assert rec["fio/broken/randwrite-4k"]["status"] == "error"
    assert "losetup" in rec["fio/broken/randwrite-4k"]["message"]
    assert rec["fio/file-ext4/randread-4k"]["status"] == "pass"


def test_sigterm_mid_step_tears_everything_down(tmp_path):
    work = tmp_path / "work"
    src = tmp_path / "src.json"
    src.write_text(
        json.dumps(
            {
                "size_mb": 64,
                "fio": [
                    {
                        "workloads": ["randwrite-4k"],
                        "targets": ["nested-loop-xfs"],
                        "fio": {"runtime": 120},
                    }
                ],
            }
        )
    )
    plan = build_plan(str(src), disks=[], mode="host", workdir=str(work)).to_dict()
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    argv = [*AGENT, "--plan", str(tmp_path / "plan.json"), "--results", str(tmp_path)]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert '"event": "start"' in child.stdout.readline()
        assert '"event": "begin"' in child.stdout.readline()
        deadline = time.monotonic() + 120
        while not list((tmp_path / "fio").glob("*")) and time.monotonic() < deadline:
            time.sleep(0.5)  # fio started: the whole nested stack is up
        time.sleep(2)
        assert len(leftovers(work)) >= 2
        child.send_signal(signal.SIGTERM)
        rest, _ = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            proc.kill_group(child.pid)
    assert child.returncode == 2
    assert rest.strip().splitlines()[-1] == '@@HARNESS {"event": "done", "rc": 2}'
    record = json.loads((tmp_path / "steps.jsonl").read_text().splitlines()[-1])
    assert record["status"] == "error" and "interrupted" in record["message"]
    assert leftovers(work) == []
