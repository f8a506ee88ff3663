"""A build's progress from make's own output: objects compiled so far of an estimate.

kbuild prints one short line per action ("  CC      fs/xfs/xfs_inode.o"); the objects are
the CC, AS, AR and LD lines (modules' "CC [M]" too). The estimate of a build's total comes
from the last full build with the same config (its count is stored in metadata.json as
`objects`; for older builds, counted in their build.log), else from the tree's Kbuild files
(harness.kernel.kbuild_count), less the objects a previous,
interrupted build already left in the object directory. An incremental build (vmlinux
already there) has no estimate: only its count and elapsed time are shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import progress

_OBJECT_LINE = re.compile(r"^  (CC|AS|AR|LD)( \[M\])?\s+\S")
POLL_S = 1.0


def is_object_line(line: str) -> bool:
    """Whether one build-log line is kbuild compiling, assembling, archiving or linking."""
    return bool(_OBJECT_LINE.match(line))


def count_objects(lines: Iterable[str]) -> int:
    """The object lines among `lines` (a build log, or part of one)."""
    return sum(1 for line in lines if is_object_line(line))


def stored_estimate(artifacts: Path, config_hash: str, origin: str) -> int | None:
    """The object count of the newest full build with this config in the cache, preferring
    one of the same tree (`origin`); a build from before counts were stored gives the count
    of its build.log (the largest such, which is its full build). None: no build recorded."""
    found: list[tuple[bool, str, int]] = []
    older: list[int] = []
    for meta_path in artifacts.glob("*/metadata.json"):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if meta.get("config_hash") != config_hash:
            continue
        if "objects" not in meta:
            older.append(_logged_objects(meta_path.parent / "build.log"))
        elif meta.get("full_build") and meta["objects"]:
            same_tree = meta.get("origin") == origin
            found.append((same_tree, str(meta.get("built_at", "")), int(meta["objects"])))
    if found:
        return max(found)[2]
    return max(older, default=0) or None


def _logged_objects(log_path: Path) -> int:
    try:
        with log_path.open(errors="replace") as fh:
            return count_objects(fh)
    except OSError:
        return 0


def estimate(obj: Path, stored: int | None) -> int | None:
    """Objects this build will compile: None for an incremental build (a vmlinux is there)
    or with nothing stored; else the stored count less the .o files already in `obj`."""
    if stored is None or (obj / "vmlinux").exists():
        return None
    already = sum(1 for _ in obj.rglob("*.o")) if obj.is_dir() else 0
    return max(1, stored - already)


def _new_lines(path: Path, offset: int) -> tuple[list[str], int]:
    """Complete lines appended to `path` since `offset`, and the offset after them."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
    except FileNotFoundError:
        return [], offset
    end = chunk.rfind(b"\n") + 1
    text = chunk[:end].decode(errors="replace")
    return text.splitlines(), offset + end


@contextmanager
def watching(
    log_path: Path, stage: str, total: int | None, poll_s: float = POLL_S
) -> Iterator[Callable[[], int]]:
    """Report the objects make writes to `log_path` while the block runs (the log is read
    every `poll_s`); yields a function giving the count so far."""
    step = progress.Step(stage, "objects", total)
    state = {"offset": log_path.stat().st_size if log_path.exists() else 0, "done": 0}

    def poll() -> None:
        lines, state["offset"] = _new_lines(log_path, state["offset"])
        state["done"] += count_objects(lines)
        step.update(state["done"])

    step.update(0)
    with progress.finishing(step), progress.polled(poll, poll_s):
        yield lambda: int(state["done"])
