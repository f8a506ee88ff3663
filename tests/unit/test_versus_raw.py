"""How each target compared with the raw device under it, as the CLI prints it (issue #25
item 1), from a recorded default job: tests/data/run/default-job-results.json is `harness
run` with no arguments (Debian 6.12, the quick plan with its sparse, reflink and truncate
checks) under TCG on a loaded 2-core host, so its figures are the emulator's and noisy."""

import json
from pathlib import Path

from harness.cli.run import raw_under, run_summary
from harness.report.versus_raw import shares, summary_lines
from harness.results.model import RunResult

RECORDED = Path(__file__).parents[1] / "data" / "run" / "default-job-results.json"


def _runs() -> list[RunResult]:
    return [RunResult.from_dict(r) for r in json.loads(RECORDED.read_text())["runs"]]


def test_raw_device_under_each_target_comes_from_the_suite():
    assert raw_under(_runs()) == {
        "raw-nvme0": "raw-nvme0",
        "raw-scsi0": "raw-scsi0",
        "file-xfs": "raw-nvme0",
        "loop-dio-on-xfs": "raw-nvme0",
        "loop-dio-off-xfs": "raw-nvme0",
    }


def test_loop_against_the_nvme_under_it_per_workload():
    run = _runs()[0]
    got = {(s.target, s.workload, s.metric): s for s in shares(run, raw_under([run]))}
    share = got[("loop-dio-on-xfs", "randread-4k", "read_iops")]
    # 495.768 IOPS over loop (dio on) against 9393.727 on raw-nvme0 in the recording
    assert share.raw == "raw-nvme0" and abs(share.ratio - 495.768 / 9393.727) < 1e-9
    assert got[("raw-scsi0", "randwrite-4k", "write_clat_p99_us")].ratio == 1.0
    assert ("loop-dio-on-xfs", "randread-4k", "write_iops") not in got
    assert summary_lines(shares(run, raw_under([run]))) == [
        "file-xfs vs raw-nvme0: randread-4k 0.38x IOPS (p99 3.00x), "
        "randwrite-4k 0.84x IOPS (p99 1.70x)",
        "loop-dio-on-xfs vs raw-nvme0: randread-4k 0.05x IOPS (p99 73.07x), "
        "randwrite-4k 1.15x IOPS (p99 0.92x)",
        "loop-dio-off-xfs vs raw-nvme0: randread-4k 0.17x IOPS (p99 9.13x), "
        "randwrite-4k 1.59x IOPS (p99 0.29x)",
    ]


def test_the_cli_summary_says_how_loop_compared():
    lines = run_summary(_runs()[0])
    assert lines[0] == "PASS debian:6.12 (6.12.118+deb12-amd64) on default under TCG: 14 pass"
    assert any(
        line.startswith("  loop-dio-on-xfs vs raw-nvme0: randread-4k 0.05x IOPS") for line in lines
    )


def test_a_target_without_its_raw_device_measured_has_no_share():
    run = _runs()[0]
    without_raw = {"loop-dio-on-xfs": "raw-nvme0"}  # raw-nvme0 itself not mapped: not a base
    assert summary_lines(shares(run, without_raw))[0].startswith("loop-dio-on-xfs vs raw-nvme0")
    assert shares(run, {"loop-dio-on-xfs": "raw-nvme1"}) == []  # never measured: nothing
