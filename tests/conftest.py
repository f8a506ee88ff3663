"""The two tiers and what they share. tests/unit: no root, no QEMU, fast. tests/vm: real
boots, loop and dm devices, builds, sshd; every test there is marked `slow` by its folder
(pytest -m 'not slow' is the fast lane). Fixtures shared by the slow tier: ONE lean base
build of Debian's linux-source-6.12 per session (in the harness cache, so later sessions and
CI reuse it), variants of it built incrementally in the same object directory, and checks
that nothing is left on the host."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
VM_TIER = Path(__file__).parent / "vm"
SERIES = DATA / "series"
LEAN_BASE = "src:debian:linux-source-6.12"


def lean_variant_spec(series: str, *configs: str) -> str:
    """The spec of the lean base plus tests/data/series/SERIES.mbox (and config fragments)."""
    spec = f"{LEAN_BASE}+series={SERIES / (series + '.mbox')}"
    return spec + (f"+config={','.join(configs)}" if configs else "")


@pytest.fixture(scope="session")
def lean_base():
    """The lean 6.12 base Kernel (a cache hit after the first build anywhere)."""
    from harness.kernel.build import kernel_from_spec

    return kernel_from_spec(LEAN_BASE)


@pytest.fixture(scope="session")
def lean_variant(lean_base) -> Callable[[str], object]:
    """lean_variant("fault-oops") -> the Kernel of base + that series (built incrementally)."""
    from harness.kernel.build import kernel_from_spec

    built: dict[str, object] = {}

    def get(series: str):
        if series not in built:
            built[series] = kernel_from_spec(lean_variant_spec(series))
        return built[series]

    return get


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The folder is the tier: everything under tests/vm is slow."""
    for item in items:
        if VM_TIER in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)


def qemu_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-x", "qemu-system-x86_64"], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def loop_devices() -> str:
    return subprocess.run(["losetup", "-l", "-n"], capture_output=True, text=True).stdout


@pytest.fixture
def host_left_clean() -> Iterator[None]:
    """Fails the test if it left a QEMU process or a loop device behind."""
    qemu, loops = qemu_pids(), loop_devices()
    yield
    assert qemu_pids() <= qemu, "the harness left a QEMU process running"
    assert loop_devices() == loops, "the harness left a loop device behind"
