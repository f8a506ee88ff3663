"""Remote hygiene against a real sshd on 127.0.0.1, with a stand-in for the remote harness
(a shell script; no VM): the run's directory there is removed after a failed, an interrupted
and a timed-out run; a local interrupt stops the remote process group; the connection keeps
itself alive; the results come home streamed to disk, and what the remote's guest planted
(a symlink out, a FIFO, a device node) is not recreated here."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import signals
from harness.kernel.model import Kernel
from harness.paths import cache_dir
from harness.run import remote as remote_mod
from harness.run import remote_ship
from harness.run.remote import HostDropped, Job, RemoteHost
from harness.run.remote_pool import run_pool
from harness.run.remote_ship import Host, RemoteOptions
from harness.run.request import RunRequest
from tests.conftest import default_sigint, within
from tests.vm.test_remote_sshd_vm import keygen, start_sshd
from tests.vm.test_remote_vm import PLAN

SLEEPER = """#!/bin/sh
echo $$ >> "{pids}"
sleep 300 &
echo $! >> "{pids}"
wait
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("sshd-hygiene")
    pub = keygen(root / "client")
    sshd = start_sshd(root / "server", root / "client", pub)
    (root / "known_hosts").write_text(sshd.known_hosts_line())
    yield sshd, root
    sshd.stop()


@pytest.fixture
def remote(server, tmp_path: Path, monkeypatch) -> Callable[[str], RemoteHost]:
    """remote(SCRIPT) -> a RemoteHost whose `harness` is that script, under tmp_path."""
    sshd, root = server
    hosts: list[RemoteHost] = []

    def make(script: str) -> RemoteHost:
        fake = tmp_path / "fake-harness"
        fake.write_text(script.format(pids=tmp_path / "pids"))
        fake.chmod(0o755)
        monkeypatch.setattr(remote_ship, "install", lambda host, root: str(fake))
        opts = RemoteOptions((Host.parse(sshd.host),), root / "client", root / "known_hosts")
        host = RemoteHost(opts.hosts[0], opts)
        host.root = str(tmp_path / "remote-root")
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.close()
    for pid in _pids(tmp_path):  # what a failed test left running
        _kill(pid)


def _job(tmp_path: Path) -> Job:
    req = RunRequest(kernel="debian:6.12", out_dir=tmp_path / "out")
    return Job(req, Kernel("debian:6.12", tmp_path / "bzImage", "6.12.0"), ("s1",), "p", "t")


@contextlib.contextmanager
def _sigint_not_ignored() -> Iterator[None]:
    """Ctrl-C as in a foreground terminal, in this process (conftest.default_sigint says why)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _runs(tmp_path: Path) -> list[str]:
    runs = tmp_path / "remote-root" / "runs"
    return sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []


def _pids(tmp_path: Path) -> list[int]:
    path = tmp_path / "pids"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone_within(seconds: float, pids: list[int]) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


@pytest.mark.parametrize(
    "script",
    ["#!/bin/sh\necho boom >&2\nexit 3\n", "#!/bin/sh\nexit 2\n"],
    ids=["no-status", "no-results"],
)
def test_a_failed_remote_run_leaves_no_directory_there(remote, tmp_path: Path, script) -> None:
    host = remote(script)
    try:
        result = host.run_job(_job(tmp_path))
        assert result.infra_error  # exit 2 and no results.json: a failed result
    except HostDropped:
        pass  # exit 3: no exit status the harness gives
    assert _runs(tmp_path) == []


def test_a_local_interrupt_stops_the_remote_group_and_removes_its_dir(
    remote, tmp_path: Path
) -> None:
    host = remote(SLEEPER)

    def interrupt_when_running() -> None:
        deadline = time.monotonic() + 30
        while len(_pids(tmp_path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_running, daemon=True).start()
    t0 = time.monotonic()
    with _sigint_not_ignored(), pytest.raises(KeyboardInterrupt), signals.handling():
        run_pool([_job(tmp_path)], [host])
    pids = _pids(tmp_path)
    assert len(pids) == 2, "the stand-in never ran"
    assert _gone_within(10, pids) == [], "the remote run went on after the local interrupt"
    assert _runs(tmp_path) == []
    assert time.monotonic() - t0 < 60


def test_a_remote_run_past_its_deadline_is_stopped_and_removed(
    remote, tmp_path: Path, monkeypatch
) -> None:
    host = remote(SLEEPER)
    monkeypatch.setattr(remote_mod, "run_timeout_s", lambda timeouts: 3.0, raising=False)
    with pytest.raises(HostDropped, match="no end after 3 s"):
        within(60, lambda: host.run_job(_job(tmp_path)))
    assert _gone_within(10, _pids(tmp_path)) == []
    assert _runs(tmp_path) == []


def test_the_connection_sends_keepalives(remote) -> None:
    host = remote("#!/bin/sh\n")
    transport = host.conn.client.get_transport()
    assert transport.packetizer._Packetizer__keepalive_interval > 0
    assert transport.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1


def test_the_fetch_skips_links_fifos_and_devices_the_guest_planted(remote, tmp_path) -> None:
    """The old fetch called tarfile's filter=, which Debian 12's Python 3.11.2 lacks."""
    host = remote("#!/bin/sh\n")
    there = tmp_path / "there"
    (there / "shared").mkdir(parents=True)
    (there / "results.json").write_text('{"runs": []}')
    (there / "shared" / "steps.jsonl").symlink_to("/etc/passwd")
    os.mkfifo(there / "shared" / "agent.json")
    os.mknod(there / "shared" / "zero", 0o600 | 0o020000, os.makedev(1, 5))
    local = tmp_path / "here"
    host.get_tree(str(there), local)
    got = sorted(str(p.relative_to(local)) for p in local.rglob("*"))
    assert got == ["results.json", "shared"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def _big_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for _ in range(size >> 20):
            fh.write(os.urandom(1 << 20))


def _peak_bytes(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_fetch_streams_to_disk_not_memory(remote, tmp_path: Path) -> None:
    host = remote("#!/bin/sh\n")
    there, local, size = tmp_path / "there", tmp_path / "here", 64 << 20
    _big_file(there / "disk.img", size)
    peak = _peak_bytes(lambda: host.get_tree(str(there), local))
    assert (local / "disk.img").read_bytes() == (there / "disk.img").read_bytes()
    assert peak < 24 << 20, f"peak {peak >> 20} MiB of Python memory for a {size >> 20} MiB fetch"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # tar removed


def test_shipping_streams_too(remote, tmp_path: Path) -> None:
    host = remote("#!/bin/sh\n")
    image, size = tmp_path / "modules" / "big.ko", 64 << 20
    _big_file(image, size)
    there = tmp_path / "there"
    peak = _peak_bytes(
        lambda: host.put_tree({"kernel/modules": image.parent, "request.json": b"{}"}, str(there))
    )
    assert (there / "kernel/modules/big.ko").read_bytes() == image.read_bytes()
    assert (there / "request.json").read_bytes() == b"{}"
    assert peak < 24 << 20, f"peak {peak >> 20} MiB of Python memory to ship {size >> 20} MiB"


def test_ctrl_c_stops_a_real_remote_run_and_its_vm(server, tmp_path: Path) -> None:
    """The whole path: `harness run --host` here, a real harness and VM there; SIGINT here
    stops the remote harness's group, which stops its VM, and removes the run's directory."""
    sshd, root = server
    (tmp_path / "plan.json").write_text(json.dumps(PLAN))
    argv = [
        str(Path(sys.executable).parent / "harness"),
        "run",
        "--plan",
        str(tmp_path / "plan.json"),
        "--accel",
        "tcg",
        "--out",
        str(tmp_path / "out"),
        "--host",
        sshd.host,
        "--ssh-key",
        str(root / "client"),
        "--known-hosts",
        str(root / "known_hosts"),
        "--remote-cache",
        str(cache_dir()),
    ]
    proc = subprocess.Popen(argv, start_new_session=True, preexec_fn=default_sigint)
    running: list[int] = []
    try:
        rdir, running = _wait_for_remote_vm(sshd, proc)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(120)
        assert code == 2
        # by pid: an orphaned QEMU would no longer be below sshd
        assert _gone_within(30, running) == [], "the remote run or its VM went on"
        assert sshd.descendants() == []
        assert not rdir.exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in running + sshd.descendants():  # what a failed run left there
            _kill(pid)


def _wait_for_remote_vm(sshd, proc) -> tuple[Path, list[int]]:
    """Once the VM runs there: the remote run's directory and every process of the run."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        pids = sshd.descendants()
        lines = [_cmdline(pid) for pid in pids]
        out = next((x.split(" --out ")[1].split()[0] for x in lines if " --request " in x), "")
        if out and any("qemu-system" in x for x in lines):
            return Path(out).parent, pids
        time.sleep(0.5)
    pytest.fail("no VM on the remote host")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""
