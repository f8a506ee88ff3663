"""Fast tier of `harness backport`: lint, argument and request checks, the table cells and
writers, exit codes, and the apply stage on a real tiny git: base (real git am)."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import backport as cli
from harness.cli.main import main
from harness.errors import UserError
from harness.kernel.apply import apply_on
from harness.kernel.series import load_series, parse_patches
from harness.workflows.backport import report as backport_report
from harness.workflows.backport.lint import lint_series
from harness.workflows.backport.model import BaseResult
from harness.workflows.backport.workflow import BackportRequest, check_base, slug

SERIES = Path(__file__).parents[1] / "data" / "series"
ENV = ["-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "commit.gpgsign=false"]


def mail(subject: str, body: str) -> str:
    return (
        f"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        f"From: T <t@localhost>\nSubject: {subject}\n\n{body}\n---\n"
        "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"
    )


def test_lint_lists_patches_without_upstream_commit_or_fixes() -> None:
    patches = parse_patches(
        mail("[PATCH 1/3] a", "commit 0123456789abcdef0123456789abcdef01234567 upstream.\n")
        + mail("[PATCH 2/3] b", 'Fixes: 0123456789ab ("x")\nSigned-off-by: T\n')
        + mail("[PATCH 3/3] c", "Mentions commit 0123456 in passing.\nSigned-off-by: T\n")
    )
    assert [(w.patch, w.subject) for w in lint_series(patches)] == [(3, "[PATCH 3/3] c")]


def test_lint_on_the_stand_in_series_flags_patch_2() -> None:
    warnings = lint_series(load_series(str(SERIES / "backport-standin.mbox")).patches)
    assert [w.patch for w in warnings] == [2]


def test_pairs_split_at_the_last_equals_sign() -> None:
    assert cli.pair("git:/l@v6.1+config=debug=/p.mbox", "series-for") == (
        "git:/l@v6.1+config=debug",
        "/p.mbox",
    )
    assert cli.stop_pair("apply") == ("*", "apply")
    with pytest.raises(UserError, match="BASE=VALUE"):
        cli.pair("nobase", "series-for")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bases": ("debian:6.12",)}, "built from source"),
        ({"bases": ("src:debian:linux-source-6.12+series=/x",)}, "carries \\+series="),
        ({"series_for": (("git:/other@v1", "/x"),)}, "not one of the --base"),
        ({"stop_after": (("*", "boot"),)}, "STAGE one of apply, build, ab"),
        ({"reps": 0}, "at least 1"),
        ({"bases": ()}, "at least one --base"),
    ],
)
def test_bad_requests_are_one_line_user_errors(kwargs, match, tmp_path: Path) -> None:
    args = {"series": "/x", "bases": ("git:/l@v1",), "out_dir": tmp_path, **kwargs}
    with pytest.raises(UserError, match=match):
        BackportRequest(**args)


def test_cli_usage_errors_exit_2(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "o")
    assert main(["backport", "--series", "/no/such.mbox", "--base", "debian:6.12"]) == 2
    assert "built from source" in capsys.readouterr().err
    rc = main(["backport", "--series", "/no/such.mbox", "--base", "src:/nowhere", "--out", out])
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_slug_is_a_safe_directory_name() -> None:
    assert slug(2, "git:/srv/linux@v6.18+config=debug") == "2-git-srv-linux-v6.18-config-debug"
    check_base("src:/tree")  # a plain source directory is a base too


@pytest.fixture
def git_base(tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    """A git tree whose f.c differs from what the stand-in-like series expects at patch 2
    (the apply worktree goes into a cache of the test's own)."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    repo = tmp_path / "tree"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f.c").write_text("".join(f"\tline {i}\n" for i in range(1, 40)))
    subprocess.run(["git", "-C", str(repo), *ENV, "add", "f.c"], check=True)
    subprocess.run(["git", "-C", str(repo), *ENV, "commit", "-qm", "base"], check=True)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return repo, head


def series_file(tmp_path: Path, second_old: str) -> Path:
    def patch(n: int, old: str, new: str) -> str:
        return (
            f"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            f"From: T <t@localhost>\nSubject: [PATCH {n}/2] change {n}\n\nFixes: 0123456789ab\n"
            f"---\ndiff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -{n * 10},3 +{n * 10},3 @@\n"
            f" \tline {n * 10}\n-\t{old}\n+\t{new}\n \tline {n * 10 + 2}\n"
        )

    path = tmp_path / "s.mbox"
    path.write_text(patch(1, "line 11", "line 11 x") + patch(2, second_old, "line 21 x"))
    return path


def test_apply_on_a_git_base_reports_patch_two(git_base, tmp_path: Path) -> None:
    repo, head = git_base
    series = load_series(str(series_file(tmp_path, "line 21 in another tree")))
    report = apply_on(repo, head, (), series, f"git:{repo}@HEAD")
    assert (report.status, report.applied, report.total) == ("conflict", 1, 2)
    assert report.conflict is not None and report.conflict.index == 2
    assert report.conflict.conflicts[0].file == "f.c"
    # the user's tree is untouched: the apply ran in the harness's own worktree
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert status == ""
    clean = apply_on(repo, head, (), load_series(str(series_file(tmp_path, "line 21"))), "b")
    assert (clean.status, clean.applied, clean.head != head) == ("applied", 2, True)


def test_writers_and_exit_codes_from_rows(git_base, tmp_path: Path) -> None:
    repo, head = git_base
    series = load_series(str(series_file(tmp_path, "line 21 elsewhere")))
    report = apply_on(repo, head, (), series, "git:t@HEAD")
    bad = BaseResult(
        "git:t@HEAD",
        series.source,
        False,
        report,
        verdict="conflict",
        summary="conflict in patch 2",
    )
    good = BaseResult("git:u@HEAD", series.source, True, None, verdict="stopped")
    out = tmp_path / "out"
    backport_report.write_all(out, [bad, good])
    doc = json.loads((out / "backport.json").read_text())
    stable = doc["bases"][0]
    assert {k: stable[k] for k in ("base", "series", "build", "boot", "verdict")} == {
        "base": "git:t@HEAD",
        "series": series.source,
        "build": "skipped",
        "boot": "skipped",
        "verdict": "conflict",
    }
    conflict = stable["apply"]["conflict"]
    assert {k: conflict[k] for k in ("patch", "file", "subject")} == {
        "patch": 2,
        "file": "f.c",
        "subject": "[PATCH 2/2] change 2",
    }
    assert stable["checks"]["new_failures"] == []
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["git:t@HEAD", "git:u@HEAD"]
    assert "1/2 conflict in patch 2: f.c" in (out / "backport.md").read_text()
    assert cli.exit_code((bad, good)) == 1
    assert cli.exit_code((good,)) == 0
    infra = BaseResult("x", "s", False, None, verdict="infra-error")
    assert cli.exit_code((good, infra)) == 2


def test_plain_source_directory_base_applies_in_its_snapshot(tmp_path: Path, monkeypatch) -> None:
    """src:DIR: the directory is snapshotted (untouched) and the series applied there."""
    from harness.kernel.apply import check_apply

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    tree = tmp_path / "linux"
    tree.mkdir()
    (tree / "Makefile").write_text("all:\n")
    (tree / "Kconfig").write_text("")
    (tree / "f.c").write_text("".join(f"\tline {i}\n" for i in range(1, 40)))
    series = load_series(str(series_file(tmp_path, "line 21")))
    report = check_apply(f"src:{tree}", series)
    assert (report.status, report.applied, report.total) == ("applied", 2, 2)
    assert "line 11 x" not in (tree / "f.c").read_text()
