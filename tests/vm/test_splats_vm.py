"""The splat detector on a real boot of a Debian kernel."""

from __future__ import annotations

import os

from harness.klog.splats import SplatScanner
from tests.unit.test_splats import CONSOLE


def test_live_sysrq_crash_is_detected_while_streaming():
    """Boot the real Debian kernel under TCG, crash it, and scan its console line by line."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "capture_logs", CONSOLE.parent / "capture_logs.py"
    )
    capture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(capture)
    from harness.kernel.spec import kernel_for_spec

    kernel = os.environ.get("HARNESS_SPLAT_KERNEL") or str(kernel_for_spec("debian:6.12").image)
    _, console = capture.boot_console(kernel, "echo c > /proc/sysrq-trigger")
    scanner = SplatScanner()
    for line in console.split("\n"):
        scanner.feed(line)
    assert scanner.fatal
    (panic,) = scanner.finish()
    assert (panic.kind, panic.title) == (
        "panic",
        "Kernel panic - not syncing: sysrq triggered crash",
    )
    assert "sysrq_handle_crash" in panic.excerpt
