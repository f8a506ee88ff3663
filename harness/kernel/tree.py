"""Git side of a build: resolve refs, keep a private worktree, check variants out into it.

The user's checkout is never touched: each source repository gets ONE private worktree
under the cache (work/<name>-<hash>/src), and every variant (base, base+series,
base+reverts) is checked out into that same path in turn. Git rewrites only the files
that differ between two commits and leaves the others' mtimes alone, so the object
directory next to it rebuilds only what a series touches. A lock file serialises
variants of one repository between harness processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import InfraError, SeriesConflict, UserError
from harness.kernel.series import (
    Series,
    analyse_apply_failure,
    failed_patch_number,
)
from harness.paths import cache_subdir

log = logging.getLogger(__name__)

# Every git the harness runs on a user's repository applies patches from untrusted mail, so
# none of the user's hooks may run (post-checkout, applypatch-msg, pre-/post-applypatch,
# post-commit, reference-transaction...) and no fsmonitor daemon is started on that content.
# Commits made by the harness (snapshots, am, revert) carry its identity and no signature.
_SAFE = [
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "user.name=harness",
    "-c",
    "user.email=harness@localhost",
    "-c",
    "commit.gpgsign=false",
]
_GIT_TIMEOUT = 900.0


@dataclass(frozen=True)
class WorkDir:
    """Private build area for one repository: the shared worktree and its lock."""

    root: Path

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def cfg(self) -> Path:
        return self.root / "cfg"

    def obj(self, config_label: str) -> Path:
        return self.root / f"obj-{config_label}"


def git_base(*args: str) -> list[str]:
    """The one way the harness starts git: `git` with no hooks, its own identity, no
    signing, then `args` (the location options, the command and its arguments)."""
    return ["git", *_SAFE, *args]


def git_argv(repo: Path, *args: str) -> list[str]:
    """git_base with -C repo."""
    return git_base("-C", str(repo), *args)


def git(repo: Path, *args: str, check: bool = True, input_text: str | None = None) -> str:
    return proc.run(
        git_argv(repo, *args), timeout=_GIT_TIMEOUT, check=check, input_text=input_text
    ).stdout


def check_repo(repo: Path) -> Path:
    """The repository's absolute path, or UserError when it is not a git repository."""
    repo = repo.expanduser()
    if not repo.exists():
        raise UserError(f"kernel tree {repo} does not exist: pass git:/path/to/linux@REF")
    result = proc.run(git_argv(repo, "rev-parse", "--git-dir"), timeout=60, check=False)
    if result.returncode != 0:
        raise UserError(f"{repo} is not a git repository: use src:{repo} for a plain source tree")
    return repo.resolve()


def resolve_commit(repo: Path, ref: str) -> str:
    """Full commit id for ref, or UserError naming the ref and the repository."""
    result = proc.run(
        git_argv(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"),
        timeout=60,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise UserError(
            f"ref {ref!r} not found in {repo}: check `git -C {repo} log --oneline {ref}` "
            "or fetch it first"
        )
    return result.stdout.strip()


def workdir_for(repo: Path) -> WorkDir:
    """The private work area for a repository, keyed by its absolute path."""
    key = hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:10]
    name = repo.resolve().name.removesuffix(".git") or "tree"
    return WorkDir(cache_subdir("kbuild/work") / f"{name}-{key}")


@contextlib.contextmanager
def locked(work: WorkDir) -> Iterator[None]:
    """Exclusive lock on a work area for the duration of one variant's build."""
    work.root.mkdir(parents=True, exist_ok=True)
    with open(work.root / "lock", "w") as fh:
        log.debug("waiting for lock on %s", work.root)
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_worktree_of(repo: Path, path: Path) -> bool:
    """True when git lists path among repo's worktrees (its directory may be gone)."""
    return f"worktree {path.resolve()}\n" in git(repo, "worktree", "list", "--porcelain")


def ensure_worktree(repo: Path, work: WorkDir, commit: str) -> None:
    """Create the private worktree on first use (detached; the user's branches untouched)."""
    if (work.src / ".git").exists():
        if is_worktree_of(repo, work.src):
            return
        raise UserError(
            f"{work.src} is a worktree of another repository: remove {work.root} and retry"
        )
    log.info("creating worktree %s (first build of %s)", work.src, repo)
    add_worktree(repo, work.src, commit)


def add_worktree(repo: Path, path: Path, commit: str, *options: str) -> None:
    """`git worktree add --detach` at path, first dropping git's record of an earlier
    worktree of ours at that path whose directory was deleted (a wiped cache or --out).
    Never `git worktree prune`: that would also drop the user's worktrees whose disk is
    not mounted."""
    if is_worktree_of(repo, path):
        remove_worktree(repo, path)
    git(repo, "worktree", "add", *options, "--detach", "--force", str(path), commit)


def remove_worktree(repo: Path, path: Path) -> None:
    """Remove the harness's worktree at path, by its path (nothing else), gone or not."""
    git(repo, "worktree", "remove", "--force", str(path), check=False)


def checkout_variant(
    work: WorkDir, commit: str, reverts: Sequence[str], series: Series | None
) -> str:
    """Check out commit, revert `reverts`, apply `series` with git am -3; return HEAD.

    Unchanged files keep their mtimes (incremental builds). A failing patch aborts the
    am, restores the clean base and raises UserError naming patch, file and hunk.
    """
    src = work.src
    git(src, "am", "--abort", check=False)  # a crash may have left one in progress
    # Files whose stat changed but content did not must not be rewritten by checkout -f:
    # a new mtime would make make rebuild them.
    git(src, "update-index", "-q", "--refresh", check=False)
    git(src, "checkout", "--quiet", "--detach", "--force", commit)
    git(src, "clean", "-fdq")  # leftovers (.rej, .orig) of an earlier failed apply
    for rev in reverts:
        result = proc.run(
            git_argv(src, "revert", "--no-edit", rev), timeout=_GIT_TIMEOUT, check=False
        )
        if result.returncode != 0:
            git(src, "revert", "--abort", check=False)
            git(src, "checkout", "--quiet", "--detach", "--force", commit)
            raise SeriesConflict(
                f"revert of {rev[:12]} does not apply on {commit[:12]}: drop +revert={rev}"
            )
    if series is not None:
        apply_series(src, series, commit)
    return git(src, "rev-parse", "HEAD").strip()


def apply_series(src: Path, series: Series, base: str) -> None:
    """git am -3 the series in src; on failure name the patch, file and hunk."""
    log.info("applying %d patch(es) from %s", len(series.patches), series.source)
    result = proc.run(
        git_argv(src, "am", "-3", "--keep-cr", "--no-gpg-sign"),
        timeout=_GIT_TIMEOUT,
        check=False,
        input_text=series.mbox(),
    )
    if result.returncode == 0:
        return
    output = result.stdout + result.stderr
    label = failed_patch_number(output) or "?"
    current = git(src, "am", "--show-current-patch=diff", check=False)
    check = proc.run(
        git_argv(src, "apply", "--check", "--verbose"),
        timeout=120,
        check=False,
        input_text=current,
    )
    failure = analyse_apply_failure(label, current, check.stdout + check.stderr + output)
    git(src, "am", "--abort", check=False)
    git(src, "checkout", "--quiet", "--detach", "--force", base)
    raise SeriesConflict(
        f"{failure} of {series.source}: rebase the series onto {base[:12]}", failure
    )


def snapshot(tree: Path, git_dir: Path, message: str, force_add: bool) -> str:
    """Commit the whole of `tree` into `git_dir` (created if needed); return the commit.

    Dates and identity are fixed, so the same content always gives the same commit id,
    which keeps build cache keys stable across re-extractions.
    """
    base = git_base(f"--git-dir={git_dir}", f"--work-tree={tree}")
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z",
    }
    if not (git_dir / "HEAD").exists():
        # A git dir outside the tree is bare, so nothing can ever check out into the tree.
        bare = [] if git_dir == tree / ".git" else ["--bare"]
        proc.run(git_base("init", "-q", *bare, str(git_dir if bare else tree)), timeout=60)
    add = [*base, "-c", "core.compression=1", "-c", "core.looseCompression=1", "add", "-A"]
    proc.run([*add, *(["-f"] if force_add else []), "."], timeout=_GIT_TIMEOUT, cwd=tree, env=env)
    tree_id = proc.run([*base, "write-tree"], timeout=120, env=env).stdout.strip()
    head = proc.run(
        [*base, "rev-parse", "--verify", "--quiet", "HEAD^{tree}"], timeout=60, env=env, check=False
    ).stdout.strip()
    if head != tree_id:
        # A root commit, not a child of the last snapshot: the id depends on content only.
        made = proc.run([*base, "commit-tree", tree_id, "-m", message], timeout=120, env=env)
        proc.run([*base, "update-ref", "HEAD", made.stdout.strip()], timeout=60, env=env)
    commit = proc.run([*base, "rev-parse", "HEAD"], timeout=60, env=env).stdout.strip()
    if not commit:
        raise InfraError(f"snapshot of {tree} produced no commit in {git_dir}")
    return commit


def changed_paths(src: Path, old: str, new: str) -> list[str]:
    """Paths that differ between two commits (for deciding whether Kconfig changed)."""
    return git(src, "diff", "--name-only", old, new).splitlines()
