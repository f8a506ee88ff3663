"""Apply a series to a base patch by patch, and say exactly what happened to each patch.

Each base gets a private apply worktree under the cache (apart from the build worktree,
so its mtimes stay untouched). Every patch is first checked strictly (`git apply
--check -v`: clean, or at an offset), then with reduced context (-C1: fuzz), then
applied with `git am -3` (a plain diff with `git apply -3` and a commit). The first patch
that does not apply is taken apart with `git apply --reject -v`: which hunks of which
files were rejected, the function their hunk header names, and the base's version of
the lines the hunk expected (the closest window of the base file). Later patches are
reported as not reached. Parsing is pure; only apply_patches and check_apply run git.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness import proc
from harness.kernel import tree
from harness.kernel.series import Patch, Series
from harness.paths import cache_subdir

log = logging.getLogger(__name__)

APPLIED, OFFSET, FUZZ, MERGED, CONFLICT, NOT_REACHED = (
    "applied",
    "offset",
    "fuzz",
    "merged",
    "conflict",
    "not-reached",
)
GOOD = (APPLIED, OFFSET, FUZZ, MERGED)  # the patch is in the tree
_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
_FUNC = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_TIMEOUT = 300.0


@dataclass(frozen=True)
class Hunk:
    """One hunk of a patch: its header, where it starts in the old file, its lines."""

    file: str
    index: int  # 1-based within the file
    header: str
    old_start: int
    old_len: int
    context: str  # the text after the second @@ (usually the enclosing function)
    lines: tuple[str, ...]

    @property
    def function(self) -> str:
        """The function named in the hunk header ('' when git found none)."""
        match = _FUNC.search(self.context)
        return match.group(1) if match else self.context.strip()

    @property
    def expected(self) -> tuple[str, ...]:
        """The old-side lines (context and removed) the hunk needs to find in the base."""
        return tuple(line[1:] for line in self.lines if line[:1] in (" ", "-"))


@dataclass(frozen=True)
class HunkConflict:
    """A rejected hunk and the base's version of the lines it expected."""

    file: str
    hunk: str  # "#2 (@@ -222,6 +222,8 @@ static void __loop_update_dio(...))"
    function: str
    function_in_base: bool
    base_start: int | None  # 1-based line in the base file of the closest window
    base_lines: str  # the base's version of the lines that no longer match
    diff: str  # unified diff: expected (patch) -> base

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PatchOutcome:
    """What became of one patch of the series on one base."""

    index: int  # 1-based position in the series
    subject: str
    status: str  # applied | offset | fuzz | merged | conflict | not-reached
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # "Hunk #1 succeeded at 230 (offset 8 lines)." ...
    conflicts: tuple[HunkConflict, ...] = ()
    message: str = ""

    def to_dict(self) -> dict[str, object]:
        data = dict(self.__dict__)
        data["conflicts"] = [c.to_dict() for c in self.conflicts]
        data["files"], data["notes"] = list(self.files), list(self.notes)
        return data


@dataclass(frozen=True)
class ApplyReport:
    """The series on one base: every patch's outcome, in order."""

    base: str
    series: str
    base_commit: str
    patches: tuple[PatchOutcome, ...] = field(default_factory=tuple)
    head: str = ""  # the tree's commit with every patch applied ('' on a conflict)

    @property
    def total(self) -> int:
        return len(self.patches)

    @property
    def applied(self) -> int:
        return sum(p.status in GOOD for p in self.patches)

    @property
    def status(self) -> str:
        return CONFLICT if self.conflict else APPLIED

    @property
    def conflict(self) -> PatchOutcome | None:
        return next((p for p in self.patches if p.status == CONFLICT), None)


def parse_hunks(patch_text: str) -> list[Hunk]:
    """Every hunk of a patch, with its file (the new name; the old one for a deletion).

    A hunk's body is read by its header's line counts, so a mail signature ('-- ') or
    the next file's '--- ' header is never taken for a removed line."""
    hunks: list[Hunk] = []
    old = file = ""
    left = [0, 0]  # old-side and new-side lines still to read in the current hunk
    for raw in patch_text.splitlines():
        if left[0] > 0 or left[1] > 0:
            line = raw or " "  # some mailers strip the space of an empty context line
            left[0] -= line[0] in " -"
            left[1] -= line[0] in " +"
            hunks[-1] = replace(hunks[-1], lines=(*hunks[-1].lines, line))
            continue
        match = _HEADER.match(raw)
        if raw.startswith("--- "):
            old = raw[4:].strip().removeprefix("a/")
        elif raw.startswith("+++ "):
            new = raw[4:].strip()
            file = old if new == "/dev/null" else new.removeprefix("b/")
        elif match and file:
            index = 1 + sum(h.file == file for h in hunks)
            old_len = int(match.group(2)) if match.group(2) is not None else 1
            new_len = int(match.group(4)) if match.group(4) is not None else 1
            hunks.append(
                Hunk(file, index, raw.strip(), int(match.group(1)), old_len, match.group(5), ())
            )
            left = [old_len, new_len]
        elif raw.startswith("\\") and hunks:
            hunks[-1] = replace(hunks[-1], lines=(*hunks[-1].lines, raw))
    return hunks


def patch_files(patch_text: str) -> tuple[str, ...]:
    """The files a patch touches, in order."""
    return tuple(dict.fromkeys(h.file for h in parse_hunks(patch_text)))


def offset_notes(apply_output: str) -> tuple[str, ...]:
    """git apply -v's 'Hunk #N succeeded at L (offset K lines).' lines."""
    return tuple(
        re.findall(
            r"^(Hunk #\d+ succeeded at \d+ \(offset -?\d+ lines?\)\.)$", apply_output, re.MULTILINE
        )
    )


def rejected_hunks(reject_output: str) -> list[tuple[str, int | None]]:
    """(file, hunk index) rejected by `git apply --reject -v`; index None for a whole file
    that is missing from the base."""
    found: list[tuple[str, int | None]] = []
    file = ""
    for line in reject_output.splitlines():
        applying = re.match(r"^Applying patch (.+?) with \d+ rejects?\.\.\.$", line)
        if applying:
            file = applying.group(1)
        rejected = re.match(r"^Rejected hunk #(\d+)\.$", line)
        if rejected and file:
            found.append((file, int(rejected.group(1))))
        missing = re.match(r"^error: (.+?): (?:does not exist in index|No such file or dir)", line)
        if missing:
            found.append((missing.group(1), None))
    return found


def closest_window(base_text: str, expected: Sequence[str]) -> tuple[int | None, list[str]]:
    """The 1-based start and lines of the base window that best matches `expected`."""
    lines = base_text.splitlines()
    if not lines or not expected:
        return None, []
    size = len(expected)
    want = "\n".join(expected)
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(want)
    best, best_ratio = 0, -1.0
    anchors = {s.strip() for s in expected if len(s.strip()) > 3}
    for start in range(max(1, len(lines) - size + 1)):
        window = lines[start : start + size]
        if anchors and not any(w.strip() in anchors for w in window):
            continue  # no line in common: cannot be the place
        matcher.set_seq1("\n".join(window))
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best, best_ratio = start, ratio
    if best_ratio < 0:
        return None, []
    return best + 1, lines[best : best + size]


def describe_conflict(hunk: Hunk, base_text: str | None) -> HunkConflict:
    """A rejected hunk against the base file's text (None when the file is missing)."""
    label = f"#{hunk.index} ({hunk.header})"
    if base_text is None:
        return HunkConflict(
            hunk.file,
            label,
            hunk.function,
            False,
            None,
            "",
            f"{hunk.file} does not exist in the base",
        )
    func = hunk.function
    in_base = bool(func) and re.search(rf"\b{re.escape(func)}\b", base_text) is not None
    start, window = closest_window(base_text, hunk.expected)
    diff = "\n".join(
        difflib.unified_diff(
            list(hunk.expected), window, "patch expects", "base has", lineterm="", n=1
        )
    )
    return HunkConflict(hunk.file, label, func, in_base, start, "\n".join(window), diff)


def is_mail(patch: Patch) -> bool:
    """True for a git format-patch mail (git am), False for a plain diff (git apply)."""
    head = patch.text.split("\n\n", 1)[0]
    return bool(re.search(r"^(From|Subject): ", head, re.MULTILINE))


def _git(src: Path, *args: str, text: str | None = None) -> subprocess.CompletedProcess[str]:
    return proc.run(tree.git_argv(src, *args), timeout=_TIMEOUT, check=False, input_text=text)


def _commit_plain(src: Path, patch: Patch, index: int) -> bool:
    if _git(src, "apply", "-3", "--index", text=patch.text).returncode != 0:
        return False
    message = patch.subject or f"plain diff {index}"
    return _git(src, "commit", "-q", "--no-verify", "-m", message).returncode == 0


def _reset(src: Path, commit: str) -> None:
    _git(src, "am", "--abort")
    _git(src, "checkout", "--quiet", "--detach", "--force", commit)
    _git(src, "clean", "-fdq")


def _conflicts(src: Path, patch: Patch) -> tuple[HunkConflict, ...]:
    """Every rejected hunk of `patch` on the clean tree in src (left clean afterwards)."""
    head = _git(src, "rev-parse", "HEAD").stdout.strip()
    result = _git(src, "apply", "--reject", "--verbose", text=patch.text)
    rejected = rejected_hunks(result.stdout + result.stderr)
    _reset(src, head)
    hunks = {(h.file, h.index): h for h in parse_hunks(patch.text)}
    found = []
    for file, index in rejected:
        path = src / file
        base = path.read_text(errors="replace") if path.is_file() else None
        if index is None:
            first = next((h for h in hunks.values() if h.file == file), None)
            if first is not None:
                found.append(describe_conflict(first, None))
        elif (file, index) in hunks:
            found.append(describe_conflict(hunks[(file, index)], base))
    return tuple(found)


def apply_one(src: Path, patch: Patch, index: int) -> PatchOutcome:
    """Apply one patch on top of src's HEAD; on failure leave HEAD as it was."""
    files = patch_files(patch.text)
    strict = _git(src, "apply", "--check", "--verbose", text=patch.text)
    fuzzy = strict
    if strict.returncode != 0:
        fuzzy = _git(src, "apply", "--check", "--verbose", "-C1", text=patch.text)
    head = _git(src, "rev-parse", "HEAD").stdout.strip()
    if is_mail(patch):
        am = _git(src, "am", "-3", "--keep-cr", "--no-gpg-sign", text=patch.text)
        ok, output = am.returncode == 0, am.stdout + am.stderr
    else:
        ok, output = _commit_plain(src, patch, index), ""
    notes = offset_notes(fuzzy.stdout + fuzzy.stderr)
    if ok:
        if strict.returncode == 0:
            status = OFFSET if notes else APPLIED
        else:
            status = FUZZ if fuzzy.returncode == 0 else MERGED
        return PatchOutcome(index, patch.subject, status, files, notes)
    _reset(src, head)
    message = _last_error(output or strict.stderr)
    conflicts = _conflicts(src, patch)
    return PatchOutcome(index, patch.subject, CONFLICT, files, notes, conflicts, message)


def _last_error(output: str) -> str:
    found = re.findall(r"^(?:error|CONFLICT)[^\n]*", output, re.MULTILINE)
    return "; ".join(dict.fromkeys(found))[:400]


def apply_patches(src: Path, patches: Sequence[Patch]) -> tuple[PatchOutcome, ...]:
    """Apply patches one by one in src; stop at the first conflict (the rest not reached)."""
    outcomes: list[PatchOutcome] = []
    for number, patch in enumerate(patches, start=1):
        if outcomes and outcomes[-1].status == CONFLICT:
            outcomes.append(
                PatchOutcome(number, patch.subject, NOT_REACHED, patch_files(patch.text))
            )
            continue
        outcome = apply_one(src, patch, number)
        log.info("patch %d/%d %s: %s", number, len(patches), patch.subject, outcome.status)
        outcomes.append(outcome)
    return tuple(outcomes)


def apply_workdir(repo: Path) -> tree.WorkDir:
    """The private apply worktree of a repository (never the build worktree)."""
    key = hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:10]
    name = repo.resolve().name.removesuffix(".git") or "tree"
    return tree.WorkDir(cache_subdir("kbuild/apply") / f"{name}-{key}")


def apply_on(
    repo: Path, commit: str, reverts: Sequence[str], series: Series, base: str
) -> ApplyReport:
    """Check `series` out on commit (after reverts) in repo's apply worktree, patch by patch."""
    work = apply_workdir(repo)
    with tree.locked(work):
        tree.ensure_worktree(repo, work, commit)
        start = tree.checkout_variant(work, commit, reverts, None)
        outcomes = apply_patches(work.src, series.patches)
        head = _git(work.src, "rev-parse", "HEAD").stdout.strip()
        _reset(work.src, start)
    ok = all(o.status in GOOD for o in outcomes)
    return ApplyReport(base, series.source, commit, outcomes, head if ok else "")


def check_apply(base: str, series: Series) -> ApplyReport:
    """Resolve a base spec (git:, src:debian:, src:DIR, with +revert=) and apply the series."""
    from harness.kernel.build import build_inputs
    from harness.kernel.buildspec import parse_build_spec

    inputs = build_inputs(parse_build_spec(base))
    return apply_on(inputs.repo, inputs.commit, inputs.reverts, series, base)
