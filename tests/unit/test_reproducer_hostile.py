"""reproduce.sh from hostile results: specs, releases, provenance, topology, step ids and a
recorded launch argv come from results.json (maybe from `harness report` on a file someone
sent, or a remote host); a newline in any of them must stay inside its comment."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from harness.report.reproducer import comment_safe, render_reproducer
from harness.results.compare import Comparison
from harness.results.model import Environment, KernelInfo, RunResult, StepResult


def _hostile_run(tmp_path: Path, mark: Path) -> RunResult:
    cmd = f"\ntouch {mark}\n"
    logdir = tmp_path / "run"
    logdir.mkdir()
    (logdir / "vng-argv.json").write_text(json.dumps(["vng", "--run", f"k{cmd}"]))
    return RunResult(
        kernel=KernelInfo(f"debian:6.12{cmd}", f"6.12\r{cmd}", f"/k{cmd}", {f"p{cmd}": cmd}),
        environment=Environment(accel="tcg", qemu_version=f"7.2{cmd}"),
        topology=f"default{cmd}",
        plan="quick",
        steps=(StepResult(f"fio/x{cmd}", "fio", "pass", details={"fio_argv": ["fio", cmd]}),),
        console_log=str(logdir / "console.log"),
    )


def test_reproducer_keeps_hostile_newlines_inside_comments(tmp_path: Path) -> None:
    mark = tmp_path / "ran"
    run = _hostile_run(tmp_path, mark)
    comparison = Comparison(f"base{chr(10)}touch {mark}", "cand", (run,), (run,), (), ())
    text = render_reproducer(["ab", "--base", f"x\ntouch {mark}"], comparison)
    head = text.split("set -euo pipefail")[0].splitlines()
    assert all(line.startswith("#") for line in head), head
    script = tmp_path / "reproduce.sh"
    script.write_text(text)
    env = {**os.environ, "HARNESS_PYTHON": "true", "HARNESS_ROOT": str(tmp_path)}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not mark.exists(), "a value from results.json ran as a command"


def test_comment_safe_escapes_only_what_is_not_printable() -> None:
    assert comment_safe("# a\nb\rc\x1b[0m\u2028d") == "# a\\nb\\rc\\x1b[0m\\u2028d"
    assert comment_safe("# 6.12.1+deb12 ~bpo é\tx") == "# 6.12.1+deb12 ~bpo é\tx"
