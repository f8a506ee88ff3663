"""Bisection over git history with `git bisect`, in a worktree of its own.

The worktree (OUT/git-bisect) is added with --no-checkout and bisected with
`git bisect start --no-checkout`: git only moves BISECT_HEAD, nothing is checked out there,
and the user's checkout (its branches, its own bisection) is never touched. Each step's
kernel is the endpoint spec with the ref replaced by the commit under test, so it builds in
the one object directory harness.kernel.build keeps per repository and config.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import InfraError, UserError
from harness.kernel import tree
from harness.kernel.buildspec import parse_build_spec
from harness.kernel.source import debian_source, directory_source
from harness.workflows.bisect.kernels import SpaceResult
from harness.workflows.bisect.outcome import GOOD

log = logging.getLogger(__name__)

_OPTIONS = re.compile(r"\+(series|revert|config)=")
_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.MULTILINE)
_HASH_LINE = re.compile(r"^([0-9a-f]{40})$", re.MULTILINE)
_ONLY_SKIPPED = "only 'skip'ped commits left"


@dataclass(frozen=True)
class Endpoint:
    """A git or src: spec taken apart: the repository, the commit, the options after it."""

    repo: Path
    commit: str
    options: str  # "+series=...+revert=...+config=..." exactly as given, or ""


def options_of(text: str) -> str:
    match = _OPTIONS.search(text)
    return text[match.start() :] if match else ""


def endpoint(text: str) -> Endpoint:
    """Resolve git:TREE@REF or a src: snapshot to its repository and commit."""
    spec = parse_build_spec(text)
    if spec.kind == "git":
        repo = tree.check_repo(Path(spec.location))
        return Endpoint(repo, tree.resolve_commit(repo, spec.ref), options_of(text))
    snap = (
        debian_source(spec.location)
        if spec.kind == "debian"
        else directory_source(Path(spec.location))
    )
    return Endpoint(snap.repo.resolve(), snap.commit, options_of(text))


def endpoints(good: str, bad: str) -> tuple[Endpoint, Endpoint]:
    """Both endpoints; UserError unless they share a repository and options."""
    g, b = endpoint(good), endpoint(bad)
    if g.repo != b.repo:
        raise UserError(f"--good is in {g.repo}, --bad in {b.repo}: bisect within one repository")
    if g.options != b.options:
        raise UserError(
            f"--good has options {g.options!r}, --bad {b.options!r}: give both the "
            "same +series=/+revert=/+config= (they apply at every step)"
        )
    if g.commit == b.commit:
        raise UserError(f"--good and --bad are the same commit {g.commit[:12]}")
    return g, b


def step_spec(repo: Path, commit: str, options: str) -> str:
    """The kernel spec of one step: the endpoint spec with the ref replaced by `commit`."""
    return f"git:{repo}@{commit}{options}"


def bisect_argv(worktree: Path, *args: str) -> list[str]:
    return tree.git_argv(worktree, "bisect", *args)


def parse_bisect_output(text: str) -> tuple[str | None, tuple[str, ...] | None]:
    """(first bad commit, None) when git named it; (None, candidates) when only skipped
    commits are left; (None, None) while the bisection goes on."""
    found = _FIRST_BAD.search(text)
    if found:
        return found.group(1), None
    if _ONLY_SKIPPED in text:
        return None, tuple(_HASH_LINE.findall(text))
    return None, None


class GitSpace:
    """`git bisect` between two commits of one repository, driven step by step."""

    def __init__(self, repo: Path, good: str, bad: str, worktree: Path) -> None:
        self.repo, self.good, self.bad, self.worktree = repo, good, bad, worktree
        self.first_bad: str | None = None
        self.candidates: tuple[str, ...] | None = None
        self.last_good = good

    def _git(self, *args: str, check: bool = True) -> str:
        result = proc.run(bisect_argv(self.worktree, *args), timeout=300, check=False)
        output = result.stdout + result.stderr
        if check and result.returncode not in (0, 2):  # 2: "We cannot bisect more!"
            raise InfraError(f"git bisect {' '.join(args)} failed: {output.strip()[-300:]}")
        return output

    def open(self) -> None:
        """Create (or reset) the worktree and start the bisection."""
        if (self.worktree / ".git").exists() and tree.is_worktree_of(self.repo, self.worktree):
            self._git("reset", check=False)
        else:
            self.worktree.parent.mkdir(parents=True, exist_ok=True)
            tree.add_worktree(self.repo, self.worktree, self.good, "--no-checkout")
        self._record(self._git("start", "--no-checkout", self.bad, self.good))

    def _record(self, output: str) -> None:
        first_bad, candidates = parse_bisect_output(output)
        if first_bad:
            self.first_bad = first_bad
        if candidates is not None:
            self.candidates = candidates

    def next(self) -> str | None:
        if self.first_bad or self.candidates is not None:
            return None
        return tree.git(self.worktree, "rev-parse", "BISECT_HEAD").strip()

    def mark(self, commit: str, outcome: str) -> None:
        if outcome == GOOD:
            self.last_good = commit
        self._record(self._git(outcome, commit))

    def result(self) -> SpaceResult:
        if self.first_bad:
            return SpaceResult(self.first_bad, (self.first_bad,), self.last_good)
        return SpaceResult(None, self.candidates or (), self.last_good)

    def label(self, commit: str) -> str:
        return tree.git(self.repo, "log", "-1", "--format=%h %s", commit).strip()

    def close(self) -> None:
        """End git's bisection and drop the worktree (the state file keeps the log)."""
        self._git("reset", check=False)
        tree.remove_worktree(self.repo, self.worktree)
