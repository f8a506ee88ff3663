"""The harness's git work on a user's repository runs none of the user's hooks and removes
only the worktrees it made (real git repositories in a temporary directory)."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness.kernel import apply, tree
from harness.kernel.build import build_inputs
from harness.kernel.buildspec import parse_build_spec
from harness.kernel.series import load_series
from harness.workflows.bisect.git import GitSpace

ENV = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
HOOKS = (
    "post-checkout",
    "applypatch-msg",
    "pre-applypatch",
    "post-applypatch",
    "post-commit",
    "pre-commit",
    "commit-msg",
    "reference-transaction",
)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *ENV, *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def hooked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """A user's repo (two commits) whose every hook touches markers/<hook>, a one-patch
    mbox made from its second commit, and the marker directory."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    repo, markers = tmp_path / "linux", tmp_path / "markers"
    repo.mkdir()
    markers.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "f.c").write_text("int a;\n")
    git(repo, "add", "f.c")
    git(repo, "commit", "-qm", "base")
    (repo / "f.c").write_text("int a;\nint b;\n")
    git(repo, "commit", "-qam", "add b")
    mbox = tmp_path / "series.mbox"
    mbox.write_text(git(repo, "format-patch", "--stdout", "-1", "HEAD") + "\n")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    for hook in HOOKS:  # installed last: setting up the fixture must not trip them
        path = repo / ".git/hooks" / hook
        path.write_text(f"#!/bin/sh\ntouch {markers / hook}\ncat >/dev/null\nexit 0\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return repo, mbox, markers


def fired(markers: Path) -> list[str]:
    return sorted(p.name for p in markers.iterdir())


def test_the_hook_fixture_really_fires(hooked) -> None:
    """Guard for the tests below: plain git in this repository runs the hooks."""
    repo, _, markers = hooked
    git(repo, "checkout", "-q", "--detach", "HEAD")
    assert "post-checkout" in fired(markers)


def test_build_tree_preparation_runs_no_user_hook(hooked) -> None:
    """git:REPO@HEAD+series=MBOX: the build's worktree is made and the series applied with
    git am, exactly as kernel/make.py's _build_locked does, without one hook."""
    repo, mbox, markers = hooked
    inputs = build_inputs(parse_build_spec(f"git:{repo}@HEAD+series={mbox}"))
    work = tree.workdir_for(inputs.repo)
    with tree.locked(work):
        tree.ensure_worktree(inputs.repo, work, inputs.commit)
        head = tree.checkout_variant(work, inputs.commit, inputs.reverts, inputs.series)
    assert head != inputs.commit and (work.src / "f.c").read_text() == "int a;\nint b;\n"
    assert fired(markers) == []


def test_backport_apply_runs_no_user_hook(hooked) -> None:
    repo, mbox, markers = hooked
    commit = tree.resolve_commit(repo, "HEAD")
    report = apply.apply_on(repo, commit, (), load_series(str(mbox)), f"git:{repo}@HEAD")
    assert report.head and fired(markers) == []


def test_git_bisect_space_runs_no_user_hook(hooked, tmp_path: Path) -> None:
    repo, _, markers = hooked
    git(repo, "-c", "core.hooksPath=/dev/null", "commit", "-q", "--allow-empty", "-m", "c2")
    good, bad = tree.resolve_commit(repo, "HEAD~1"), tree.resolve_commit(repo, "HEAD")
    space = GitSpace(repo, good, bad, tmp_path / "out" / "git-bisect")
    space.open()
    space.close()
    # git 2.39's bisect--helper updates refs before it reads core.hooksPath, so the user's
    # reference-transaction hook still runs there (on the user's own commits, no mail):
    # a git bug no -c can reach; every other hook stays silent.
    assert set(fired(markers)) <= {"reference-transaction"}


def test_every_git_argv_carries_no_hooks() -> None:
    for argv in (tree.git_argv(Path("/r"), "am"), tree.git_base("--git-dir=/g", "init")):
        assert argv[0] == "git"
        assert "core.hooksPath=/dev/null" in argv[: argv.index("am" if "am" in argv else "init")]


def _user_worktrees(tmp_path: Path, repo: Path) -> tuple[Path, Path]:
    """An offline worktree (its disk unmounted: the directory is gone) and a locked one."""
    offline, locked = tmp_path / "usb" / "offline", tmp_path / "usb" / "locked"
    git(repo, "-c", "core.hooksPath=/dev/null", "worktree", "add", "-q", "--detach", str(offline))
    git(repo, "-c", "core.hooksPath=/dev/null", "worktree", "add", "-q", "--detach", str(locked))
    git(repo, "worktree", "lock", "--reason", "on a usb disk", str(locked))
    shutil.rmtree(tmp_path / "usb")
    return offline, locked


def test_the_users_offline_worktrees_survive(hooked, tmp_path: Path) -> None:
    repo, mbox, _ = hooked
    offline, locked = _user_worktrees(tmp_path, repo)
    git(repo, "-c", "core.hooksPath=/dev/null", "commit", "-q", "--allow-empty", "-m", "c2")
    inputs = build_inputs(parse_build_spec(f"git:{repo}@HEAD+series={mbox}"))
    work = tree.workdir_for(inputs.repo)
    with tree.locked(work):
        tree.ensure_worktree(inputs.repo, work, inputs.commit)
    apply.apply_on(repo, inputs.commit, (), load_series(str(mbox)), f"git:{repo}@HEAD")
    good = tree.resolve_commit(repo, "HEAD~1")
    space = GitSpace(repo, good, inputs.commit, tmp_path / "out" / "git-bisect")
    space.open()
    space.close()
    listed = git(repo, "worktree", "list", "--porcelain")
    assert f"worktree {offline}\n" in listed and f"worktree {locked}\n" in listed
    assert f"worktree {work.src.resolve()}\n" in listed
    assert "git-bisect" not in listed


def test_a_worktree_of_ours_whose_directory_vanished_is_recreated(hooked) -> None:
    """The cache was wiped: git still lists our worktree; it is made again, no prune."""
    repo, _, _ = hooked
    commit = tree.resolve_commit(repo, "HEAD")
    work = tree.workdir_for(repo)
    tree.ensure_worktree(repo, work, commit)
    shutil.rmtree(work.root)
    tree.ensure_worktree(repo, work, commit)
    assert (work.src / "f.c").is_file()
    listed = git(repo, "worktree", "list", "--porcelain")
    assert listed.count(f"worktree {work.src.resolve()}\n") == 1
