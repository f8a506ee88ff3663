"""Remote runs through fabric against real sshd servers on 127.0.0.1 (this machine is "the
remote"): the Debian 6.12 kernel boots under TCG there and the results come home.

- one host: JUnit of the same shape as a local run of the same plan;
- two hosts: a 2-shard plan, one shard each, merged into one run;
- a host killed mid-run (sshd stopped, its sessions and everything they started killed):
  its shard comes back as errors naming it, the other shard intact.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from junitparser import JUnitXml

from harness.cli.main import main
from harness.paths import cache_dir
from tests.vm.test_remote_sshd_vm import keygen, start_sshd

PLAN = {
    "name": "remote-tiny",
    "description": "4k random reads on the raw NVMe and SCSI disks, 2 s",
    "runtime_s": 2,
    "size_mb": 64,
    "fio": [{"workloads": ["randread-4k"], "targets": ["raw-nvme0", "raw-scsi0"]}],
}
REMOTE_RUNS = Path.home() / ".cache/kernel-harness-remote/runs"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    pub = keygen(root / "client")
    servers = [start_sshd(root / f"sshd{i}", root / "client", pub) for i in range(3)]
    (root / "known_hosts").write_text("".join(s.known_hosts_line() for s in servers))
    (root / "plan.json").write_text(json.dumps(PLAN))
    started = time.time()
    yield root, servers
    for server in servers:
        server.stop()
    for run in REMOTE_RUNS.glob("*") if REMOTE_RUNS.is_dir() else ():
        if run.stat().st_mtime >= started:  # what a killed host left behind
            import shutil

            shutil.rmtree(run, ignore_errors=True)


def _argv(root: Path, out: Path, servers) -> list[str]:
    argv = ["run", "--plan", str(root / "plan.json"), "--accel", "tcg", "--out", str(out)]
    for server in servers:
        argv += ["--host", server.host]
    return argv + [
        "--ssh-key",
        str(root / "client"),
        "--known-hosts",
        str(root / "known_hosts"),
        "--remote-cache",
        str(cache_dir()),
    ]


def _shape(junit: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    return [
        (suite.name, [(c.name, c.result[0]._tag if c.result else "passed") for c in suite])
        for suite in JUnitXml.fromfile(str(junit))
    ]


def _run(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())["runs"][0]


def test_remote_run_brings_home_junit_shaped_like_a_local_run(lab, tmp_path, host_left_clean):
    root, servers = lab
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert (
        main(["run", "--plan", str(root / "plan.json"), "--accel", "tcg", "--out", str(local)]) == 0
    )
    assert main(_argv(root, remote, servers[:1])) == 0
    assert _shape(remote / "junit.xml") == _shape(local / "junit.xml")
    run = _run(remote)
    assert run["environment"]["accel"] == "tcg" and run["kernel"]["spec"] == "debian:6.12"
    boot = run["steps"][0]["details"]
    assert boot["remote_host"] == servers[0].host and boot["host_key"].startswith("checked")
    assert Path(run["console_log"]).is_file()  # fetched home
    assert (
        "randread" in Path(run["console_log"]).read_text()
        or Path(run["console_log"]).stat().st_size
    )


def test_ab_over_a_host_runs_both_sides_there_and_compares_at_home(lab, tmp_path, host_left_clean):
    """`harness ab --host`: every rep of both sides boots on the remote; results.json, the
    comparison and its reports are written here, each run naming the host it ran on."""
    root, servers = lab
    out = tmp_path / "ab"
    argv = _argv(root, out, servers[:1])
    argv[: argv.index("--plan")] = [
        "ab",
        "--base",
        "debian:6.12",
        "--candidate",
        "debian:6.12",
        "--reps",
        "1",
    ]
    assert main(argv) == 0
    for name in ("junit.xml", "results.json", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0, name
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == 2
    for run in runs:
        boot = run["steps"][0]
        assert boot["id"] == "boot" and boot["details"]["remote_host"] == servers[0].host
        assert [s["status"] for s in run["steps"]] == ["pass"] * 3


def test_two_host_pool_runs_one_shard_each_and_merges(lab, tmp_path, host_left_clean):
    root, servers = lab
    out = tmp_path / "pool"
    assert main(_argv(root, out, servers[:2])) == 0
    run = _run(out)
    assert [(s["id"], s["status"]) for s in run["steps"]] == [
        ("boot", "pass"),
        ("fio/raw-nvme0/randread-4k", "pass"),
        ("fio/raw-scsi0/randread-4k", "pass"),
    ]
    shards = run["steps"][0]["details"]["shards"]
    assert set(shards) == {"1/2", "2/2"}
    assert {s["remote_host"] for s in shards.values()} == {servers[0].host, servers[1].host}
    assert all(
        (out / "0-debian_6.12" / f"shard-{i}of2/remote/results.json").is_file() for i in (1, 2)
    )


def test_a_host_killed_mid_run_loses_only_its_shard(lab, tmp_path, host_left_clean):
    root, servers = lab
    good, doomed = servers[0], servers[2]
    out = tmp_path / "drop"
    # A process of its own: the CLI handles signals, which only a main thread may.
    harness = str(Path(sys.executable).parent / "harness")
    proc = subprocess.Popen([harness, *_argv(root, out, [good, doomed])], start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while (
            time.monotonic() < deadline
            and proc.poll() is None
            and not any("qemu-system" in _cmdline(pid) for pid in doomed.descendants())
        ):
            time.sleep(0.5)
        assert proc.poll() is None and time.monotonic() < deadline, "no VM on the doomed host"
        doomed.kill_sessions()
        code = proc.wait(600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == 2  # the run could not tell: a shard is lost
    run = _run(out)
    by_id = {s["id"]: s for s in run["steps"]}
    lost = [s for s in run["steps"][1:] if s["status"] == "error"]
    kept = [s for s in run["steps"][1:] if s["status"] == "pass"]
    assert len(lost) == 1 and len(kept) == 1, [(s["id"], s["status"]) for s in run["steps"]]
    assert f"host {doomed.host} dropped out" in lost[0]["message"]
    assert f"host {doomed.host} dropped out" in run["infra_error"]
    assert by_id["boot"]["status"] == "error"  # the lost shard's boot is an error, named
    assert kept[0]["metrics"].get("read_iops", 0) > 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
