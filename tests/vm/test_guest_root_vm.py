"""Real boots of Debian's 6.12 in the minimal guest root (harness.vm.guestroot): a step
in the guest cannot read a secret planted in the host's /root, which the host's root shows
it (the control that gives the probe teeth). The default job runs in the minimal root in
tests/vm/test_example_ab_vm.py: an A/B of a series boots both sides there.

Slow: two TCG boots (and, the first time, the root's mmdebstrap build: minutes).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

from harness.kernel.spec import kernel_for_spec
from harness.run.request import RunRequest
from harness.workflows.bisect.script import ScriptExecutor

KERNEL = "debian:6.12"
# A bisect script:-style step: exit 1 when the guest can read the secret or the host's
# trees, and say what the guest's / and /root hold (the step's recorded output).
PROBE = """\
echo "guest /: $(ls /)"
echo "guest /root: $(ls -A /root)"
if [ -e {secret} ]; then echo "secret visible: $(cat {secret})"; exit 1; fi
if [ -e {tree} ]; then echo "host tree {tree} visible"; exit 1; fi
echo "no secret, no host tree"
"""


@pytest.fixture
def secret() -> Path:
    if os.geteuid() != 0:
        pytest.skip("plants a file in /root: needs root")
    path = Path("/root") / f"harness-secret-{secrets.token_hex(6)}"
    path.write_text("do-not-publish\n")
    path.chmod(0o600)
    yield path
    path.unlink(missing_ok=True)


def probe(tmp_path: Path, secret: Path, guest_root: str) -> tuple[str, str]:
    """Run the probe as one step in a guest with that root: (status, its output)."""
    script = tmp_path / f"probe-{guest_root}.sh"
    tree = Path(__file__).resolve().parents[2]  # this checkout, on the host's root
    script.write_text(PROBE.format(secret=secret, tree=tree / "harness" / "vm"))
    req = RunRequest(
        kernel=KERNEL, out_dir=tmp_path / guest_root, accel="tcg", guest_root=guest_root
    )
    run = ScriptExecutor(script, "secret-probe").run(req, kernel_for_spec(KERNEL))
    step = next(s for s in run.steps if s.id == "secret-probe")
    return str(step.status), step.details.get("output", step.message)


def test_minimal_root_hides_the_hosts_secrets(tmp_path: Path, secret: Path) -> None:
    status, output = probe(tmp_path, secret, "minimal")
    assert status == "pass", output
    assert "no secret, no host tree" in output and "do-not-publish" not in output
    argv = json.loads((tmp_path / "minimal" / "vng-argv.json").read_text())
    assert "--root" in argv and not any(a.startswith("--rwdir=/tmp") for a in argv)
    console = (tmp_path / "minimal" / "console.log").read_text(errors="replace")
    assert "do-not-publish" not in console
    # the control: the host's root shows the guest the same secret
    status, output = probe(tmp_path, secret, "host")
    assert status == "fail" and "secret visible: do-not-publish" in output, output
