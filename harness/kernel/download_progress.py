"""A download's progress in bytes: apt-get download prints none when it is not on a
terminal, so the total comes from `apt-cache show` (Size:) and the bytes so far from the
files growing in the download directory."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness import progress

POLL_S = 1.0
_SIZE = re.compile(r"^Size:\s*(\d+)", re.MULTILINE)


def total_size(apt_show_output: str) -> int | None:
    """The sum of the Size: fields of `apt-cache show` output (one per package), or None."""
    sizes = [int(m) for m in _SIZE.findall(apt_show_output)]
    return sum(sizes) or None


def bytes_so_far(directory: Path, packages: Sequence[str]) -> int:
    """Bytes of the packages' files in `directory` and its partial/ (apt's staging)."""
    total = 0
    for where in (directory, directory / "partial"):
        for package in packages:
            for path in where.glob(f"{package}_*.deb*"):
                try:
                    total += path.stat().st_size
                except FileNotFoundError:  # renamed from partial/ under us
                    continue
    return total


@contextmanager
def watching(
    directory: Path, packages: Sequence[str], total: int | None, poll_s: float = POLL_S
) -> Iterator[None]:
    """Report the bytes of `packages` arriving in `directory` while the block runs."""
    name = packages[0].split("=")[0] if len(packages) == 1 else f"{len(packages)} packages"
    step = progress.Step(f"download {name}", "bytes", total)
    names = [p.split("=")[0] for p in packages]
    before = bytes_so_far(directory, names)  # an older copy already there is not progress
    step.update(0)
    with progress.finishing(step):
        with progress.polled(lambda: step.update(bytes_so_far(directory, names) - before), poll_s):
            yield
