"""report.md for plain runs: what ran where, what failed and why, the headline figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.results.files import atomic_write_text
from harness.results.metrics import measure_label
from harness.results.model import RunResult, StepResult, StepStatus
from harness.verdict import classify

_HEADLINE = (
    "read_iops",
    "write_iops",
    "read_bw_mib",
    "write_bw_mib",
    "read_clat_p99_us",
    "write_clat_p99_us",
    "ctxsw_per_io",
    "nr_blocking_writes",
    "stack_max_bytes",
    "stack_path_bytes",
)


def _figures(step: StepResult) -> str:
    shown = [f"{k}={step.metrics[k]:.4g}" for k in _HEADLINE if k in step.metrics]
    return ", ".join(shown)


def _run_section(run: RunResult) -> list[str]:
    env = run.environment
    counts = {
        s: sum(1 for x in run.steps if x.status == s)
        for s in ("pass", "fail", "error", "skip", "xfail")
    }
    lines = [
        f"## {run.kernel.release or run.kernel.spec} ({run.kernel.spec}) / {run.topology}",
        "",
        f"- accel: **{env.accel}** {('- ' + env.accel_note) if env.accel_note else ''}",
        f"- {measure_label(env.measure)}",
        f"- QEMU {env.qemu_version or 'n/a'}, {env.fio_version or 'fio ?'}, "
        f"host fs {env.host_fs or '?'}, {env.cpus} vCPUs, {env.memory_mb} MiB",
        f"- plan `{run.plan}`, {run.duration_s:.0f} s, console log `{run.console_log}`",
        "- " + ", ".join(f"{n} {s}" for s, n in counts.items() if n),
    ]
    if run.infra_error:
        lines.append(f"- **run stopped: {run.infra_error}**")
    verdict = classify(run)
    attempts = f" ({verdict.attempts} attempts)" if verdict.attempts > 1 else ""
    lines.append(
        f"- verdict: **{verdict.cls}**{attempts}"
        + (f": {verdict.summary}" if verdict.summary else "")
    )
    if env.hung_task_timeout_s:
        lines.append(f"- guest hung_task_timeout_secs={env.hung_task_timeout_s}")
    for stall in run.stalls:
        lines.append(
            f"- stall, not a hang (the task ran on; console line {stall.line}): {stall.title}"
        )
    for artefact in verdict.artefacts:
        lines.append(
            f"- emulator artefact (retried): {artefact.get('summary', '')}; "
            f"console log `{artefact.get('console_log', '')}`"
        )
    lines += ["", "| step | status | figures / message |", "|---|---|---|"]
    for step in run.steps:
        text = step.message if step.status != StepStatus.PASS else _figures(step)
        lines.append(f"| `{step.id}` | {step.status} | {text.replace('|', '/')} |")
    for splat in run.splats:
        lines += [
            "",
            f"### {splat.kind}: {splat.title} (console line {splat.line})",
            "",
            "```",
            splat.excerpt[:4000],
            "```",
        ]
    return lines + [""]


def markdown(runs: Sequence[RunResult]) -> str:
    lines = ["# Kernel test run", ""]
    if any(r.environment.accel == "tcg" for r in runs):
        lines += [
            "> Ran under TCG (no usable KVM): throughput figures reflect the emulator; "
            "mechanism figures (context switches per I/O, stack depth, "
            "nr_blocking_writes) still mean something.",
            "",
        ]
    for run in runs:
        lines += _run_section(run)
    return "\n".join(lines)


def write_markdown(path: Path, runs: Sequence[RunResult]) -> None:
    atomic_write_text(path, markdown(runs))
