"""The default job on a lean built kernel (drivers built in, no modules, no initramfs
support), booted the fast way (udev and tmpfiles stand-ins, bundled agent, cached root):
every step passes, the virtio-scsi rows included (a built-in sd_mod has no /sys/module entry
and no modules.builtin; the agent once called it missing), and the agent used the bundle."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cli.main import main
from tests.conftest import LEAN_BASE


def test_default_job_passes_on_a_lean_kernel(tmp_path: Path, lean_base, host_left_clean) -> None:
    out = tmp_path / "out"
    assert main(["run", "--kernel", LEAN_BASE, "--out", str(out)]) == 0, out / "report.md"
    run = json.loads((out / "results.json").read_text())["runs"][0]
    statuses = {s["id"]: s["status"] for s in run["steps"]}
    assert set(statuses.values()) == {"pass"}, statuses
    assert any("raw-scsi0" in step for step in statuses), statuses
    argv = json.loads(next(out.glob("*/vng-argv.json")).read_text())
    exec_line = argv[argv.index("--exec") + 1]
    assert " -S -E " in exec_line and "/agent-bundle/agent-" in exec_line, exec_line
