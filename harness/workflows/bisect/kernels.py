"""Bisection over an ordered list of kernel specs (oldest first: the first is the good
endpoint, the last the bad one). Nothing is built: every step is a spec of the list."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.workflows.bisect.outcome import BAD, GOOD


@dataclass(frozen=True)
class SpaceResult:
    """Where a bisection ended: the first bad item, or the items it could be (skips)."""

    first_bad: str | None
    candidates: tuple[str, ...]
    last_good: str


def parse_kernel_list(text: str) -> tuple[str, ...]:
    """--kernels A,B,C or @FILE / a file path (one spec a line, '#' comments): the specs."""
    path = Path(text.removeprefix("@"))
    if text.startswith("@") or (path.is_file() and "," not in text):
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise UserError(f"--kernels {text}: cannot read it ({exc.strerror})") from exc
        specs = [line.split("#", 1)[0].strip() for line in lines]
    else:
        specs = [s.strip() for s in text.split(",")]
    specs = [s for s in specs if s]
    if len(specs) < 2:
        raise UserError(f"--kernels {text}: give at least two specs, oldest (good) first")
    dupes = sorted({s for s in specs if specs.count(s) > 1})
    if dupes:
        raise UserError(f"--kernels lists {', '.join(dupes)} twice: each kernel once, in order")
    return tuple(specs)


class ListSpace:
    """Binary search over kernels[good..bad], stepping around skipped entries."""

    def __init__(self, kernels: tuple[str, ...]) -> None:
        self.kernels = kernels
        self.good, self.bad = 0, len(kernels) - 1
        self.skipped: set[int] = set()

    def _open(self) -> list[int]:
        return [i for i in range(self.good + 1, self.bad) if i not in self.skipped]

    def next(self) -> str | None:
        """The spec to test next (nearest the middle of what is left), None when done."""
        left = self._open()
        if not left:
            return None
        middle = (self.good + self.bad) // 2
        return self.kernels[min(left, key=lambda i: (abs(i - middle), i))]

    def mark(self, item: str, outcome: str) -> None:
        index = self.kernels.index(item)
        if outcome == GOOD:
            self.good = max(self.good, index)
        elif outcome == BAD:
            self.bad = min(self.bad, index)
        else:
            self.skipped.add(index)

    def result(self) -> SpaceResult:
        between = range(self.good + 1, self.bad)
        last_good = self.kernels[self.good]
        if not between:
            return SpaceResult(self.kernels[self.bad], (self.kernels[self.bad],), last_good)
        candidates = tuple(self.kernels[i] for i in range(self.good + 1, self.bad + 1))
        return SpaceResult(None, candidates, last_good)

    def label(self, item: str) -> str:
        return item

    def close(self) -> None:
        return None
