"""CLI edge: usage errors are one line and exit 2; pure helpers used by `run`."""

from pathlib import Path

import pytest

from harness.cli.main import main
from harness.cli.run import exit_code, slug
from harness.results.model import Environment, KernelInfo, RunResult, StepResult
from harness.run.environment import fs_type_of
from harness.run.host import new_lines


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["run", "--accel", "hvf"], "invalid choice: 'hvf'"),
        (["run", "--kernel", "host"], "needs --scratch DIR"),
        (["run", "--runtime", "0"], "--runtime must be a positive"),
        (["run", "--kernel", "ubuntu:24.04"], "unknown kernel spec 'ubuntu:24.04'"),
    ],
)
def test_usage_errors(argv: list[str], needle: str, capsys, tmp_path: Path) -> None:
    assert main([*argv, "--out", str(tmp_path)] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def run(*statuses: str, infra: str = "", reason: str = "done") -> RunResult:
    return RunResult(
        kernel=KernelInfo("debian:6.12"),
        environment=Environment("tcg"),
        topology="default",
        plan="quick",
        steps=tuple(StepResult(f"s{i}", "fio", s) for i, s in enumerate(statuses)),
        infra_error=infra,
        stop_reason=reason,
    )


def test_exit_codes() -> None:
    assert exit_code([run("pass", "skip", "xfail")]) == 0
    assert exit_code([run("pass"), run("fail")]) == 1
    assert exit_code([run("error", infra="kernel panic", reason="panic")]) == 1
    assert exit_code([run("error", infra="run stopped (step-timeout)", reason="step-timeout")]) == 2


def test_slug() -> None:
    assert slug("git:/srv/linux@v6.18+series=/a b.mbox") == "git_srv_linux_v6.18+series_a_b.mbox"


def test_fs_type_longest_mount_wins() -> None:
    mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n/dev/vdb /tmp/x xfs rw 0 0\n"
    assert fs_type_of(Path("/tmp/x/y"), mounts) == "xfs"
    assert fs_type_of(Path("/tmp/xy"), mounts) == "tmpfs"
    assert fs_type_of(Path("/home"), mounts) == "ext4"


def test_new_kernel_log_lines() -> None:
    before = ["a", "b", "c"]
    assert new_lines(before, ["a", "b", "c", "d", "e"]) == ["d", "e"]
    assert new_lines(before, ["b", "c", "d"]) == ["d"]  # the ring buffer dropped "a"
    assert new_lines([], ["x"]) == ["x"]
