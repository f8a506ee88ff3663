"""reproduce.sh: a script next to the results that re-runs exactly this comparison.

The script re-invokes `harness ab` with the recorded arguments; its comments pin down what
ran (kernel provenance with hashes, topology, the VM launch argv and the fio jobs) so a
re-run that differs can be told apart from one that reproduces.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.paths import PROJECT_ROOT
from harness.results.compare import Comparison
from harness.results.model import RunResult

_ARGV_FILE = "vng-argv.json"
# Step/run detail keys under which the pipeline may record how the VM was launched.
_LAUNCH_KEYS = ("vng_argv", "qemu_argv", "launch_argv")


def comment_safe(line: str) -> str:
    """One comment line of the script: every character that is not printable (a newline
    would end the comment and make the rest a command; CR, escapes) shown as an escape.
    Specs, releases, provenance and step ids come from results.json, which may be hostile."""
    return "".join(c if c.isprintable() or c == "\t" else ascii(c)[1:-1] for c in line)


def _kernel_lines(side: str, runs: Sequence[RunResult]) -> list[str]:
    if not runs:
        return [f"# {side}: no runs"]
    k = runs[0].kernel
    lines = [f"# {side}: {k.spec}  release {k.release or '?'}  image {k.image or '?'}"]
    digest = file_sha256(Path(k.image)) if k.image else None
    if digest:
        lines.append(f"#   image sha256: {digest}")
    lines += [f"#   {key}: {value}" for key, value in sorted(k.provenance.items())]
    lines.append(f"#   topology: {runs[0].topology}")
    return lines


def file_sha256(path: Path) -> str | None:
    """sha256 of a file (the kernel image), None when it is gone."""
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def pinned_spec(spec: str, release: str) -> str:
    """A spec that resolves to exactly the kernel that ran.

    `debian:6.12` means the newest 6.12 in the mirror, which moves; the release
    (6.12.117+deb12-amd64) names the package ABI, `debian:6.12.117+deb12`. Other specs
    (image paths, git refs) are returned unchanged; their hashes are in the comments.
    """
    if spec.startswith("debian:") and "-" in release:
        return "debian:" + release.rsplit("-", 1)[0]
    return spec


def launch_argv(run: RunResult) -> list[str] | None:
    """The VM launch argv a run recorded: vng-argv.json beside its console.log (written by
    the pipeline), else kernel provenance or a step's details; None if nowhere."""
    if run.console_log:
        saved = Path(run.console_log).parent / _ARGV_FILE
        try:
            return [str(a) for a in json.loads(saved.read_text())]
        except (OSError, ValueError, TypeError):
            pass
    for key in _LAUNCH_KEYS:
        value = run.kernel.provenance.get(key)
        if value:
            return shlex.split(value) if isinstance(value, str) else list(value)
        for step in run.steps:
            value = step.details.get(key)
            if value:
                return [str(a) for a in value]
    return None


def _fio_lines(runs: Sequence[RunResult]) -> list[str]:
    lines = []
    for step in runs[0].steps if runs else ():
        argv = step.details.get("fio_argv")
        if argv:
            lines.append(f"#   {step.id}: {shlex.join(str(a) for a in argv)}")
    return lines or ["#   (no fio jobs recorded)"]


def render_reproducer(harness_args: Sequence[str], comparison: Comparison) -> str:
    """Bash script text: provenance comments, then `harness <harness_args> --out DIR`.

    The output directory is the script's first argument (default: a new rerun-<time>
    directory beside the script); HARNESS_ROOT overrides the checkout it runs from.
    """
    c = comparison
    lines = [
        "#!/usr/bin/env bash",
        f"# Re-runs the A/B comparison {c.base_label} vs {c.cand_label}.",
        "# Usage: ./reproduce.sh [OUT_DIR]   (HARNESS_ROOT=/path/to/checkout to move it)",
        "#",
        *_kernel_lines("base", c.base_runs),
        *_kernel_lines("candidate", c.cand_runs),
        "#",
        "# environment: "
        + (
            ", ".join(f"{k}={v}" for k, v in c.base_runs[0].environment.properties().items())
            if c.base_runs
            else "?"
        ),
    ]
    if not c.valid:
        lines.append("# NOTE: the original comparison was INVALID (environments differed)")
    for side, runs in (("base", c.base_runs), ("candidate", c.cand_runs)):
        argv = launch_argv(runs[0]) if runs else None
        lines.append(f"# VM launch ({side}, rep 0): " + (shlex.join(argv) if argv else "?"))
    lines += ["# fio jobs (base, rep 0):", *_fio_lines(c.base_runs)]
    lines = [comment_safe(line) for line in lines]
    lines += [
        "set -euo pipefail",
        'here=$(cd "$(dirname "$0")" && pwd)',
        'out=${1:-"$here/rerun-$(date +%Y%m%d-%H%M%S)"}',
        f"root=${{HARNESS_ROOT:-{shlex.quote(str(PROJECT_ROOT))}}}",
        f"python=${{HARNESS_PYTHON:-{shlex.quote(sys.executable)}}}",
        'cd "$root"',
        'exec "$python" -m harness ' + shlex.join(harness_args) + ' --out "$out"',
        "",
    ]
    return "\n".join(lines)
