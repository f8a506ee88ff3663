"""The bundled agent VM boots start (harness.vm.agent_bundle): built by the guest's
interpreter, its modules (the guest package and the stdlib it imports) come from the bundle,
it runs a plan like guest/agent.py does, and the cache follows the sources."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.errors import InfraError
from harness.paths import GUEST_DIR
from harness.run.executor import guest_python
from harness.vm import agent_bundle

PYTHON = guest_python()


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return agent_bundle.ensure(PYTHON, GUEST_DIR, tmp_path_factory.mktemp("bundle"))


def _copy_guest(tmp_path: Path) -> Path:
    guest = tmp_path / "guest"
    shutil.copytree(GUEST_DIR, guest, ignore=shutil.ignore_patterns("__pycache__"))
    return guest


# Runs the launcher as the guest does, with an audit hook that logs every file opened.
AUDITED = """
import runpy, sys
log = open(sys.argv.pop(1), "w")
sys.addaudithook(lambda ev, args: ev == "open" and log.write(str(args[0]) + "\\n"))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_agent_runs_a_plan_from_the_bundle(launcher: Path, tmp_path: Path) -> None:
    """The agent runs, and once the bundle is read no guest or stdlib source or bytecode
    file is opened: the bundle's finder served them all."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"mode": "host", "steps": [], "workdir": str(tmp_path / "w")}))
    argv = agent_bundle.bundle_agent_argv(PYTHON, launcher, plan, tmp_path / "res")
    assert argv[1:3] == ("-S", "-E")
    opens = tmp_path / "opens.txt"
    audited = [argv[0], *argv[1:3], "-c", AUDITED, str(opens), *argv[3:]]
    out = subprocess.run(audited, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    events = [
        json.loads(line.split(" ", 1)[1])["event"]
        for line in out.stdout.splitlines()
        if line.startswith("@@HARNESS ")
    ]
    assert events == ["start", "done"]
    assert json.loads((tmp_path / "res" / "agent.json").read_text())["mode"] == "host"
    opened = opens.read_text().splitlines()
    after = opened[opened.index(str(launcher.with_suffix(".bundle"))) + 1 :]
    assert after and not [p for p in after if p.endswith((".py", ".pyc"))], after


def test_traceback_names_the_source(launcher: Path, tmp_path: Path) -> None:
    """Code from the bundle still names its source file (what a developer opens)."""
    out = subprocess.run(
        [
            PYTHON,
            *agent_bundle.PYTHON_FLAGS,
            str(launcher),
            "--plan",
            str(tmp_path / "missing.json"),
            "--results",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert str(GUEST_DIR / "agent.py") in out.stderr, out.stderr


def test_cache_hit_and_new_sources_rebuild(tmp_path: Path) -> None:
    guest = _copy_guest(tmp_path)
    first = agent_bundle.ensure(PYTHON, guest, tmp_path / "c")
    stamp = first.with_suffix(".bundle").stat().st_mtime_ns
    assert agent_bundle.ensure(PYTHON, guest, tmp_path / "c") == first
    assert first.with_suffix(".bundle").stat().st_mtime_ns == stamp
    (guest / "sh.py").write_text((guest / "sh.py").read_text() + "\n# changed\n")
    second = agent_bundle.ensure(PYTHON, guest, tmp_path / "c")
    assert second != first and second.is_file() and second.with_suffix(".bundle").is_file()


def test_guest_source_that_does_not_compile_is_an_infra_error(tmp_path: Path) -> None:
    guest = _copy_guest(tmp_path)
    (guest / "sh.py").write_text("def broken(:\n")
    with pytest.raises(InfraError, match="could not bundle the guest agent.*SyntaxError"):
        agent_bundle.ensure(PYTHON, guest, tmp_path / "c")
    assert not list((tmp_path / "c").glob("*"))  # nothing half-written left behind
