"""The agent inside a real TCG guest with NVMe + virtio-scsi: what host mode can't show here.

The host has no device-mapper and no stack tracer, so the static-extent-map target and the
stack check are exercised in a virtme-ng guest of a Debian kernel. The kernel image comes
from $HARNESS_TEST_KERNEL_IMAGE (modules found at the image's ../lib/modules, as vng does).
"""

import json
import os
import sys
from pathlib import Path

import pytest

from harness import proc
from harness.paths import GUEST_DIR
from harness.suite.plans import build_plan

IMAGE = Path(
    os.environ.get("HARNESS_TEST_KERNEL_IMAGE", "/tmp/kprobe/x/boot/vmlinuz-6.12.111+deb12-amd64")
)
BIN = Path(sys.executable).parent  # vng runs virtme-run by name: the venv must be on PATH
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not IMAGE.is_file(), reason=f"no test kernel at {IMAGE}"),
    pytest.mark.skipif(not (BIN / "vng").exists(), reason="virtme-ng not in the venv"),
]
DISKS = [
    {"name": "nvme0", "bus": "nvme", "serial": "HNVME0"},
    {"name": "scsi0", "bus": "scsi", "serial": "HSCSI0"},
]


def vng_argv(image: Path, rwdir: Path, command: str) -> list[str]:
    """virtme-ng under TCG with one NVMe and one multi-queue virtio-scsi disk."""
    nvme, scsi = rwdir / "nvme0.img", rwdir / "scsi0.img"
    qemu = (
        f"-drive file={nvme},if=none,id=hnvme0,format=raw,cache=none,discard=unmap "
        "-device nvme,drive=hnvme0,serial=HNVME0,max_ioqpairs=2 "
        "-device virtio-scsi-pci,id=hscsi,num_queues=2 "
        f"-drive file={scsi},if=none,id=hscsi0d,format=raw,cache=none,discard=unmap "
        "-device scsi-hd,drive=hscsi0d,bus=hscsi.0,serial=HSCSI0"
    )
    return [
        "vng",
        "--run",
        str(image),
        "--disable-kvm",
        "--memory",
        "2G",
        "--cpus",
        "2",
        f"--rwdir={rwdir}",
        f"--qemu-opts={qemu}",
        "--exec",
        command,
    ]


def test_static_map_and_stack_in_a_guest(tmp_path):
    src = tmp_path / "src.json"
    src.write_text(
        json.dumps(
            {
                "size_mb": 128,
                "checks": [
                    {"check": "reflink", "targets": ["dm-linear-xfs", "loop-dio-on-xfs"]},
                    {"check": "sparse", "targets": ["dm-linear-xfs"]},
                    {"check": "integrity", "targets": ["dm-linear-xfs"], "params": {"size_mb": 32}},
                    {"check": "stack", "params": {"runtime_s": 5}},
                ],
            }
        )
    )
    plan = build_plan(str(src), disks=DISKS, mode="vm", workdir="/run/harness")
    # The same reflink check without the documented expectation: the harness must fail it.
    strict = dict(next(s for s in plan["steps"] if s["id"] == "check/reflink/dm-linear-xfs"))
    strict.pop("xfail")
    strict["id"] += "/strict"
    tight = dict(next(s for s in plan["steps"] if s["id"] == "check/stack/nested-loop-xfs"))
    tight["params"] = {"runtime_s": 5, "max_stack_bytes": 1024}
    tight["id"] += "/budget-1k"
    plan["steps"] += [strict, tight]
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    for disk in ("nvme0.img", "scsi0.img"):
        with open(tmp_path / disk, "wb") as fh:
            fh.truncate(3 << 30)
    command = (
        f"python3 {GUEST_DIR / 'agent.py'} --plan {tmp_path / 'plan.json'} "
        f"--results {tmp_path / 'res'}"
    )
    res = proc.run(
        vng_argv(IMAGE, tmp_path, command), timeout=1800, cwd=IMAGE.parent.parent, check=False
    )
    lines = (tmp_path / "res" / "steps.jsonl").read_text().splitlines()
    rec = {r["id"]: r for r in map(json.loads, lines)}
    assert '@@HARNESS {"event": "done", "rc": 1}' in res.stdout, res.stdout[-2000:]
    assert rec["check/reflink/dm-linear-xfs"]["status"] == "xfail"
    assert "changed the clone" in rec["check/reflink/dm-linear-xfs"]["message"]
    assert rec["check/reflink/dm-linear-xfs/strict"]["status"] == "fail"
    assert rec["check/reflink/loop-dio-on-xfs"]["status"] == "pass"
    assert rec["check/sparse/dm-linear-xfs"]["status"] == "xfail"
    assert rec["check/integrity/dm-linear-xfs"]["status"] == "pass"
    stack = rec["check/stack/nested-loop-xfs"]
    assert stack["status"] == "pass" and stack["metrics"]["stack_max_bytes"] > 1024
    assert stack["details"]["stack_trace"]
    tight_rec = rec["check/stack/nested-loop-xfs/budget-1k"]
    assert tight_rec["status"] == "fail" and "exceeds the 1024-byte budget" in tight_rec["message"]
