"""Each target's figures as a share of the raw device under it: how loop compared with NVMe.

The question the founding series answers is how close loop comes to its backing device.
A run that measured a workload on both, say loop-dio-on-xfs and raw-nvme0, answers it per
workload as a ratio of IOPS and of p99 completion latency. Which raw target lies under
which target is the suite's knowledge; the caller passes it in (`raw_of`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.results.model import RunResult, StepResult, StepStatus

SHARED = ("iops", "clat_p99_us")  # metric suffixes compared, per direction


@dataclass(frozen=True)
class Share:
    """One figure of `target` under `workload` against the same figure of `raw`."""

    target: str
    workload: str
    raw: str
    metric: str  # read_iops, write_clat_p99_us, ...
    value: float
    raw_value: float

    @property
    def ratio(self) -> float | None:
        return self.value / self.raw_value if self.raw_value else None


def _fio_steps(run: RunResult) -> dict[tuple[str, str], StepResult]:
    return {
        (s.target, s.workload): s
        for s in run.steps
        if s.kind == "fio" and s.status == StepStatus.PASS and s.target and s.workload
    }


def shares(run: RunResult, raw_of: Mapping[str, str]) -> list[Share]:
    """Every passed fio step's IOPS and p99 latency against the raw device under its target
    (`raw_of`: target -> raw target; a raw target maps to itself and is listed with ratio 1,
    so that a chart shows the device beside the targets on it), in step order."""
    steps = _fio_steps(run)
    out = []
    for (target, workload), step in steps.items():
        raw = raw_of.get(target)
        base = steps.get((raw, workload)) if raw else None
        if base is None or raw is None:
            continue
        for direction in ("read", "write"):
            for suffix in SHARED:
                metric = f"{direction}_{suffix}"
                if metric in step.metrics and metric in base.metrics:
                    out.append(
                        Share(
                            target,
                            workload,
                            raw,
                            metric,
                            step.metrics[metric],
                            base.metrics[metric],
                        )
                    )
    return out


def _fmt_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def summary_lines(all_shares: Sequence[Share]) -> list[str]:
    """One line per target that is not itself a raw device, e.g.
    'loop-dio-on-xfs vs raw-nvme0: randread-4k 0.22x IOPS (p99 3.10x), ...'."""
    by_target: dict[tuple[str, str], dict[str, dict[str, Share]]] = {}
    for s in all_shares:
        if s.target != s.raw:
            kind = "iops" if s.metric.endswith("_iops") else "p99"
            by_target.setdefault((s.target, s.raw), {}).setdefault(s.workload, {})[kind] = s
    lines = []
    for (target, raw), workloads in by_target.items():
        parts = []
        for workload, figures in workloads.items():
            if "iops" not in figures:
                continue
            text = f"{workload} {_fmt_ratio(figures['iops'].ratio)} IOPS"
            if "p99" in figures:
                text += f" (p99 {_fmt_ratio(figures['p99'].ratio)})"
            parts.append(text)
        if parts:
            lines.append(f"{target} vs {raw}: " + ", ".join(parts))
    return lines
