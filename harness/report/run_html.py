"""report.html for plain runs: the verdict, each target against the raw device under it
(chart and table, with the mechanism figures), the checks, the kernel's splats.

Pure renderers (runs -> str) and one writer; the look is harness.report.html's.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.report import html as page_html
from harness.report.versus_raw import Share, shares, summary_lines
from harness.results.files import atomic_write_text
from harness.results.metrics import measure_label
from harness.results.model import RunResult, StepResult, StepStatus
from harness.verdict import classify

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass(frozen=True)
class Row:
    """One target under one workload and direction, with its figures and their shares."""

    group: str  # the workload, and the direction when the workload did both
    target: str
    raw: str
    metrics: Mapping[str, float]
    direction: str
    iops_share: float | None
    p99_share: float | None

    def get(self, metric: str) -> float | None:
        return self.metrics.get(metric)


def _directions(step: StepResult) -> list[str]:
    return [d for d in ("read", "write") if f"{d}_iops" in step.metrics]


def rows(run: RunResult, raw_of: Mapping[str, str]) -> list[Row]:
    """Every passed fio step as rows (one per direction it did), grouped by workload in
    plan order; a share is None where no raw device under the target was measured."""
    index = {(s.target, s.workload, s.metric): s for s in shares(run, raw_of)}
    out: list[Row] = []
    for step in run.steps:
        if step.kind != "fio" or step.status != StepStatus.PASS:
            continue
        both = len(_directions(step)) > 1
        for d in _directions(step):

            def share(metric: str, d: str = d, step: StepResult = step) -> Share | None:
                return index.get((step.target, step.workload, f"{d}_{metric}"))

            iops, p99 = share("iops"), share("clat_p99_us")
            out.append(
                Row(
                    group=f"{step.workload} ({d})" if both else step.workload,
                    target=step.target,
                    raw=iops.raw if iops else "",
                    metrics=step.metrics,
                    direction=d,
                    iops_share=iops.ratio if iops else None,
                    p99_share=p99.ratio if p99 else None,
                )
            )
    order = {g: i for i, g in enumerate(dict.fromkeys(r.group for r in out))}
    return sorted(out, key=lambda r: order[r.group])


# --- chart -----------------------------------------------------------------------------

_PANELS = (
    ("IOPS, share of raw device", lambda r: r.iops_share),
    ("p99 latency, share of raw device", lambda r: r.p99_share),
    ("CPU us per I/O", lambda r: r.get("cpu_us_per_io")),
    ("context switches per I/O", lambda r: r.get("ctxsw_per_io")),
)


def _color(target: str) -> str:
    for prefix, color in (
        ("raw-", "#7f8c8d"),
        ("file-", "#2980b9"),
        ("loop-dio-on", "#27ae60"),
        ("loop-dio-off", "#e67e22"),
        ("nested", "#8e44ad"),
        ("dm-", "#c0392b"),
    ):
        if target.startswith(prefix):
            return color
    return "#34495e"


def fmt_figure(value: float) -> str:
    """3 significant digits without exponents: 9394, 298, 0.194."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _share_axis(ax: Axes, values: list[float]) -> None:
    """Shares on a log axis, bars from 1 (the raw device): 0.5x and 2x look equally far."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    low, high = min([*values, 1.0]), max([*values, 1.0])
    lim = (min(low / 2.2, 0.5), max(high * 2.2, 2.0))
    ax.set_xlim(*lim)
    ticks = [t for t in (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300) if lim[0] <= t <= lim[1]]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")


def _panel(ax: Axes, title: str, group: Sequence[Row], values: list[float | None]) -> None:
    share = "share" in title
    ys = list(range(len(group)))[::-1]
    for y, row, value in zip(ys, group, values, strict=True):
        if value is None or (share and value <= 0):
            ax.text(1.0 if share else 0, y, " n/a", va="center", fontsize=7, color="#777")
            continue
        if share:
            ax.barh(y, value - 1.0, left=1.0, color=_color(row.target), height=0.7)
        else:
            ax.barh(y, value, color=_color(row.target), height=0.7)
        left = share and value < 1.0  # a bar drawn leftwards from 1: its label on the left
        label = (
            f"{value:.2f}x " if left else (f" {value:.2f}x" if share else f" {fmt_figure(value)}")
        )
        ax.text(value, y, label, va="center", ha="right" if left else "left", fontsize=7)
    if share:
        _share_axis(ax, [v for v in values if v is not None and v > 0])
    else:
        ax.margins(x=0.25)
    ax.set_yticks(ys, [r.target for r in group], fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title, fontsize=8)


def plot(all_rows: Sequence[Row], *, dpi: int = 80) -> bytes:
    """PNG: per workload a row of panels (IOPS and p99 as a share of the raw device, then
    CPU and context switches per I/O), one bar per target, raw devices in grey."""
    from matplotlib.figure import Figure  # 2 s to import: only when plotting

    groups: dict[str, list[Row]] = {}
    for r in all_rows:
        groups.setdefault(r.group, []).append(r)
    height = sum(0.9 + 0.28 * len(g) for g in groups.values())
    fig = Figure(figsize=(13, max(height, 2.0)), dpi=dpi)
    ratios = [len(g) + 2 for g in groups.values()]
    axes = fig.subplots(
        len(groups), len(_PANELS), squeeze=False, gridspec_kw={"height_ratios": ratios}
    )
    for ax_row, (name, group) in zip(axes, groups.items(), strict=True):
        for ax, (title, value) in zip(ax_row, _PANELS, strict=True):
            _panel(
                ax,
                f"{name}: {title}" if ax is ax_row[0] else title,
                group,
                [value(r) for r in group],
            )
    fig.tight_layout()
    return page_html.png(fig)


# --- tables ----------------------------------------------------------------------------

_FIGURE_HEAD = (
    "workload",
    "target",
    "raw device",
    "IOPS",
    "IOPS / raw",
    "p99 us",
    "p99 / raw",
    "CPU us/IO",
    "ctxsw/IO",
    "loop dio issued inline",
    "loop wq runs/request",
)


def _num(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{fmt_figure(value)}{suffix}"


def _figure_row(r: Row) -> list[str]:
    worker = r.get("loop_dio_worker_fraction")
    return [
        r.group,
        r.target,
        r.raw or "-",
        _num(r.get(f"{r.direction}_iops")),
        _num(r.iops_share, "x"),
        _num(r.get(f"{r.direction}_clat_p99_us")),
        _num(r.p99_share, "x"),
        _num(r.get("cpu_us_per_io")),
        _num(r.get("ctxsw_per_io")),
        _num(None if worker is None else 1.0 - worker),
        _num(r.get("loop_wq_fraction")),
    ]


def _check_rows(run: RunResult) -> list[list[str]]:
    """Checks, then any other step that did not pass (its message says why)."""
    picked = [s for s in run.steps if s.kind == "check"]
    picked += [s for s in run.steps if s.kind != "check" and s.status != StepStatus.PASS]
    return [[s.id, s.target or "-", s.status, f"{s.duration_s:.0f}s", s.message] for s in picked]


# --- page ------------------------------------------------------------------------------


def _verdict(run: RunResult) -> str:
    verdict = classify(run)
    counts = {s: sum(1 for x in run.steps if x.status == s) for s in StepStatus}
    text = (
        f"{'PASS' if run.passed else 'FAIL'} {run.kernel.spec} "
        f"({run.kernel.release or '?'}) on {run.topology}: verdict {verdict.cls}; "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    )
    if verdict.summary:
        text += f" - {verdict.summary}"
    return page_html.banner(text, "ok" if verdict.cls == "pass" else "bad", css_id="")


def _environment(run: RunResult) -> str:
    env = run.environment
    tcg = (
        (
            " Under TCG the IOPS and latencies are the emulator's; the shares and the "
            "mechanism figures still compare targets."
        )
        if env.accel == "tcg"
        else ""
    )
    tcg += (
        " A share is the target's figure over the raw device's under the same workload: "
        "IOPS above 1x and p99 below 1x beat the device. 'loop dio issued inline' is the "
        "share of loop's direct I/Os issued in the submitter's context, not by its worker."
    )
    return (
        f"<p class='note'>accel {html.escape(env.accel)}, {env.cpus} vCPUs, "
        f"{env.memory_mb} MiB, QEMU {html.escape(env.qemu_version or 'n/a')}, "
        f"{html.escape(env.fio_version or 'fio ?')}; plan {html.escape(run.plan)}, "
        f"{run.duration_s:.0f} s. {html.escape(measure_label(env.measure))}."
        f"{html.escape(tcg)}</p>"
    )


def _run_section(run: RunResult, raw_of: Mapping[str, str]) -> list[str]:
    all_rows = rows(run, raw_of)
    lines = summary_lines(shares(run, raw_of))
    parts = [
        f"<h2>{html.escape(run.kernel.release or run.kernel.spec)} / "
        f"{html.escape(run.topology)}</h2>",
        _verdict(run),
    ]
    if run.infra_error:
        parts.append(f"<p class='error'>run stopped: {html.escape(run.infra_error)}</p>")
    if lines:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        parts.append(f"<p><b>Against the raw device under each target:</b></p><ul>{items}</ul>")
    parts.append(_environment(run))
    if all_rows:
        parts += [
            "<h3>Targets against their raw device</h3>",
            page_html.img(
                plot(all_rows),
                "IOPS and p99 as a share of the raw device, "
                "CPU and context switches per I/O, per workload and target",
            ),
            page_html.table(_FIGURE_HEAD, [_figure_row(r) for r in all_rows]),
        ]
    parts += [
        "<h3>Checks</h3>",
        page_html.table(("step", "target", "status", "time", "message"), _check_rows(run)),
    ]
    for splat in run.splats:
        parts.append(
            f"<h3>{html.escape(splat.kind)}: {html.escape(splat.title)} (console "
            f"line {splat.line})</h3><pre>{html.escape(splat.excerpt[:4000])}</pre>"
        )
    return parts


def render_html(runs: Sequence[RunResult], raw_of: Mapping[str, str]) -> str:
    """report.html of plain runs, one section per run (raw_of: target -> raw target)."""
    body: list[str] = []
    for run in runs:
        body += _run_section(run, raw_of)
    return page_html.page("Kernel test run", body)


def write_html(path: Path, runs: Sequence[RunResult], raw_of: Mapping[str, str]) -> None:
    atomic_write_text(path, render_html(runs, raw_of))
