"""The package installs and works non-editable: a wheel built from this checkout, installed
into a fresh venv outside it, lists the suite and runs a cut of the default job under TCG
from there (the guest agent and the kconfig fragments come from the wheel, not from the
checkout): one of its fio rows and its three checks, what the package must carry, without
its other nine rows (tests/vm/test_integration_vm.py runs those)."""

from __future__ import annotations

import json
import marshal
import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness.paths import cache_dir
from harness.suite.plans import PLANS

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], cwd: Path, timeout: float, env: dict | None = None):
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp), str(ROOT)],
        tmp,
        600,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(tmp.glob("kernel_harness-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "harness_guest/agent.py" in names and "harness_kconfigs/base.config" in names
    assert "harness/cli/main.py" in names
    venv = tmp / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)], tmp, 300).returncode == 0
    installed = _run([str(venv / "bin/pip"), "install", "-q", str(wheel)], tmp, 1200)
    assert installed.returncode == 0, installed.stderr[-2000:]
    return venv


def test_installed_harness_lists_the_suite(venv: Path, tmp_path: Path) -> None:
    listed = _run([str(venv / "bin/harness"), "list", "plans"], tmp_path, 120)
    assert listed.returncode == 0, listed.stderr
    assert "quick" in listed.stdout and "loop" in listed.stdout


def test_installed_harness_runs_the_quick_plans_row_and_checks(venv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan = tmp_path / "plan.json"
    quick = PLANS["quick"]
    one_row = [{"workloads": ["randread-4k"], "targets": ["loop-dio-on-xfs"]}]
    plan.write_text(json.dumps({**quick, "name": "quick-one-row", "fio": one_row}))
    # The Debian kernel cache is shared with the checkout's so the test does not download it
    # again; everything else (agent, fragments, vng) comes from the installed venv.
    env = {
        **os.environ,
        "HARNESS_CACHE_DIR": str(cache_dir()),
        "PATH": f"{venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
    }
    argv = [str(venv / "bin/harness"), "run", "--plan", str(plan), "--out", str(out)]
    done = _run(argv, tmp_path, 1500, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    run = results["runs"][0]
    assert run["kernel"]["spec"] == "debian:6.12"
    assert all(s["status"] == "pass" for s in run["steps"]), run["steps"]
    kinds = [s["kind"] for s in run["steps"]]
    assert kinds.count("fio") == 1 and kinds.count("check") == len(quick["checks"]), kinds
    argv = json.loads(next(out.glob("*/vng-argv.json")).read_text())
    # python3 -S -E LAUNCHER ...: the launcher's bundle holds the agent compiled from the
    # installed package (its code names its source), not from the checkout
    launcher = Path(shlex.split(argv[argv.index("--exec") + 1])[3])
    modules = marshal.loads(launcher.with_suffix(".bundle").read_bytes())
    agent = modules["guest.agent"][1]
    assert str(venv) in agent and str(ROOT) not in agent, agent
    assert (out / "junit.xml").is_file()
