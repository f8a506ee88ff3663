"""A hostile guest's shared directory: what it plants as steps.jsonl, agent.json or
sysrq-request (a symlink to a host file, a FIFO, a huge file) is never followed, never hangs
the host and is read only up to a cap."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.results import untrusted
from harness.run.assemble import read_records
from harness.run.executor import agent_info
from harness.run.vm import dump_requester
from tests.conftest import within

RECORD = {"id": "s0", "kind": "fio", "status": "pass"}


def _unblock(fifo: Path) -> None:
    """Open the FIFO's other end so a reader stuck on it (old code) can finish."""
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK) if fifo.exists() else None
    if fd is not None:
        os.close(fd)


def test_a_fifo_as_steps_or_agent_json_does_not_hang_the_host(tmp_path: Path) -> None:
    for name in ("steps.jsonl", "agent.json"):
        os.mkfifo(tmp_path / name)
    try:
        assert within(5, lambda: read_records(tmp_path / "steps.jsonl")) == []
        assert within(5, lambda: agent_info(tmp_path)) == {}
    finally:
        for name in ("steps.jsonl", "agent.json"):
            try:
                _unblock(tmp_path / name)
            except OSError:
                pass


def test_a_symlink_planted_in_the_shared_dir_is_not_followed(tmp_path: Path) -> None:
    host_file = tmp_path / "host-secret.json"
    host_file.write_text(json.dumps(RECORD) + "\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "steps.jsonl").symlink_to(host_file)
    (shared / "agent.json").symlink_to(host_file)
    assert read_records(shared / "steps.jsonl") == []
    assert agent_info(shared) == {}


def test_a_symlinked_sysrq_request_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "etc-passwd"
    victim.write_text("root:x:0:0\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "sysrq-request").symlink_to(victim)
    dump_requester(shared)()
    assert victim.read_text() == "root:x:0:0\n"
    request = shared / "sysrq-request"
    assert not request.is_symlink() and request.read_text() == "w\n"
    assert sorted(p.name for p in shared.iterdir()) == ["sysrq-request"]  # no temp left


def test_a_directory_as_sysrq_request_is_a_warning_not_a_crash(tmp_path: Path, caplog) -> None:
    (tmp_path / "sysrq-request").mkdir()
    dump_requester(tmp_path)()
    assert "cannot ask for a blocked-task dump" in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == ["sysrq-request"]


def test_an_oversized_file_is_read_only_up_to_the_cap(tmp_path: Path, monkeypatch) -> None:
    line = json.dumps(RECORD) + "\n"
    path = tmp_path / "steps.jsonl"
    path.write_text(line * 1000)
    got = untrusted.read_untrusted(path, 10 * len(line) + 5)
    assert got.truncated and len(got.data) == 10 * len(line) + 5
    # read_records: the cap holds (old code read the whole file), the torn record dropped
    monkeypatch.setattr("harness.run.assemble.RECORDS_CAP", 10 * len(line) + 5)
    assert len(read_records(path)) == 10


def test_a_deeply_nested_agent_json_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "agent.json").write_text("[" * 100_000 + "]" * 100_000)
    assert agent_info(tmp_path) == {}
    (tmp_path / "agent.json").write_text('{"fio_version": "fio-3.33"}')
    assert agent_info(tmp_path) == {"fio_version": "fio-3.33"}


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a device node needs root")
def test_a_device_node_is_never_opened(tmp_path: Path) -> None:
    os.mknod(tmp_path / "steps.jsonl", 0o600 | 0o020000, os.makedev(1, 5))  # /dev/zero
    got = within(5, lambda: untrusted.read_untrusted(tmp_path / "steps.jsonl", 1 << 20))
    assert got.data == b"" and got.refused == "not a regular file"
    assert within(5, lambda: read_records(tmp_path / "steps.jsonl")) == []
