"""The CI files: every GitHub workflow passes actionlint, the tests run in Debian, the
matrix workflow is fed by `harness shard`, and the GitLab example has one JUnit per job."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _actionlint() -> str:
    found = shutil.which("actionlint") or shutil.which(
        "actionlint", path=str(Path(sys.executable).parent)
    )
    if not found:
        pytest.fail("actionlint not installed: pip install -e '.[test]' (or ./bootstrap.sh)")
    return found


def test_every_workflow_passes_actionlint() -> None:
    assert WORKFLOWS, "no workflow files"
    done = subprocess.run(
        [_actionlint(), "-no-color", *map(str, WORKFLOWS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ matrix.nope }}\n"
    )
    done = subprocess.run([_actionlint(), "-no-color", str(bad)], capture_output=True, text=True)
    assert done.returncode == 1 and "matrix" in done.stdout


def test_ci_runs_in_debian_with_kvm_passed_through_when_present() -> None:
    ci = (ROOT / ".github/workflows/ci.yml").read_text()
    assert "image: debian:bookworm" in ci and "/dev/kvm" in ci and ".ci/run" in ci


def test_matrix_workflow_is_fed_by_harness_shard(capsys) -> None:
    text = (ROOT / ".github/workflows/shard-matrix.yml").read_text()
    assert "--format github" in text and "fromJSON(needs.matrix.outputs.matrix)" in text
    assert "harness merge" in text and "report_paths: merged/junit.xml" in text
    assert (
        main(
            [
                "shard",
                "--plan",
                "loop",
                "--kernel",
                "debian:6.12",
                "--shards",
                "4",
                "--format",
                "github",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith('{"include":[')


def test_gitlab_example_has_parallel_matrix_and_a_junit_per_job() -> None:
    text = (ROOT / "docs/gitlab-ci.yml").read_text()
    assert "parallel:\n    matrix:" in text and "junit: out/$CI_JOB_ID/junit.xml" in text
    assert "harness shard" in text and "--format gitlab" in text and "harness merge" in text
