"""Pure parsers of the guest agent against real recorded outputs (tests/data/fio/)."""

import sys

import pytest

from harness.paths import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT))  # guest/ is not an installed package

from guest import disks, metrics  # noqa: E402

DATA = PROJECT_ROOT / "tests" / "data" / "fio"


def _load(name: str) -> dict:
    return metrics.load_fio_json((DATA / name).read_text())


def test_randread_metrics_from_real_fio_json():
    found, ios = metrics.fio_metrics(_load("randread-4k-file-xfs.json"))
    assert set(found) == {"read_bw_mib", "read_iops", "read_clat_p50_us", "read_clat_p99_us"}
    assert ios == 42409
    assert found["read_bw_mib"] == pytest.approx(81.205, abs=0.001)
    assert found["read_clat_p50_us"] == pytest.approx(222.208)
    assert found["read_clat_p99_us"] == pytest.approx(8847.36)


def test_mixed_grouped_run_reports_both_directions():
    found, ios = metrics.fio_metrics(_load("mikulas-rw-libaio-grouped.json"))
    assert {"read_iops", "write_iops", "read_clat_p99_us", "write_clat_p99_us"} <= set(found)
    assert ios > 0
    assert found["read_clat_p50_us"] <= found["read_clat_p99_us"]


def test_ungrouped_jobs_sum_throughput_and_take_worst_percentile():
    data = _load("randrw-2jobs-ungrouped.json")
    assert len(data["jobs"]) == 2
    found, ios = metrics.fio_metrics(data)
    per_job = [job["read"]["iops"] for job in data["jobs"]]
    assert found["read_iops"] == pytest.approx(sum(per_job), abs=0.01)
    worst = max(job["read"]["clat_ns"]["percentile"]["99.000000"] for job in data["jobs"])
    assert found["read_clat_p99_us"] == pytest.approx(worst / 1000)
    assert ios == sum(j["read"]["total_ios"] + j["write"]["total_ios"] for j in data["jobs"])


def test_verify_failure_is_reported_as_job_error():
    data = _load("verify-failed.json")
    assert metrics.fio_errors(data) == ["job integrity: error 84"]
    assert metrics.fio_errors(_load("randread-4k-file-xfs.json")) == []


def test_fio_json_after_warning_lines():
    text = "fio: some warning\n" + (DATA / "randread-4k-file-xfs.json").read_text()
    assert metrics.load_fio_json(text)["fio version"] == "fio-3.33"
    with pytest.raises(ValueError):
        metrics.load_fio_json("fio: file not found\n")


def test_proc_stat_deltas_from_real_samples():
    before = metrics.parse_proc_stat((DATA / "proc_stat_before.txt").read_text())
    after = metrics.parse_proc_stat((DATA / "proc_stat_after.txt").read_text())
    assert after["ctxt"] > before["ctxt"] and after["total"] > before["total"]
    per_io = metrics.per_io_metrics(before, after, 1000)
    assert per_io["ctxsw_per_io"] == pytest.approx((after["ctxt"] - before["ctxt"]) / 1000, 1e-3)
    busy_us = (after["busy"] - before["busy"]) * 10_000
    assert per_io["cpu_us_per_io"] == pytest.approx(busy_us / 1000, 1e-3)
    assert metrics.per_io_metrics(before, after, 0) == {}


def test_proc_stat_busy_excludes_idle_and_iowait():
    text = "cpu  10 0 5 100 7 1 2 0 0 0\nctxt 42\n"
    assert metrics.parse_proc_stat(text) == {"busy": 18, "total": 125, "ctxt": 42}


def test_splat_finder_catches_guard_page_and_warning_but_not_noise():
    lines = [
        "loop1: detected capacity change from 0 to 524288",
        "BUG: TASK stack guard page was hit at 00000000b6fa2b52 (stack is 0000000075c1e4ac..)",
        "Oops: stack guard page: 0000 [#1] PREEMPT SMP NOPTI",
        "CPU: 1 PID: 77 Comm: kworker/u8:2",
    ]
    found = metrics.find_splats(lines, context=3)
    assert len(found) == 1 and found[0].startswith("BUG: TASK stack guard page")
    assert metrics.find_splats(["XFS (loop1): Mounting V5 Filesystem", "EXT4-fs mounted"]) == []


def test_disks_by_serial_from_real_virtme_lsblk():
    found = disks.serials_from_lsblk((DATA / "lsblk-virtme-nvme-scsi.json").read_text())
    assert found == {"HSCSI0": "/dev/sda", "HNVME0": "/dev/nvme0n1"}


def test_vpd_page_80_serial():
    raw = b"\x00\x80\x00\x06HSCSI0"
    assert disks.vpd_serial(raw) == "HSCSI0"
    assert disks.vpd_serial(b"\x00") == ""


def test_stack_trace_from_real_debian_612_tracer():
    text = (DATA / "stack_trace-debian-6.12.txt").read_text()
    frames = metrics.parse_stack_trace(text, top=3)
    assert frames == [
        {"depth": 4168, "size": 48, "location": "__rcu_read_lock+0x9/0x30"},
        {"depth": 4120, "size": 80, "location": "xa_load+0x54/0xb0"},
        {"depth": 4040, "size": 24, "location": "xfs_perag_get+0x23/0x90"},
    ]
    assert len(metrics.parse_stack_trace(text, top=100)) == 28


def test_builtin_driver_without_module_entry_is_not_missing(monkeypatch) -> None:
    """A lean kernel: sd_mod built in, no /sys/module/sd_mod, no modules.builtin; the driver
    is registered on its bus, so nothing is modprobed and nothing is a problem."""
    registered = {"/sys/bus/scsi/drivers/sd", "/sys/bus/virtio/drivers/virtio_scsi"}
    monkeypatch.setattr(disks.os.path, "isdir", lambda p: p in registered)
    read = []
    monkeypatch.setattr(disks.sh, "read_text", lambda path, default=None: read.append(path))
    calls = []
    monkeypatch.setattr(disks.sh, "run", lambda argv, check=True: calls.append(argv) or (1, "x"))
    assert disks.load_drivers([{"name": "scsi0", "bus": "scsi", "serial": "s"}]) == {}
    assert calls == [] and read == []  # sysfs said it all: modules.builtin not even read
    problems = disks.load_drivers([{"name": "nvme0", "bus": "nvme", "serial": "n"}])
    assert calls == [["modprobe", "-a", "nvme"], ["modprobe", "nvme"]]
    assert "needs driver nvme" in problems["nvme0"]


def test_drivers_load_in_one_modprobe_and_a_failure_names_its_module(monkeypatch) -> None:
    monkeypatch.setattr(disks.os.path, "isdir", lambda p: False)
    monkeypatch.setattr(disks.sh, "read_text", lambda path, default=None: default)
    calls = []

    def modprobe(argv, check=True):  # noqa: ANN001, ANN202 - sh.run's shape
        calls.append(argv)
        return (0, "") if argv == ["modprobe", "-a", "nvme", "sd_mod", "virtio_scsi"] else (1, "")

    monkeypatch.setattr(disks.sh, "run", modprobe)
    wanted = [{"name": "nvme0", "bus": "nvme"}, {"name": "scsi0", "bus": "scsi"}]
    assert disks.load_drivers(wanted) == {} and len(calls) == 1
    calls.clear()
    monkeypatch.setattr(
        disks.sh,
        "run",
        lambda argv, check=True: (
            calls.append(argv)
            or ((1, "FATAL: Module sd_mod not found") if "sd_mod" in argv else (0, ""))
        ),
    )
    problems = disks.load_drivers(wanted)
    assert list(problems) == ["scsi0"] and "needs driver sd_mod" in problems["scsi0"]
    assert "Module sd_mod not found" in problems["scsi0"]


def test_agent_arguments(capsys) -> None:
    from guest import agent

    assert agent.parse_args(["--plan", "p.json", "--results=r", "-v"]) == {
        "plan": "p.json",
        "results": "r",
        "verbose": True,
    }
    bad_lines = (
        (["--plan", "p"], "missing --results"),
        (["--plan"], "needs a value"),
        (["--plan", "p", "--results", "r", "-x"], "unknown argument '-x'"),
    )
    for bad, why in bad_lines:
        with pytest.raises(SystemExit) as stop:
            agent.parse_args(bad)
        assert stop.value.code == 2 and why in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        agent.parse_args(["--help"])
    assert stop.value.code == 0 and "usage: agent.py --plan" in capsys.readouterr().out


def test_sysfs_serials_skip_disks_without_a_device_node(tmp_path) -> None:
    """A multipath NVMe's per-path disk (nvme0c0n1) is in sysfs but has no /dev node: the
    serial must map to the head (nvme0n1), which sorts after it."""
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    for name, serial in (("nvme0c0n1", "HNVME0   "), ("nvme0n1", "HNVME0   ")):
        (sysfs / name / "device").mkdir(parents=True)
        (sysfs / name / "device" / "serial").write_text(serial)
    (sysfs / "sda" / "device").mkdir(parents=True)
    page = b"\x00\x80\x00\x06HSCSI0"
    (sysfs / "sda" / "device" / "vpd_pg80").write_bytes(page)
    dev.mkdir()
    for name in ("nvme0n1", "sda"):
        (dev / name).touch()
    found = disks.serials_from_sysfs(str(sysfs), str(dev))
    assert found == {"HNVME0": f"{dev}/nvme0n1", "HSCSI0": f"{dev}/sda"}


def test_lsblk_runs_only_for_serials_sysfs_does_not_show(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(disks, "serials_from_sysfs", lambda: {"HNVME0": "/dev/nvme0n1"})
    monkeypatch.setattr(disks.sh, "which", lambda tool: "/usr/bin/" + tool)

    def run(argv, check=True):
        calls.append(argv)
        return 0, '{"blockdevices": [{"name": "sda", "serial": "HSCSI0"}]}'

    monkeypatch.setattr(disks.sh, "run", run)
    assert disks._lookup({"HNVME0"}) == {"HNVME0": "/dev/nvme0n1"}
    assert calls == []
    assert disks._lookup({"HNVME0", "HSCSI0"})["HSCSI0"] == "/dev/sda"
    assert calls and calls[0][0] == "lsblk"


def test_root_mount_reads_how_the_guest_mounted_the_hosts_root() -> None:
    from guest import agent

    mounts = PROJECT_ROOT / "tests" / "data" / "boot" / "proc-mounts-debian-6.12.txt"
    assert agent.root_mount(str(mounts)) == (
        "9p ro,relatime,cache=0xf,access=any,msize=512000,trans=virtio"
    )
    assert agent.root_mount("/nonexistent") == ""
