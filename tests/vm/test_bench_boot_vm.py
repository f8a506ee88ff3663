"""The boot benchmark on real boots: a harness boot that fails is booted once more and reported."""

from __future__ import annotations


def test_a_boot_whose_qemu_crashes_is_booted_again_and_said(
    tmp_path, monkeypatch, host_left_clean
) -> None:
    """A real emulator crash: the first harness boot's QEMU gets SIGSEGV 2 s in. The rep is
    booted again (figures from the good boot only), the failure is reported with the first
    attempt's console log kept, and nothing is left running."""
    import signal

    from harness.workflows.bench import boot as bench
    from tests.conftest import LEAN_BASE
    from tests.qemu_killer import QemuKiller

    killer = QemuKiller(signal.SIGSEGV)
    real_floor = bench.floor_boot

    def floor_then_arm(*args, **kwargs):  # the bare floor QEMU is not the one to crash
        figures = real_floor(*args, **kwargs)
        killer.armed.set()
        return figures

    monkeypatch.setattr(bench, "floor_boot", floor_then_arm)
    try:
        figures, accel = bench.measure(LEAN_BASE, 1, "tcg", tmp_path / "k0")
    finally:
        killer.stop.set()
    assert killer.killed, "the injected QEMU crash never happened"
    assert accel == "tcg" and len(figures.harness_s) == 1
    assert len(figures.rebooted) == 1, figures.rebooted
    assert "console.attempt1.log" in figures.rebooted[0]
    assert (tmp_path / "k0/r0/console.attempt1.log").exists()
