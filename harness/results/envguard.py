"""The environment guard: base and candidate must agree on what makes figures comparable
(accelerator, measure mode, QEMU, host filesystem, CPUs, topology), or be told to ignore
a difference, which marks the comparison invalid."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.errors import UserError
from harness.results.model import RunResult

GUARDED_FIELDS = ("accel", "measure", "qemu_version", "host_fs", "cpus", "topology")


@dataclass(frozen=True)
class EnvDiff:
    """A guarded field whose values differ between the sides (sorted, comma-joined)."""

    field: str
    base: str
    candidate: str


def _values(runs: Iterable[RunResult], name: str) -> tuple[str, ...]:
    vals = set()
    for run in runs:
        raw = run.topology if name == "topology" else getattr(run.environment, name)
        vals.add(str(raw))
    return tuple(sorted(vals))


def environment_diffs(base: Sequence[RunResult], cand: Sequence[RunResult]) -> tuple[EnvDiff, ...]:
    """Guarded fields whose sets of values differ between the two sides."""
    diffs = []
    for name in GUARDED_FIELDS:
        b, c = _values(base, name), _values(cand, name)
        if b != c:
            diffs.append(EnvDiff(name, ", ".join(b), ", ".join(c)))
    return tuple(diffs)


def guard_environment(diffs: Sequence[EnvDiff], allowed: Iterable[str]) -> None:
    """Raise UserError for the first difference not explicitly allowed."""
    allowed = set(allowed)
    unknown = allowed - set(GUARDED_FIELDS)
    if unknown:
        raise UserError(
            f"--allow-env-diff {sorted(unknown)[0]!r} is not a guarded field: "
            f"use one of {', '.join(GUARDED_FIELDS)}"
        )
    for diff in diffs:
        if diff.field not in allowed:
            raise UserError(
                f"base and candidate differ in {diff.field} ({diff.base!r} vs "
                f"{diff.candidate!r}): make them match, or pass --allow-env-diff "
                f"{diff.field} to compare anyway (the comparison is then marked invalid)"
            )
