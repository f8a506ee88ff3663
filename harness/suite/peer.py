"""Peer suites (blktests, fstests) as plan data: the --suite shorthand, the expansion of a
selection into one plan step per suite test, and the known-failure (expunge) lists.

    blktests:PATH@loop                     the loop group of the checkout at PATH
    fstests:PATH@ext4/032,generic/001:fstype=xfs:timeout=300:budget=900:expunge=FILE
    fstests:PATH@harness-quick:fstype=xfs  the harness's curated list for a TCG guest

Each suite test becomes a step `SUITE/GROUP/NNN` of kind "suite", run by guest/peer.py from
a writable copy of the suite as built on the host (harness.run.peer).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.errors import UserError

log = logging.getLogger(__name__)


class PeerSuite(StrEnum):
    BLKTESTS = "blktests"
    FSTESTS = "fstests"


FSTYPES = ("ext4", "xfs")
DEFAULT_TEST_TIMEOUT_S = 600
DEFAULT_BUDGET_S = 3600
# Setup the first test of a suite pays in the guest (copy of the built suite, mkfs of
# TEST_DEV) on top of its own timeout, so the agent's step alarm never fires before it.
SETUP_MARGIN_S = 180
_TEST_RE = re.compile(r"^[a-z0-9_-]+/[0-9]{3,4}$")
_GROUP_RE = re.compile(r"^[a-z0-9_-]+$")
_OPTIONS = ("fstype", "timeout", "budget", "expunge")
# The harness's own selection: a name with a hyphen, which neither suite uses for a group
# (fstests' groups are words in _begin_fstest lines, blktests' the folders under tests/).
CURATED = "harness-quick"


@dataclass(frozen=True)
class Curated:
    """A selection the harness chose and measured for Debian 6.12 under TCG (the figures are
    in docs/peer-suites.md): suite groups and tests, and the default timeout and budget that
    fit it; `:timeout=` and `:budget=` still override them."""

    items: tuple[str, ...]
    test_timeout_s: int
    budget_s: int


# Every fstests test costs about 75 s here beyond its own runtime (./check's setup, mkfs
# of the scratch disk, the checks of both filesystems after it), so the lists are short:
# one test per area the issue names. Both filesystems: fallocate punch/collapse, AIO
# direct I/O, a loop device on the scratch filesystem; then the filesystem's own resize
# (ext4/032, online resize through a loop device; xfs/289, growfs) and reflink on XFS
# (ext4 has none). Left out after measuring: generic/130 (direct I/O patterns, 187 s),
# generic/008 and 009 (zero range, 119 s and 153 s), ext4/306 (100 s, resize again).
_FSTESTS_COMMON = ("generic/012", "generic/240", "generic/361")
# blktests without a test device: the loop group, block tests on scsi_debug (a module in
# Debian's kernels) that passed here, and block/023 (I/O on each null_blk queue mode; the
# guest mounts configfs for null_blk: guest/peer.py). TIMED tests run fio until $TIMEOUT;
# block/028 (DIF/DIX) had not ended after 150 s.
_BLOCK = ("block/009", "block/025", "block/023")
CURATED_SELECTIONS: dict[tuple[str, str], Curated] = {
    ("blktests", ""): Curated(("loop", *_BLOCK), 600, 900),
    ("fstests", "ext4"): Curated(("ext4/032", *_FSTESTS_COMMON), 900, 1200),
    ("fstests", "xfs"): Curated(("xfs/289", "generic/110", *_FSTESTS_COMMON), 600, 1200),
}


def curated(suite: str, fstype: str = "ext4") -> Curated:
    """The harness's curated selection for the suite (and, for fstests, the filesystem)."""
    return CURATED_SELECTIONS[(suite, fstype if suite == PeerSuite.FSTESTS else "")]


@dataclass(frozen=True)
class SuiteSpec:
    """One --suite: which suite, the user's checkout, what to run and how long it may take."""

    suite: PeerSuite
    path: Path
    selection: tuple[str, ...]  # groups ("loop", "quick") and tests ("loop/004")
    fstype: str = "ext4"  # fstests only
    test_timeout_s: int = DEFAULT_TEST_TIMEOUT_S
    budget_s: int = DEFAULT_BUDGET_S
    expunge: Path | None = None  # a file, or a directory of files named by kernel release


def _option(spec: dict[str, Any], key: str, value: str, text: str) -> None:
    if key not in _OPTIONS:
        raise UserError(f"--suite {text!r}: unknown option {key!r}; use {', '.join(_OPTIONS)}")
    if key == "fstype":
        if value not in FSTYPES:
            raise UserError(f"--suite {text!r}: fstype must be one of {', '.join(FSTYPES)}")
        spec["fstype"] = value
    elif key == "expunge":
        spec["expunge"] = Path(value)
    else:
        if not value.isdigit() or int(value) <= 0:
            raise UserError(f"--suite {text!r}: {key} is a positive number of seconds")
        spec["test_timeout_s" if key == "timeout" else "budget_s"] = int(value)


def parse_suite(text: str) -> SuiteSpec:
    """'SUITE:PATH@SELECTION[:KEY=VALUE...]' -> SuiteSpec; UserError says what is wrong."""
    name, colon, rest = text.partition(":")
    if not colon or name not in PeerSuite.__members__.values():
        raise UserError(f"--suite {text!r}: use blktests:PATH@GROUP or fstests:PATH@TESTS")
    path, at, tail = rest.rpartition("@")
    if not at or not path:
        raise UserError(f"--suite {text!r}: name what to run after '@' (e.g. @loop)")
    selection, *options = tail.split(":")
    names = tuple(s for s in selection.split(",") if s)
    bad = [s for s in names if not (_TEST_RE.match(s) or _GROUP_RE.match(s))]
    if not names or bad:
        raise UserError(f"--suite {text!r}: selection is GROUP or GROUP/NNN, comma-separated")
    spec: dict[str, Any] = {}
    for option in options:
        key, eq, value = option.partition("=")
        if not eq:
            raise UserError(f"--suite {text!r}: option {option!r} is KEY=VALUE")
        _option(spec, key, value, text)
    if CURATED in names:
        chosen = curated(name, spec.get("fstype", "ext4"))
        spec.setdefault("test_timeout_s", chosen.test_timeout_s)
        spec.setdefault("budget_s", chosen.budget_s)
    return SuiteSpec(PeerSuite(name), Path(path).expanduser().resolve(), names, **spec)


def suite_text(spec: SuiteSpec) -> str:
    """The --suite text of `spec` with absolute paths (what parse_suite reads back), for a
    request replayed later from another directory (bisect --resume)."""
    options = [f"fstype={spec.fstype}"] * (spec.suite == PeerSuite.FSTESTS)
    if spec.test_timeout_s != DEFAULT_TEST_TIMEOUT_S:
        options.append(f"timeout={spec.test_timeout_s}")
    if spec.budget_s != DEFAULT_BUDGET_S:
        options.append(f"budget={spec.budget_s}")
    if spec.expunge is not None:
        options.append(f"expunge={spec.expunge.expanduser().resolve()}")
    return ":".join([f"{spec.suite}:{spec.path}@{','.join(spec.selection)}", *options])


def _blktests_group(root: Path, group: str) -> list[str]:
    folder = root / "tests" / group
    if not folder.is_dir():
        raise UserError(f"blktests has no group {group!r} (no {folder})")
    return sorted(f"{group}/{p.name}" for p in folder.iterdir() if re.fullmatch(r"\d{3}", p.name))


def _fstests_group(root: Path, group: str) -> list[str]:
    """Tests whose tests/*/group.list line (written by fstests' make) names the group."""
    found = []
    for listing in sorted((root / "tests").glob("*/group.list")):
        for line in listing.read_text(errors="replace").splitlines():
            words = line.split("#")[0].split()
            if len(words) > 1 and group in words[1:]:
                found.append(f"{listing.parent.name}/{words[0]}")
    if not found:
        raise UserError(f"fstests has no test in group {group!r} (tests/*/group.list; built?)")
    return found


def expand(spec: SuiteSpec, built: Path) -> list[str]:
    """The selection as suite test names in suite order, each once; a name the built suite
    lacks is a UserError naming it."""
    tests: list[str] = []
    for item in spec.selection:
        if item == CURATED:
            tests.extend(_curated_tests(spec, built))
        elif "/" in item:
            if not (built / "tests" / item).is_file():
                raise UserError(f"{spec.suite} has no test {item} (no tests/{item} in {spec.path})")
            tests.append(item)
        elif spec.suite == PeerSuite.BLKTESTS:
            tests.extend(_blktests_group(built, item))
        else:
            tests.extend(_fstests_group(built, item))
    return list(dict.fromkeys(tests))


def _curated_tests(spec: SuiteSpec, built: Path) -> list[str]:
    """The curated selection's tests; one an older or newer checkout lacks is left out (the
    list was made for a snapshot), with a warning naming it."""
    chosen = curated(spec.suite, spec.fstype)
    tests = expand(replace(spec, selection=tuple(i for i in chosen.items if "/" not in i)), built)
    for test in (i for i in chosen.items if "/" in i):
        if (built / "tests" / test).is_file():
            tests.append(test)
        else:
            log.warning("%s %s: this checkout has no %s; left out", spec.suite, CURATED, test)
    return tests


def parse_expunge(text: str) -> dict[str, str]:
    """An fstests-style expunge list: 'GROUP/NNN  # why' per line -> {test: why}."""
    known: dict[str, str] = {}
    for line in text.splitlines():
        test, _, why = line.partition("#")
        test = test.strip()
        if test:
            known[test] = why.strip() or "listed"
    return known


def expunge_file(path: Path | None, release: str) -> Path | None:
    """The known-failure list for this kernel: the file itself, or in a directory the file
    named by the release (6.12.57+deb12-amd64), else by its major.minor (6.12)."""
    if path is None or path.is_file():
        return path
    if not path.is_dir():
        raise UserError(f"expunge {path}: no such file or directory")
    short = ".".join(release.split(".")[:2])
    for name in (release, short):
        if name and (path / name).is_file():
            return path / name
    return None


def known_failures(spec: SuiteSpec, release: str) -> tuple[dict[str, str], str]:
    """({test: why}, the file's path) for this kernel; ({}, "") without a list."""
    path = expunge_file(spec.expunge, release)
    if path is None:
        return {}, ""
    return parse_expunge(path.read_text(errors="replace")), str(path)


def suite_steps(
    spec: SuiteSpec, built: Path, tests: list[str], disks: list[dict[str, Any]], release: str
) -> list[dict[str, Any]]:
    """One plan step per suite test (plan.json shape): id SUITE/GROUP/NNN, kind "suite".

    fstests gets the first two disks of the topology as TEST_DEV and SCRATCH_DEV."""
    names = [d["name"] for d in disks]
    if spec.suite == PeerSuite.FSTESTS and len(names) < 2:
        raise UserError("fstests needs two disks (TEST_DEV, SCRATCH_DEV): use a topology with two")
    known, source = known_failures(spec, release)
    steps = []
    for test in tests:
        params: dict[str, Any] = {
            "suite": str(spec.suite),
            "test": test,
            "src": str(built.with_suffix(".tar")),
            "test_timeout_s": spec.test_timeout_s,
            "budget_s": spec.budget_s,
        }
        if spec.suite == PeerSuite.FSTESTS:
            params.update(fstype=spec.fstype, test_disk=names[0], scratch_disk=names[1])
        if test in known:
            params["known_failure"] = f"{known[test]} ({os.path.basename(source)})"
        steps.append(
            {
                "id": f"{spec.suite}/{test}",
                "kind": "suite",
                "check": test,
                "timeout_s": spec.test_timeout_s + SETUP_MARGIN_S,
                "target": {"name": str(spec.suite)},
                "params": params,
            }
        )
    return steps
