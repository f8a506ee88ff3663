"""A real sshd on 127.0.0.1 for the remote tests (its own config, host key and an authorised
key made for the test, torn down after), and the fast remote tests: host specs, host-key
checks (a wrong key is refused in one line, exit 2), what a run ships."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import UserError
from harness.kernel.model import Kernel
from harness.run.remote_ship import Host, RemoteOptions, connect, payload
from harness.run.request import RunRequest

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class Sshd:
    """One sshd listening on 127.0.0.1:port, started in its own session."""

    root: Path
    port: int
    proc: subprocess.Popen
    host_pub: str
    client_key: Path

    @property
    def host(self) -> str:
        return f"root@127.0.0.1:{self.port}"

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {' '.join(self.host_pub.split()[:2])}\n"

    def descendants(self) -> list[int]:
        """Every process below this sshd (its sessions and what they started)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        out, todo = [], [self.proc.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                out.append(child)
                todo.append(child)
        return out

    def kill_sessions(self) -> None:
        """Stop listening, then kill every session and everything it started (by pid)."""
        pids = self.descendants()
        self.stop()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _die_with_parent() -> None:
    """In the sshd child: SIGTERM it when the test process dies, even by SIGKILL or a CI
    cancel that skips fixture teardown (a test daemon must never outlive its test)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_sshd(root: Path, client_key: Path, client_pub: str) -> Sshd:
    root.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    host_pub = keygen(root / "host_ed25519")
    (root / "authorized_keys").write_text(client_pub + "\n")
    port = free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_ed25519'}\n"
        f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nLogLevel ERROR\n"
        "MaxStartups 20\nMaxSessions 20\n"
    )
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=open(root / "sshd.log", "w"),
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return Sshd(root, port, proc, host_pub, client_key)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"sshd did not listen: {(root / 'sshd.log').read_text()}")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if not Path(SSHD).exists():
        pytest.fail("openssh-server is not installed: run ./bootstrap.sh")
    root = tmp_path_factory.mktemp("sshd")
    pub = keygen(root / "client")
    server = start_sshd(root / "server", root / "client", pub)
    (root / "known_hosts").write_text(server.known_hosts_line())
    yield server, root
    server.stop()


def test_host_specs_parse_and_bad_ones_are_usage_errors() -> None:
    assert Host.parse("lab1") == Host("lab1", None, 22)
    assert Host.parse("me@lab1:2222") == Host("lab1", "me", 2222)
    assert Host.parse("[::1]:22") == Host("::1", None, 22)
    assert str(Host.parse("me@lab1:2222")) == "me@lab1:2222"
    with pytest.raises(UserError, match=r"\[USER@\]HOST\[:PORT\]"):
        Host.parse("a@b:99999")


def test_connects_with_the_known_host_key(sshd) -> None:
    server, root = sshd
    opts = RemoteOptions((Host.parse(server.host),), root / "client", root / "known_hosts")
    conn = connect(opts.hosts[0], opts)
    try:
        assert conn.run("echo hello", hide=True, in_stream=False).stdout.strip() == "hello"
    finally:
        conn.close()


def test_wrong_host_key_is_refused_in_one_line_exit_2(sshd, tmp_path: Path, capsys) -> None:
    server, root = sshd
    other = keygen(tmp_path / "other")
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{server.port} {' '.join(other.split()[:2])}\n")
    argv = [
        "run",
        "--host",
        server.host,
        "--ssh-key",
        str(root / "client"),
        "--known-hosts",
        str(wrong),
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "host key of" in err and "does not match" in err


def test_unknown_host_is_refused_unless_insecure_which_is_recorded(sshd, tmp_path: Path) -> None:
    server, root = sshd
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    host = Host.parse(server.host)
    with pytest.raises(UserError, match="is not in .*--insecure-host-key"):
        connect(host, RemoteOptions((host,), root / "client", empty))
    opts = RemoteOptions((host,), root / "client", empty, insecure_host_key=True)
    connect(host, opts).close()
    assert opts.host_key_note() == "NOT CHECKED (--insecure-host-key)"


def test_payload_ships_plan_topology_and_built_kernels_not_debian_specs(tmp_path: Path) -> None:
    plan = tmp_path / "p.json"
    plan.write_text("{}")
    image = tmp_path / "bzImage"
    image.write_bytes(b"x")
    req = RunRequest(kernel="git:/srv/linux@v6.18", out_dir=tmp_path / "o", plan=str(plan))
    files, sent = payload(req, Kernel(req.kernel, image, "6.18.0"), "/r/run1")
    assert set(files) == {"plan-p.json", "kernel/bzImage", "request.json"}
    assert sent.plan == "/r/run1/plan-p.json" and sent.kernel == "image:/r/run1/kernel/bzImage"
    assert sent.out_dir == Path("/r/run1/out")
    deb = RunRequest(kernel="debian:6.12", out_dir=tmp_path / "o")
    files, sent = payload(deb, Kernel("debian:6.12", image, "6.12.1"), "/r/run2")
    assert set(files) == {"request.json"} and sent.kernel == "debian:6.12"


@pytest.mark.parametrize(
    "command",
    [
        ["ab", "--base", "debian:6.12", "--candidate", "debian:6.12"],
        ["bisect", "--kernels", "debian:6.1,debian:6.12", "--test", "check:sparse"],
        [
            "backport",
            "--series",
            str(Path(__file__).parents[1] / "data/series/harness-probe.mbox"),
            "--base",
            "src:debian:linux-source-6.12",
        ],
    ],
    ids=["ab", "bisect", "backport"],
)
def test_every_workflow_takes_host_and_refuses_a_wrong_key_before_any_work(
    sshd, tmp_path: Path, capsys, command: list[str]
) -> None:
    """--host on ab, bisect and backport: the pool connects first, so a wrong host key is
    one line, exit 2, before a kernel is resolved, built or booted."""
    server, root = sshd
    other = keygen(tmp_path / "other")
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{server.port} {' '.join(other.split()[:2])}\n")
    argv = [
        *command,
        "--host",
        server.host,
        "--ssh-key",
        str(root / "client"),
        "--known-hosts",
        str(wrong),
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "host key of" in err and "does not match" in err
    out = tmp_path / "out"  # nothing resolved, built, run or recorded
    # nothing written but the --out lock the command holds before it connects
    made = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert made in ([], [".harness.lock"]), made


def test_bisect_over_hosts_refuses_a_script_test(sshd, tmp_path: Path, capsys) -> None:
    server, root = sshd
    script = tmp_path / "t.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    argv = [
        "bisect",
        "--kernels",
        "debian:6.1,debian:6.12",
        "--test",
        f"script:{script}",
        "--host",
        server.host,
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--host runs plans, not script: tests" in err
