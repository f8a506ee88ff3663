"""Locks between harness processes (a real second process holds each lock), output files
that follow the umask, and `run --bisect-exit` never answering "bad" for a harness bug."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli.bisect import answer_git_bisect
from harness.cli.exits import GIT_BISECT_ABORT, GIT_BISECT_SKIP
from harness.cli.main import main
from harness.kernel import debian
from harness.kernel.model import Kernel
from harness.kernel.resolve import OK, Resolution
from harness.results.files import atomic_write_text

HOLD_OUT = """
import sys, time
from pathlib import Path
from harness.results import outlock
with outlock.hold(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def held_out(tmp_path: Path) -> Iterator[Path]:
    """An output directory whose lock another process (another harness run) holds."""
    out = tmp_path / "out"
    out.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_OUT, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        yield out
    finally:
        child.kill()
        child.wait()


def test_a_sharded_run_writes_no_shard_json_into_a_locked_out(
    held_out, monkeypatch, capsys
) -> None:
    kernel = Kernel(spec="debian:6.12", image=Path("/boot/vmlinuz"), release="6.12.0-amd64")
    monkeypatch.setattr("harness.cli.run.preflight", lambda kernels: None)
    monkeypatch.setattr("harness.cli.run.resolve_kernel", lambda spec: Resolution(spec, OK, kernel))
    code = main(["run", "--kernel", "debian:6.12", "--shard", "1/2", "--out", str(held_out)])
    assert code == 2 and "in use by another harness run (pid" in capsys.readouterr().err
    assert not (held_out / "shard.json").exists()


def _series(tmp_path: Path) -> Path:
    path = tmp_path / "s.mbox"
    path.write_text("From 0 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] x\n\n---\n")
    return path


@pytest.mark.parametrize("command", ["bisect", "backport", "merge", "report"])
def test_every_command_refuses_an_out_dir_another_run_holds(
    held_out, tmp_path, capsys, command
) -> None:
    results = tmp_path / "results.json"
    results.write_text("{}")
    argv = {
        "bisect": [
            "bisect",
            "--kernels",
            f"image:{tmp_path}/a,image:{tmp_path}/b",
            "--test",
            "splat:any",
        ],
        "backport": ["backport", "--series", str(_series(tmp_path)), "--base", "git:/x@v1"],
        "merge": ["merge", str(tmp_path / "shard1"), str(tmp_path / "shard2")],
        "report": ["report", str(results)],
    }[command]
    assert main([*argv, "--out", str(held_out)]) == 2
    assert "in use by another harness run (pid" in capsys.readouterr().err
    assert sorted(p.name for p in held_out.iterdir()) == [".harness.lock"]


HOLD_CACHE = """
import fcntl, json, sys, time
from pathlib import Path
root, abi, release = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
lock = root / "kernels" / f"{abi}.lock"
lock.parent.mkdir(parents=True, exist_ok=True)
with open(lock, "w") as fh:
    fcntl.flock(fh, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(1.5)  # downloading...
    dest = root / "kernels" / abi
    (dest / "boot").mkdir(parents=True)
    (dest / "boot" / f"vmlinuz-{release}").write_text("image")
    (dest / "lib/modules" / release / "kernel").mkdir(parents=True)
    debs = [f"linux-image-{release}_1_amd64.deb"]
    (dest / "harness-kernel.json").write_text(json.dumps({"packages": debs, "abi": abi}))
"""


def test_a_second_fetch_of_one_debian_kernel_waits_and_downloads_nothing(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    abi = "6.1.0-50"
    monkeypatch.setattr(debian.PrivateApt, "refresh", lambda self: None)
    monkeypatch.setattr(debian.PrivateApt, "pkgnames", lambda self: [f"linux-image-{abi}-amd64"])
    downloads: list[list[str]] = []

    def download(argv, **kwargs):
        downloads.append(argv)
        raise debian.InfraError("the mirror is busy")  # the holder's half-fetched files

    monkeypatch.setattr(debian.proc, "run_retrying", download)
    root = tmp_path / "cache" / "debian"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_CACHE, str(root), abi, f"{abi}-amd64"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        start = time.monotonic()
        kernel = debian.fetch("6.1")
        waited = time.monotonic() - start
    finally:
        child.wait(timeout=30)
    assert downloads == [] and waited >= 1.0
    assert kernel.image is not None and kernel.image.read_text() == "image"
    assert kernel.modules_dir == root / "kernels" / abi / "lib/modules" / f"{abi}-amd64"


def test_two_apt_refreshes_update_the_lists_once(tmp_path, monkeypatch) -> None:
    """Two processes refresh the private apt lists at once: one apt-get update, not two."""
    updates = tmp_path / "updates"
    script = f"""
import sys, time
from pathlib import Path
from harness import proc
from harness.kernel import debian
def update(argv, **kw):
    with open({str(updates)!r}, "a") as fh:
        fh.write("update\\n")
    time.sleep(1.0)
proc.run_retrying = update
debian.PrivateApt(Path(sys.argv[1])).refresh()
"""
    apt = tmp_path / "apt"
    children = [subprocess.Popen([sys.executable, "-c", script, str(apt)]) for _ in range(2)]
    assert [c.wait(timeout=60) for c in children] == [0, 0]
    assert updates.read_text() == "update\n"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_outputs_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "results.json", json.dumps({}))
    finally:
        os.umask(old)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == mode


def test_bisect_exit_answers_skip_for_an_unexpected_exception(capsys) -> None:
    def bug() -> int:
        raise KeyError("steps")

    assert answer_git_bisect(bug) == GIT_BISECT_SKIP == 125
    assert "unexpected KeyError" in capsys.readouterr().err


def test_bisect_exit_aborts_on_an_interrupt() -> None:
    def interrupted() -> int:
        raise KeyboardInterrupt

    assert answer_git_bisect(interrupted) == GIT_BISECT_ABORT


def test_run_bisect_exit_maps_a_harness_bug_to_skip(monkeypatch, tmp_path) -> None:
    def bug(ns):
        raise AttributeError("'NoneType' object has no attribute 'steps'")

    monkeypatch.setattr("harness.cli.run.requests_from", bug)
    assert main(["run", "--bisect-exit", "--out", str(tmp_path / "o")]) == 125
