"""Real boots of a real Debian kernel under TCG with NVMe + multi-queue virtio-scsi.

Slow: each boot is 30-120 s under TCG on 2 cores. One shared default-job run feeds several
assertions; the negative cases each boot at most once and check nothing is left running.
"""

from __future__ import annotations

import json
from pathlib import Path

import junitparser
import pytest
import xmlschema

from harness.cli.main import main
from tests.conftest import junit_xsd, qemu_pids

KERNEL = "debian:6.12"


@pytest.fixture
def no_qemu_left():
    before = qemu_pids()
    yield
    assert qemu_pids() <= before, "the harness left a QEMU process running"


@pytest.fixture(scope="module")
def default_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("default-job")
    before = qemu_pids()
    rc = main(["run", "--kernel", KERNEL, "--out", str(out), "--accel", "auto"])
    assert qemu_pids() <= before
    return rc, out


def test_default_job_passes_and_writes_everything(default_job: tuple[int, Path]) -> None:
    rc, out = default_job
    assert rc == 0, (out / "report.md").read_text()
    for name in ("junit.xml", "results.json", "report.md"):
        assert (out / name).stat().st_size > 0
    assert list(out.glob("*/console.log"))


def test_junit_validates_and_reads_back(default_job: tuple[int, Path]) -> None:
    _, out = default_job
    xmlschema.XMLSchema(str(junit_xsd())).validate(str(out / "junit.xml"))
    xml = junitparser.JUnitXml.fromfile(str(out / "junit.xml"))
    suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(suites) == len(runs) == 1
    cases = list(suites[0])
    assert len(cases) == len(runs[0]["steps"])
    names = {c.name for c in cases}
    assert "boot" in names
    assert {
        "fio/raw-nvme0/randread-4k",
        "fio/raw-scsi0/randread-4k",
        "fio/loop-dio-on-xfs/randwrite-4k",
        "fio/loop-dio-off-xfs/randread-4k",
    } <= names
    props = {p.name: p.value for p in suites[0].properties()}
    assert props["kernel.spec"] == KERNEL
    assert props["kernel.release"].startswith("6.12.")
    assert props["accel"] in ("tcg", "kvm")
    assert props["qemu_version"] and props["fio_version"].startswith("fio-")
    assert props["topology"] == "default"


def test_guest_saw_the_topology(default_job: tuple[int, Path]) -> None:
    _, out = default_job
    agent = json.loads(next(out.glob("*/shared/agent.json")).read_text())
    assert set(agent["disks"]) == {"nvme0", "scsi0"}
    assert agent["disks"]["nvme0"].startswith("/dev/nvme")
    run = json.loads((out / "results.json").read_text())["runs"][0]
    raw = next(s for s in run["steps"] if s["id"] == "fio/raw-nvme0/randread-4k")
    assert raw["metrics"]["read_iops"] > 0
    assert agent["disks"]["scsi0"].startswith("/dev/sd")
    # 4 queues offered by each controller, capped by blk-mq at one per vCPU (2), plus the
    # NVMe's poll queue
    assert agent["disk_queues"] == {"nvme0": 3, "scsi0": 2}


def test_debian_boots_through_the_harness_initramfs(default_job: tuple[int, Path]) -> None:
    """A modular kernel: its root modules and disk drivers came from the harness's initramfs,
    and the host's root is cached in the guest (virtme-ng's own initramfs mounts it without
    cache=loose)."""
    _, out = default_job
    agent = json.loads(next(out.glob("*/shared/agent.json")).read_text())
    kind, options = agent["root_mount"].split()
    assert kind == "9p" and ("cache=0xf" in options or "cache=loose" in options), options
    console = next(out.glob("*/console.log")).read_text(errors="replace")
    assert "harness initramfs: loading nvme" in console and "virtme initramfs" not in console
    assert "harness initramfs: done" in console
    assert "harness initramfs: warm-up exited 0" in console  # the agent's --help ran
    assert agent["disk_problems"] == {}


def test_missing_kernel_path_is_a_usage_error(tmp_path: Path, capsys, no_qemu_left) -> None:
    rc = main(["run", "--kernel", f"image:{tmp_path}/missing/bzImage", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and len(err.strip().splitlines()) == 1


def test_unknown_debian_version_lists_available(tmp_path: Path, capsys) -> None:
    rc = main(["run", "--kernel", "debian:5.4", "--out", str(tmp_path)])
    assert rc == 2
    assert "available:" in capsys.readouterr().err


def test_malformed_topology_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "topo.json"
    bad.write_text('{"disks": [{"name": "nvme0", "bus": "floppy"}]}')
    rc = main(["run", "--kernel", KERNEL, "--topology", str(bad), "--out", str(tmp_path)])
    assert rc == 2
    assert "bus 'floppy' must be one of" in capsys.readouterr().err


def test_kernel_that_panics_at_boot(tmp_path: Path, no_qemu_left) -> None:
    rc = main(
        [
            "run",
            "--kernel",
            KERNEL,
            "--append",
            # virtme-ng appends its own init=, so break the initramfs instead: no usable
            # rdinit and no root= make the kernel panic ("VFS: Unable to mount root fs").
            "rdinit=/nonexistent",
            "--out",
            str(tmp_path),
            "--boot-timeout",
            "240",
        ]
    )
    assert rc == 1  # the kernel failed, not the harness
    run = json.loads((tmp_path / "results.json").read_text())["runs"][0]
    assert run["stop_reason"] == "panic"
    boot = run["steps"][0]
    assert boot["id"] == "boot" and boot["status"] == "error"
    assert any(s["kind"] == "panic" for s in boot["splats"])
    # the kernel died: the planned steps are "not run" (skipped), the boot case carries it
    assert all(
        s["status"] == "skip" and s["message"].startswith("not run: kernel panicked")
        for s in run["steps"][1:]
    )
    assert run["verdict"]["class"] == "kernel-failure"
    xml = (tmp_path / "junit.xml").read_text()
    assert "<failure" in xml and "Kernel panic" in xml  # a kernel failure, not an error


def test_guest_step_that_hangs_past_its_timeout(tmp_path: Path, no_qemu_left) -> None:
    """fio told to run 600 s in a 5 s step: the agent's own alarm stops it, records an
    error and goes on (the host-side deadline, step timeout + grace, is the backstop for a
    guest that cannot stop itself; test_console.py exercises it on real processes).
    Nothing was blocked in the kernel (the agent's sysrq-w dump listed no task), so the
    run could not tell whether the kernel was at fault: an infrastructure error, exit 2,
    never a kernel verdict. (Under round-robin TCG this run lost NVMe submissions: see
    harness.vm.launch.)"""
    plan = tmp_path / "hang.json"
    plan.write_text(
        json.dumps(
            {
                "name": "hang",
                "runtime_s": 600,
                "size_mb": 64,
                "fio": [
                    {
                        "workloads": ["randread-4k", "randwrite-4k"],
                        "targets": ["raw-nvme0"],
                        "timeout_s": 5,
                    }
                ],
            }
        )
    )
    rc = main(
        [
            "run",
            "--kernel",
            KERNEL,
            "--plan",
            str(plan),
            "--out",
            str(tmp_path / "o"),
            "--step-grace",
            "30",
        ]
    )
    assert rc == 2
    run = json.loads((tmp_path / "o" / "results.json").read_text())["runs"][0]
    assert run["stop_reason"] == "done" and run["splats"] == []
    assert run["verdict"]["class"] == "infra-error"
    assert "step timed out after 5s" in run["verdict"]["summary"]
    hung = [s for s in run["steps"] if s["id"] != "boot"]
    assert len(hung) == 2
    for step in hung:
        assert step["status"] == "error" and "timed out after 5s" in step["message"]
        assert step["duration_s"] < 60
    xml = (tmp_path / "o" / "junit.xml").read_text()
    # the two steps, and the run's "infrastructure" case that carries the verdict
    assert xml.count("<error") == 3 and '<testcase name="infrastructure"' in xml
    assert "<failure" not in xml
