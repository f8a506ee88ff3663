"""Series loading (mbox, directory, message-id) and applying them with real git.

The git tests use a small real repository holding drivers/block/loop.c from
linux-source-6.12 (6.12.117), the file the stand-in series patches.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.kernel import series as series_mod
from harness.kernel import tree
from harness.kernel.series import (
    analyse_apply_failure,
    hunk_at,
    is_message_id,
    load_series,
    order_patches,
    parse_patches,
    split_mbox,
)
from tests.conftest import synthetic_loop_c

DATA = Path(__file__).parents[1] / "data" / "series"


def test_mbox_with_cover_letter_yields_the_two_patches_in_order() -> None:
    series = load_series(str(DATA / "harness-probe.mbox"))
    assert [p.subject for p in series.patches] == [
        "[PATCH 1/2] loop: add harness_probe module parameter",
        "[PATCH 2/2] loop: show harness_probe in sysfs",
    ]
    assert len(split_mbox((DATA / "harness-probe.mbox").read_text())) == 3


def test_directory_and_mbox_hash_the_same() -> None:
    a = load_series(str(DATA / "harness-probe.mbox"))
    b = load_series(str(DATA / "harness-probe"))
    assert a.sha256 == b.sha256
    assert a.sha256 != load_series(str(DATA / "does-not-apply.mbox")).sha256


def test_patches_are_sorted_and_replies_dropped() -> None:
    text = (DATA / "harness-probe.mbox").read_text()
    messages = split_mbox(text)
    reply = messages[1].replace("Subject: [PATCH 1/2]", "Subject: Re: [PATCH 1/2]")
    shuffled = "".join([messages[2], messages[0], messages[1], reply])
    patches = order_patches(parse_patches(shuffled), "x")
    assert [p.number for p in patches] == [1, 2]


def test_incomplete_and_mixed_version_series_are_refused() -> None:
    patches = parse_patches((DATA / "harness-probe.mbox").read_text())
    with pytest.raises(UserError, match=r"holds patches \[2\] of a 2-patch series"):
        order_patches(patches[1:], "x")
    v5 = parse_patches(
        (DATA / "harness-probe.mbox").read_text().replace("[PATCH 2/2]", "[PATCH v5 2/2]")
    )
    with pytest.raises(UserError, match="mixes series versions"):
        order_patches(v5, "x")


def test_missing_series_and_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_series(str(tmp_path / "nope.mbox"))
    with pytest.raises(UserError, match="no .*patch files"):
        load_series(str(tmp_path))


def test_message_id_without_b4_names_the_file_alternative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    mid = "20251015110735.1361261-1-ming.lei@redhat.com"
    assert is_message_id(mid) and is_message_id(f"<{mid}>")
    assert not is_message_id("/tmp/x@y.mbox")
    with pytest.raises(UserError, match=r"pip install b4.*\+series=/path/to/file.mbox"):
        load_series(mid)


def test_message_id_that_b4_cannot_fetch_names_the_file_alternative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Offline here; online the id does not exist. Either way b4 fails and we say what to do.
    b4 = Path(sys.executable).parent / "b4"
    if not b4.exists():
        pytest.skip("b4 not installed (./bootstrap.sh installs it)")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", f"{b4.parent}:{os.environ['PATH']}")
    with pytest.raises(UserError, match=r"\+series=/path/to/file.mbox"):
        load_series("no-such-thread.harness-test@localhost.invalid")


def test_hunk_at_names_the_hunk() -> None:
    text = (DATA / "harness-probe" / "0002-loop-show-harness_probe-in-sysfs.patch").read_text()
    assert hunk_at(text, "drivers/block/loop.c", 706) == (
        "#2 (@@ -706,6 +712,7 @@ static struct attribute *loop_attrs[] = {)"
    )
    assert hunk_at(text, "drivers/block/other.c", 706) is None


def test_analyse_apply_failure_from_git_apply_output() -> None:
    text = (DATA / "does-not-apply.mbox").read_text()
    output = "error: patch failed: drivers/block/loop.c:136\nerror: drivers/block/loop.c: patch"
    failure = analyse_apply_failure("0001 loop: raise the default max_part", text, output)
    assert failure.file == "drivers/block/loop.c"
    assert failure.hunk is not None and failure.hunk.startswith("#1 (@@ -136,7")


# --- real git ---------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


@pytest.fixture
def loop_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real git repo with a loop.c the probe series applies to and an untouched file."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    repo = tmp_path / "linux"
    (repo / "drivers/block").mkdir(parents=True)
    (repo / "drivers/block/loop.c").write_text(synthetic_loop_c("harness-probe"))
    (repo / "drivers/block/brd.c").write_text("/* untouched by the series */\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    return repo


def _variant(repo: Path, series_path: str | None) -> tuple[tree.WorkDir, str, str]:
    repo = tree.check_repo(repo)
    base = tree.resolve_commit(repo, "HEAD")
    work = tree.workdir_for(repo)
    tree.ensure_worktree(repo, work, base)
    series = load_series(series_path) if series_path else None
    return work, base, tree.checkout_variant(work, base, (), series)


def test_series_applies_in_a_private_worktree(loop_repo: Path) -> None:
    status_before = _git(loop_repo, "status", "--porcelain")
    work, base, head = _variant(loop_repo, str(DATA / "harness-probe.mbox"))
    assert head != base
    assert "harness_probe" in (work.src / "drivers/block/loop.c").read_text()
    assert "harness_probe" not in (loop_repo / "drivers/block/loop.c").read_text()
    assert _git(loop_repo, "status", "--porcelain") == status_before
    assert _git(loop_repo, "rev-parse", "HEAD").strip() == base


def test_switching_variants_keeps_mtimes_of_untouched_files(loop_repo: Path) -> None:
    work, base, _ = _variant(loop_repo, None)
    untouched, patched = work.src / "drivers/block/brd.c", work.src / "drivers/block/loop.c"
    os.utime(untouched, (1_000_000, 1_000_000))
    os.utime(patched, (1_000_000, 1_000_000))
    series = load_series(str(DATA / "harness-probe"))
    tree.checkout_variant(work, base, (), series)
    assert untouched.stat().st_mtime == 1_000_000
    assert patched.stat().st_mtime > 1_000_000
    assert tree.checkout_variant(work, base, (), None) == base
    assert "harness_probe" not in patched.read_text()
    assert untouched.stat().st_mtime == 1_000_000


def test_series_that_does_not_apply_names_patch_file_and_hunk(loop_repo: Path) -> None:
    with pytest.raises(UserError) as info:
        _variant(loop_repo, str(DATA / "does-not-apply.mbox"))
    message = str(info.value)
    assert "0001 loop: raise the default max_part" in message
    assert "drivers/block/loop.c" in message and "hunk #1" in message
    work = tree.workdir_for(loop_repo)
    # the worktree is back on a clean base, ready for the next variant
    assert _git(work.src, "status", "--porcelain") == ""
    assert tree.checkout_variant(work, tree.resolve_commit(loop_repo, "HEAD"), (), None)


def test_revert_variant(loop_repo: Path) -> None:
    (loop_repo / "drivers/block/brd.c").write_text("/* changed */\n")
    _git(loop_repo, "commit", "-qam", "change brd")
    repo = tree.check_repo(loop_repo)
    head = tree.resolve_commit(repo, "HEAD")
    work = tree.workdir_for(repo)
    tree.ensure_worktree(repo, work, head)
    tree.checkout_variant(work, head, (head,), None)
    assert (work.src / "drivers/block/brd.c").read_text() == "/* untouched by the series */\n"


def test_missing_tree_and_bad_ref(loop_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        tree.check_repo(tmp_path / "nonexistent")
    with pytest.raises(UserError, match="not a git repository"):
        tree.check_repo(tmp_path)
    with pytest.raises(UserError, match="ref 'v9.99' not found"):
        tree.resolve_commit(loop_repo, "v9.99")


def test_snapshot_is_content_addressed(tmp_path: Path) -> None:
    src = tmp_path / "tree"
    src.mkdir()
    (src / "Makefile").write_text("all:\n")
    a = tree.snapshot(src, tmp_path / "a.git", "snapshot", force_add=False)
    b = tree.snapshot(src, tmp_path / "b.git", "snapshot", force_add=False)
    assert a == b
    assert not (src / ".git").exists()
    (src / "Kconfig").write_text("\n")
    assert tree.snapshot(src, tmp_path / "a.git", "snapshot", force_add=False) != a


def test_b4_argv() -> None:
    assert series_mod.b4_argv("<a@b>", Path("/o")) == [
        "b4",
        "am",
        "--no-cover",
        "-o",
        "/o",
        "-n",
        "series",
        "a@b",
    ]
