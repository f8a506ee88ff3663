"""Patch-by-patch apply on tiny real git repositories (real git am / git apply)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.kernel import apply
from harness.kernel.series import parse_patches

ENV = ["-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "commit.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *ENV, *args], check=True, capture_output=True, text=True
    ).stdout


def source(foo: str = "int foo(void)", extra_top: int = 0, line43: str = "\tline 43") -> str:
    """A C-like file: indented statements, so git's hunk headers name the functions."""
    lines = [f"\tline {i}" for i in range(1, 61)]
    lines[5], lines[34], lines[42] = foo, "static void bar(int x)", line43
    return "\n".join([f"\textra {i}" for i in range(extra_top)] + lines) + "\n"


@pytest.fixture
def upstream(tmp_path: Path) -> tuple[Path, str]:
    """A repo with f.c and a 3-patch series on it (touching foo, bar, then a new file)."""
    repo = tmp_path / "up"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "f.c").write_text(source())
    git(repo, "add", "f.c")
    git(repo, "commit", "-qm", "base")
    edits = [("\tline 12", "\tline 12 changed"), ("\tline 42", "\tline 42 changed")]
    for n, (old, new) in enumerate(edits, start=1):
        text = (repo / "f.c").read_text().replace(f"{old}\n", f"{new}\n")
        (repo / "f.c").write_text(text)
        git(repo, "commit", "-qam", f"change {n}")
    (repo / "g.c").write_text("new file\n")
    git(repo, "add", "g.c")
    git(
        repo, "commit", "-qm", "add g.c\n\ncommit 0123456789abcdef0123456789abcdef01234567 upstream"
    )
    mbox = git(repo, "format-patch", "--stdout", "HEAD~3")
    return repo, mbox


def base_repo(tmp_path: Path, text: str) -> Path:
    repo = tmp_path / "base"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "f.c").write_text(text)
    git(repo, "add", "f.c")
    git(repo, "commit", "-qm", "diverged base")
    return repo


def test_clean_series_applies_every_patch(upstream, tmp_path: Path) -> None:
    _, mbox = upstream
    repo = base_repo(tmp_path, source())
    outcomes = apply.apply_patches(repo, parse_patches(mbox))
    assert [o.status for o in outcomes] == ["applied"] * 3
    assert git(repo, "log", "--format=%s", "-3").splitlines() == ["add g.c", "change 2", "change 1"]


def test_offset_is_reported_per_hunk(upstream, tmp_path: Path) -> None:
    _, mbox = upstream
    repo = base_repo(tmp_path, source(extra_top=5))
    outcomes = apply.apply_patches(repo, parse_patches(mbox))
    assert [o.status for o in outcomes] == ["offset", "offset", "applied"]
    assert outcomes[0].notes == ("Hunk #1 succeeded at 14 (offset 5 lines).",)


def test_conflict_names_patch_file_hunk_function_and_base_lines(upstream, tmp_path: Path) -> None:
    _, mbox = upstream
    repo = base_repo(tmp_path, source(line43="\tline 43 other"))
    head = git(repo, "rev-parse", "HEAD").strip()
    outcomes = apply.apply_patches(repo, parse_patches(mbox))
    assert [o.status for o in outcomes] == ["applied", "conflict", "not-reached"]
    conflict = outcomes[1].conflicts[0]
    assert conflict.file == "f.c"
    assert conflict.hunk.startswith("#1 (@@ -39,7 +39,7 @@ static void bar(int x))")
    assert conflict.function == "bar" and conflict.function_in_base
    assert "line 43 other" in conflict.base_lines and conflict.base_start == 39
    assert "-\tline 43\n+\tline 43 other" in conflict.diff
    # patch 1 stays applied, the failed am is gone, the tree is clean
    assert git(repo, "rev-parse", "HEAD~1").strip() == head
    assert git(repo, "status", "--porcelain") == ""


def test_function_gone_from_base_is_said(upstream, tmp_path: Path) -> None:
    _, mbox = upstream
    repo = base_repo(tmp_path, source(foo="int renamed(void)").replace("line 11\n", "line 11 x\n"))
    outcomes = apply.apply_patches(repo, parse_patches(mbox))
    assert outcomes[0].status == "conflict"
    assert outcomes[0].conflicts[0].function == "foo"
    assert not outcomes[0].conflicts[0].function_in_base


def test_plain_diff_goes_through_git_apply(tmp_path: Path) -> None:
    repo = base_repo(tmp_path, source())
    diff = "--- a/f.c\n+++ b/f.c\n@@ -1,3 +1,3 @@\n \tline 1\n-\tline 2\n+\tline 2 x\n \tline 3\n"
    patches = parse_patches(diff)
    assert not apply.is_mail(patches[0])
    outcomes = apply.apply_patches(repo, patches)
    assert outcomes[0].status == "applied"
    assert "\tline 2 x\n" in (repo / "f.c").read_text()
    assert git(repo, "status", "--porcelain") == ""


def test_parse_hunks_reads_by_counts_not_signature() -> None:
    text = (
        "diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -5,2 +5,3 @@ int main(void)\n"
        " a\n+b\n c\n-- \n2.39.5\n"
    )
    (hunk,) = apply.parse_hunks(text)
    assert hunk.lines == (" a", "+b", " c")
    assert hunk.function == "main" and hunk.expected == ("a", "c")


def test_rejected_hunks_parses_git_apply_reject_output() -> None:
    out = (
        "Checking patch f.c...\nerror: while searching for:\nline 39\n\n"
        "error: patch failed: f.c:39\nApplying patch f.c with 1 reject...\n"
        "Hunk #1 applied cleanly.\nRejected hunk #2.\nerror: gone.c: does not exist in index\n"
    )
    assert apply.rejected_hunks(out) == [("f.c", 2), ("gone.c", None)]
