"""Boot and plan progress read from a real recorded console (lean 6.12, one fio step), and
from the download directory apt-get fills."""

from __future__ import annotations

from pathlib import Path

from harness import progress
from harness.kernel import download_progress
from harness.klog.markers import parse_marker
from harness.vm.stages import RunStages

DATA = Path(__file__).resolve().parents[1] / "data"


def feed(stages: RunStages, lines: list[str]) -> None:
    for line in lines:
        stages.line(line)
        event = parse_marker(line)
        if event:
            stages.marker(event)


def test_a_boot_reports_the_stages_it_reaches_then_the_plan_counts_steps():
    lines = (DATA / "boot/lean-6.12-harness.log").read_text().splitlines()
    seen: list[progress.Progress] = []
    with progress.reporting(seen.append):
        stages = RunStages(steps_total=1)
        feed(stages, lines)
        stages.close()  # after "done": nothing more
    boot = [(e.note, e.finished) for e in seen if e.stage == "boot"]
    assert boot == [
        ("starting QEMU", False),
        ("kernel started", False),
        ("init started", False),
        ("guest set up", False),
        ("starting the agent", False),
        ("agent started", True),
    ]
    plan = [(e.done, e.total, e.note, e.finished) for e in seen if e.stage == "plan"]
    assert plan == [
        (0, 1, "", False),
        (0, 1, "running fio/raw-nvme0/randread-4k", False),
        (1, 1, "", False),
        (1, 1, "1 steps ended", True),
    ]


def test_a_boot_that_never_reaches_the_agent_says_where_it_stopped():
    lines = (DATA / "boot/lean-6.12-harness.log").read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if "as init process" in line)
    seen: list[progress.Progress] = []
    with progress.reporting(seen.append):
        stages = RunStages(steps_total=10)
        feed(stages, lines[: cut + 1])
        stages.close()
    assert seen[-1].stage == "boot" and seen[-1].finished
    assert seen[-1].note == "stopped at: init started"
    assert not [e for e in seen if e.stage == "plan"]


def test_a_download_total_is_apt_cache_shows_size():
    shown = (DATA / "apt/show-linux-source-6.12.txt").read_text()
    assert download_progress.total_size(shown) == 153531472
    assert download_progress.total_size(shown + "\n" + shown) == 2 * 153531472
    assert download_progress.total_size("Package: x\n") is None


def test_a_download_reports_the_bytes_arriving_on_disk(tmp_path):
    (tmp_path / "partial").mkdir()
    (tmp_path / "linux-source-6.12_6.12.117-1_all.deb").write_bytes(b"x" * 10)  # an old one
    seen: list[progress.Progress] = []
    with progress.reporting(seen.append):
        with download_progress.watching(
            tmp_path, ["linux-source-6.12=6.12.118-1~deb12u1"], 1000, poll_s=3600
        ):
            (tmp_path / "partial/linux-source-6.12_6.12.118-1~deb12u1_all.deb").write_bytes(
                b"x" * 400
            )
    assert seen[0].stage == "download linux-source-6.12" and seen[0].done == 0
    assert seen[-2].done == 400 and seen[-2].total == 1000 and seen[-2].unit == "bytes"
    assert seen[-1].finished
