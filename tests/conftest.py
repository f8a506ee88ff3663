"""The two tiers and what they share. tests/unit: no root, no QEMU, fast. tests/vm: real
boots, loop and dm devices, builds, sshd; every test there is marked `slow` by its folder
(pytest -m 'not slow' is the fast lane). Fixtures shared by the slow tier: ONE lean base
build of Debian's linux-source-6.12 per session (in the harness cache, so later sessions and
CI reuse it), variants of it built incrementally in the same object directory, and checks
that nothing is left on the host."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
VM_TIER = Path(__file__).parent / "vm"
SERIES = DATA / "series"
LEAN_BASE = "src:debian:linux-source-6.12"
# The peer suites' checkouts (blktests, fstests): $HARNESS_PEER_SUITES, else the shared folder
# beside the checkout. Never written: the harness builds copies in its cache.
PEER_SUITES = Path(
    os.environ.get("HARNESS_PEER_SUITES") or ROOT.parent / "shared" / "peer-suites"
).resolve()


def default_sigint() -> None:
    """preexec_fn for a harness child that a test will Ctrl-C: SIGINT back to its default.
    A shell starts a background job (`.ci/run &`) with SIGINT ignored, and the harness keeps
    a signal its parent ignored ignored (harness.signals), so the test's SIGINT would never
    arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def synthetic_loop_c(*series: str) -> str:
    """A drivers/block/loop.c of our own that the named fixture series (tests/data/series/
    NAME.mbox) apply to: every hunk's preimage (context and removed lines) at its line
    number, a filler comment on every other line. No kernel source is kept in the tests."""
    lines: dict[int, str] = {}
    for name in series:
        for start, pre in _loop_c_hunks((SERIES / f"{name}.mbox").read_text()):
            for offset, text in enumerate(pre):
                assert lines.setdefault(start + offset, text) == text, f"{name}: overlapping hunks"
    last = max(lines)
    return "".join(lines.get(n, f"/* synthetic loop.c, line {n} */\n") for n in range(1, last + 1))


def _loop_c_hunks(mbox: str) -> list[tuple[int, list[str]]]:
    """(first line, preimage lines) of every hunk of loop.c in `mbox`."""
    hunks, rows, in_loop = [], iter(mbox.splitlines(keepends=True)), False
    for row in rows:
        if row.startswith("diff --git "):
            in_loop = row.rstrip().endswith("b/drivers/block/loop.c")
        elif in_loop and (m := re.match(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,(\d+))? @@", row)):
            old, new = int(m.group(2) or 1), int(m.group(3) or 1)
            pre: list[str] = []
            while old or new:
                body = next(rows)
                if body.startswith("\\"):
                    continue
                if body.strip("\r\n") == "":  # an empty context line whose space was lost
                    body = " \n"
                if body[:1] in (" ", "-"):
                    pre.append(body[1:] if body[1:] else "\n")
                    old -= 1
                if body[:1] in (" ", "+"):
                    new -= 1
            hunks.append((int(m.group(1)), pre))
    return hunks


def junit_xsd() -> Path:
    """The Jenkins JUnit schema that junit.xml is validated against. It is another project's
    text, so it is not in this repository: $HARNESS_JUNIT_XSD, else the copy in the shared
    folder beside the checkout (../shared/schemas/); a test that needs it and finds neither
    is skipped, saying so."""
    env = os.environ.get("HARNESS_JUNIT_XSD")
    path = Path(env) if env else ROOT.parent / "shared" / "schemas" / "jenkins-junit-10.xsd"
    if not path.is_file():
        pytest.skip(f"no JUnit schema at {path}: set HARNESS_JUNIT_XSD to jenkins-junit-10.xsd")
    return path


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


def _ancestors(pid: int) -> set[int]:
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return seen


def qemu_pids(base: str = "") -> set[int]:
    """QEMU processes started below this process, or (when given) naming `base`."""
    out = subprocess.run(["pgrep", "-x", "qemu-system-x86_64"], capture_output=True, text=True)
    mine = set()
    for pid in (int(p) for p in out.stdout.split()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if os.getpid() in _ancestors(pid) or (base and base in cmdline):
            mine.add(pid)
    return mine


def loop_devices(base: str = "") -> str:
    """`losetup -l` lines, only those whose backing file is under `base` when given."""
    out = subprocess.run(["losetup", "-l", "-n"], capture_output=True, text=True).stdout
    return "".join(line + "\n" for line in out.splitlines() if not base or base in line)


@contextmanager
def left_clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fails if the block left a QEMU process or a loop device of its own behind: QEMU
    started below this pytest or naming its temporary directory, loop devices backed by a
    file in it (what other programs on the machine run is not this test's). For fixtures
    wider than one test; a test uses host_left_clean."""
    base = str(tmp_path_factory.getbasetemp())
    qemu, loops = qemu_pids(base), loop_devices(base)
    yield
    assert qemu_pids(base) <= qemu, "the harness left a QEMU process running"
    assert loop_devices(base) == loops, "the harness left a loop device behind"


@pytest.fixture
def host_left_clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fails the test if it left a QEMU process or a loop device of its own behind."""
    with left_clean(tmp_path_factory):
        yield


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """fn() in a thread; fails the test (instead of hanging the run) when it blocks longer
    than `seconds`; re-raises what fn raised."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"blocked for more than {seconds} s")
    if "error" in box:
        raise box["error"]
    return box["value"]
