"""The boot benchmark's parsers on recorded real boots (tests/data/boot/, `harness bench
boot --kernel debian:6.12 --kernel src:debian:linux-source-6.12`, TCG): the guest-clock
milestones, the agent's start and first-step uptimes, the per-stage split, and the floor's
uptime from both floor media (initramfs for Debian, a root disk for a lean kernel)."""

from __future__ import annotations

import pytest

from harness.paths import PROJECT_ROOT
from harness.vm.initramfs import ready_uptime
from harness.workflows.bench.boot import STAGES, event_uptimes, milestones, stages

DATA = PROJECT_ROOT / "tests" / "data" / "boot"


def _text(name: str) -> str:
    return (DATA / name).read_text(errors="replace")


@pytest.mark.parametrize(
    ("log", "init", "script", "start", "begin"),
    [
        ("debian-6.12-harness.log", 3.22, 5.72, 8.27, 10.26),  # vng's initramfs runs /init
        ("lean-6.12-harness.log", 2.15, 2.98, 4.05, 4.37),  # no initramfs: virtme-ng-init itself
    ],
)
def test_harness_boot_split(log: str, init: float, script: float, start: float, begin: float):
    text = _text(log)
    marks, events = milestones(text), event_uptimes(text)
    assert marks["init"] == pytest.approx(init, abs=0.01)
    assert marks["script"] == pytest.approx(script, abs=0.01)
    assert marks["init"] < marks["tmpfiles"] < marks["basic-done"] <= marks["script"]
    assert events == {"start": start, "begin": begin}
    split = stages(start + 1.5, marks, events)  # 1.5 s of host time before the kernel's clock
    assert tuple(split) == STAGES
    assert split["qemu+firmware"] == pytest.approx(1.5)
    assert split["agent prep"] == pytest.approx(begin - start)
    assert sum(split.values()) == pytest.approx(start + 1.5 + begin - start)


def test_split_needs_the_agents_start() -> None:
    text = _text("lean-6.12-harness.log")
    assert stages(5.0, milestones(text), {}) == {}
    no_begin = stages(5.0, milestones(text), {"start": 4.05})
    assert "agent prep" not in no_begin and "agent start" in no_begin


@pytest.mark.parametrize(
    ("log", "uptime"), [("debian-6.12-floor.log", 2.40), ("lean-6.12-floor-rootdisk.log", 1.54)]
)
def test_floor_uptime(log: str, uptime: float) -> None:
    assert ready_uptime(_text(log)) == uptime
    assert ready_uptime("HARNESS-INIT-READY\n") is None  # an old floor without its uptime


def test_a_floor_boot_that_fails_once_is_booted_again(tmp_path, monkeypatch) -> None:
    """The floor's retry: the first attempt's log is kept and named, the figures are the
    second attempt's; a second failure is the benchmark's error."""
    from harness.errors import InfraError
    from harness.workflows.bench import boot as bench

    calls = []

    def flaky_floor(kernel, accel, log_path):
        calls.append(log_path)
        log_path.write_text(f"attempt {len(calls)}")
        if len(calls) == 1:
            raise InfraError(f"the bare-QEMU floor boot never reached busybox init ({log_path})")
        return 2.5, {"kernel": 1.5}

    monkeypatch.setattr(bench, "floor_boot", flaky_floor)
    log = tmp_path / "floor-r0.log"
    seconds, split, why = bench.floor_boot_retried(None, "tcg", log)
    assert (seconds, split) == (2.5, {"kernel": 1.5})
    assert "floor-r0.attempt1.log" in why and log.read_text() == "attempt 2"
    assert (tmp_path / "floor-r0.attempt1.log").read_text() == "attempt 1"
    calls.clear()
    monkeypatch.setattr(bench, "floor_boot", lambda *a: (_ for _ in ()).throw(InfraError("x")))
    with pytest.raises(InfraError):
        bench.floor_boot_retried(None, "tcg", log)
