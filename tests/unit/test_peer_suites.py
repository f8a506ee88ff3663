"""Peer suites (blktests, fstests) as plan steps: the --suite shorthand, the expansion into one
step per suite test, known-failure lists, and the guest's reading of what the suites wrote
(tests/data/peer/: result files recorded from real runs in a Debian 6.12 TCG guest)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from guest import peer as gpeer
from harness.errors import UserError
from harness.report.junit import step_case
from harness.results.compare import compare
from harness.results.model import Environment, KernelInfo, RunResult, StepResult
from harness.run import peer as rpeer
from harness.run.request import RunRequest
from harness.suite import peer
from harness.suite.plan import Plan, Step
from harness.workflows.ab.report import render_markdown, suite_changes
from tests.conftest import junit_xsd

DATA = Path(__file__).parents[1] / "data" / "peer"
DISKS = (
    {"name": "nvme0", "bus": "nvme", "serial": "HNVME0"},
    {"name": "scsi0", "bus": "scsi", "serial": "HSCSI0"},
)


def fake_blktests(root: Path) -> Path:
    for name in ("001", "001.out", "002", "002.out", "rc"):
        (root / "tests" / "loop").mkdir(parents=True, exist_ok=True)
        (root / "tests" / "loop" / name).write_text("")
    (root / "check").write_text("#!/bin/bash\n")
    return root


def fake_fstests(root: Path) -> Path:
    for folder, lines in (
        ("ext4", ["032 auto quick resize", "033 auto resize"]),
        ("generic", ["001 rw dir udf auto quick"]),
    ):
        (root / "tests" / folder).mkdir(parents=True)
        (root / "tests" / folder / "group.list").write_text("# generated\n" + "\n".join(lines))
        for line in lines:
            (root / "tests" / folder / line.split()[0]).write_text("")
    (root / "check").write_text("#!/bin/bash\n")
    return root


def test_suite_shorthand_parses_path_selection_and_options(tmp_path):
    spec = peer.parse_suite(
        f"fstests:{tmp_path}@ext4/032,generic/001:fstype=xfs:timeout=90:budget=600:expunge=/x/known"
    )
    assert spec.suite == peer.PeerSuite.FSTESTS and spec.path == tmp_path
    assert spec.selection == ("ext4/032", "generic/001")
    assert (spec.fstype, spec.test_timeout_s, spec.budget_s) == ("xfs", 90, 600)
    assert spec.expunge == Path("/x/known")
    assert peer.parse_suite(f"blktests:{tmp_path}@loop").selection == ("loop",)


@pytest.mark.parametrize(
    "text",
    [
        "blktests",
        "blk:/p@loop",
        "blktests:/p",
        "blktests:/p@",
        "blktests:/p@loop:fstype=btrfs",
        "blktests:/p@loop:timeout=0",
        "blktests:/p@loop:colour=red",
        "blktests:/p@../etc",
    ],
)
def test_bad_suite_shorthand_is_a_usage_error(text):
    with pytest.raises(UserError):
        peer.parse_suite(text)


def test_groups_expand_to_the_suites_tests(tmp_path):
    blk = fake_blktests(tmp_path / "b")
    spec = peer.parse_suite(f"blktests:{blk}@loop,loop/001")
    assert peer.expand(spec, blk) == ["loop/001", "loop/002"]  # each once, .out and rc left out
    fst = fake_fstests(tmp_path / "f")
    spec = peer.parse_suite(f"fstests:{fst}@quick,ext4/033")
    assert peer.expand(spec, fst) == ["ext4/032", "generic/001", "ext4/033"]
    with pytest.raises(UserError, match="no test loop/099"):
        peer.expand(peer.parse_suite(f"blktests:{blk}@loop/099"), blk)


def add_tests(root: Path, tests: list[str]) -> Path:
    """The named suite tests (and their .out files) in a fake tree."""
    for test in tests:
        (root / "tests" / test).parent.mkdir(parents=True, exist_ok=True)
        for name in (test, test + ".out"):
            (root / "tests" / name).write_text("")
    return root


def curated_tests(suite: str, fstype: str = "ext4") -> list[str]:
    return [i for i in peer.curated(suite, fstype).items if "/" in i]


def test_the_curated_blktests_selection_is_the_loop_group_and_listed_block_tests(tmp_path):
    blk = add_tests(fake_blktests(tmp_path / "b"), curated_tests("blktests"))
    spec = peer.parse_suite(f"blktests:{blk}@harness-quick")
    tests = peer.expand(spec, blk)
    assert tests == ["loop/001", "loop/002", *curated_tests("blktests")]
    assert all(t.startswith(("loop/", "block/")) for t in tests)
    chosen = peer.curated("blktests")
    assert (spec.test_timeout_s, spec.budget_s) == (chosen.test_timeout_s, chosen.budget_s)


@pytest.mark.parametrize("fstype", peer.FSTYPES)
def test_the_curated_fstests_list_depends_on_the_filesystem(tmp_path, fstype):
    fst = fake_fstests(tmp_path / "f")
    add_tests(fst, curated_tests("fstests", "ext4") + curated_tests("fstests", "xfs"))
    spec = peer.parse_suite(f"fstests:{fst}@harness-quick:fstype={fstype}")
    tests = peer.expand(spec, fst)
    assert tests == curated_tests("fstests", fstype)
    # the filesystem's own tests only on it: ext4/032 (resize) on ext4, growfs on XFS
    assert {t.split("/")[0] for t in tests} == {"generic", fstype}
    assert ("ext4/032" in tests) == (fstype == "ext4")
    chosen = peer.curated("fstests", fstype)
    assert (spec.test_timeout_s, spec.budget_s) == (chosen.test_timeout_s, chosen.budget_s)


def test_options_override_the_curated_limits_and_the_text_reads_back(tmp_path):
    fst = fake_fstests(tmp_path / "f")
    spec = peer.parse_suite(f"fstests:{fst}@harness-quick,generic/001:fstype=xfs:budget=60")
    assert (
        spec.budget_s == 60 and spec.test_timeout_s == peer.curated("fstests", "xfs").test_timeout_s
    )
    assert peer.parse_suite(peer.suite_text(spec)) == spec
    plain = peer.parse_suite(f"fstests:{fst}@quick")
    assert (plain.test_timeout_s, plain.budget_s) == (
        peer.DEFAULT_TEST_TIMEOUT_S,
        peer.DEFAULT_BUDGET_S,
    )


def test_a_curated_test_the_checkout_lacks_is_left_out_with_a_warning(tmp_path, caplog):
    fst = fake_fstests(tmp_path / "f")  # has generic/001 and ext4/032 only
    spec = peer.parse_suite(f"fstests:{fst}@harness-quick,generic/001")
    assert peer.expand(spec, fst) == ["ext4/032", "generic/001"]
    assert "has no generic/" in caplog.text


def test_curated_selections_are_valid_names_and_unlike_any_group():
    for (suite, fstype), chosen in peer.CURATED_SELECTIONS.items():
        text = f"{suite}:/p@{','.join(chosen.items)}" + f":fstype={fstype}" * bool(fstype)
        assert peer.parse_suite(text).selection == chosen.items
        assert len(set(chosen.items)) == len(chosen.items)
        assert chosen.test_timeout_s <= chosen.budget_s
    assert "-" in peer.CURATED  # fstests groups are words, blktests groups folder names


def test_one_step_per_test_with_disks_timeouts_and_known_failures(tmp_path):
    fst = fake_fstests(tmp_path / "f")
    known = tmp_path / "known"
    known.mkdir()
    (known / "6.12").write_text("# fails on 6.12\next4/033  # jbd2 BUG on resize\n")
    spec = peer.parse_suite(f"fstests:{fst}@ext4/032,ext4/033:timeout=100:expunge={known}")
    steps = peer.suite_steps(
        spec, fst, ["ext4/032", "ext4/033"], list(DISKS), "6.12.118+deb12-amd64"
    )
    assert [s["id"] for s in steps] == ["fstests/ext4/032", "fstests/ext4/033"]
    first = steps[0]
    assert first["kind"] == "suite" and first["timeout_s"] == 100 + peer.SETUP_MARGIN_S
    assert first["params"]["test_disk"] == "nvme0" and first["params"]["scratch_disk"] == "scsi0"
    assert "known_failure" not in first["params"]
    assert steps[1]["params"]["known_failure"] == "jbd2 BUG on resize (6.12)"
    with pytest.raises(UserError, match="two disks"):
        peer.suite_steps(spec, fst, ["ext4/032"], list(DISKS[:1]), "6.12")


def test_expunge_file_is_chosen_by_release_then_major_minor(tmp_path):
    (tmp_path / "6.12").write_text("loop/004\n")
    (tmp_path / "6.12.118+deb12-amd64").write_text("loop/005 # exact\n")
    assert peer.expunge_file(tmp_path, "6.12.118+deb12-amd64").name == "6.12.118+deb12-amd64"
    assert peer.expunge_file(tmp_path, "6.12.1").name == "6.12"
    assert peer.expunge_file(tmp_path, "6.6.1") is None
    assert peer.parse_expunge("loop/005 # exact\n\n# only a comment\nloop/006\n") == {
        "loop/005": "exact",
        "loop/006": "listed",
    }


def test_suites_follow_the_plans_steps_and_shard_by_test(tmp_path):
    blk = fake_blktests(tmp_path / "b")
    fio = Step("fio/raw-nvme0/randread-4k", "fio", 60, {"name": "raw-nvme0"}, workload={})
    plan = Plan("quick", "vm", "/tmp/w", DISKS, (fio,))
    spec = peer.parse_suite(f"blktests:{blk}@loop")
    full = rpeer.with_suites(plan, (spec,), "6.12", build_suite=lambda s: blk)
    assert [s.id for s in full.steps] == [fio.id, "blktests/loop/001", "blktests/loop/002"]
    assert full.name == "quick+blktests"
    assert Plan.from_dict(full.to_dict()) == full
    assert [len(g) for g in full.groups()] == [1, 1, 1]  # a suite's tests are cut apart
    with pytest.raises(UserError, match="twice"):
        rpeer.with_suites(plan, (spec, spec), "6.12", build_suite=lambda s: blk)


def test_build_commands_copy_without_git_and_make():
    argv = rpeer.rsync_argv(Path("/src/blktests"), Path("/c/b"))
    assert argv == [
        "rsync",
        "-a",
        "--delete",
        "--chmod=u+w",
        "--exclude=.git",
        "/src/blktests/",
        "/c/b/",
    ]
    assert rpeer.make_argv(2) == ["make", "-j2"]


def test_fingerprint_changes_when_the_checkout_does(tmp_path):
    blk = fake_blktests(tmp_path)
    before = rpeer.fingerprint(blk)
    (blk / ".git").mkdir()
    (blk / ".git" / "HEAD").write_text("x")
    assert rpeer.fingerprint(blk) == before  # .git is not the suite
    (blk / "tests" / "loop" / "002").write_text("echo changed\n")
    assert rpeer.fingerprint(blk) != before


def test_request_carries_suites_and_no_plan_means_none():
    req = RunRequest("debian:6.12", Path("/o"), plan="none", suites=("blktests:/p@loop",))
    assert RunRequest.from_dict(req.to_dict()) == req


def test_guest_configuration_files():
    assert gpeer.blktests_config([]) == "TEST_DEVS=()\n"
    text = gpeer.fstests_config({"fstype": "xfs"}, "/dev/nvme0n1", "/dev/sda", "/tmp/w/peer/f")
    assert "export FSTYP=xfs\n" in text and "export SCRATCH_DEV=/dev/sda\n" in text
    assert "export TEST_DIR=/tmp/w/peer/f/mnt/test\n" in text
    assert gpeer.mkfs_argv("xfs", "/dev/x") == ["mkfs.xfs", "-f", "-q", "/dev/x"]
    assert gpeer.mkfs_argv("ext4", "/dev/x") == ["mkfs.ext4", "-F", "-q", "/dev/x"]
    assert gpeer.check_argv("fstests", "ext4/032") == ["./check", "-R", "xunit", "ext4/032"]
    assert gpeer.check_argv("blktests", "loop/004") == ["./check", "loop/004"]


def test_judging_and_known_failures():
    assert gpeer.judge({"status": "pass"}, 0, 60, "", "loop/001").status == "pass"
    skip = gpeer.judge({"status": "not run", "reason": "sfdisk is not installed"}, 0, 60, "", "t")
    assert (skip.status, skip.message) == ("skip", "not run: sfdisk is not installed")
    fail = gpeer.judge({"status": "fail", "reason": "output"}, 1, 60, "", "loop/004")
    assert fail.status == "fail" and "output" in fail.message
    hung = gpeer.judge({}, None, 60, "", "loop/004")
    assert hung.status == "fail" and "60s" in hung.message
    assert gpeer.judge({}, 1, 60, "boom", "loop/004").status == "error"
    known = gpeer.known(fail, "jbd2 BUG (6.12)")
    assert known.status == "xfail" and "known failure (jbd2 BUG (6.12))" in known.message
    now = gpeer.known(gpeer.judge({"status": "pass"}, 0, 60, "", "t"), "old bug")
    assert now.status == "pass" and "passes now" in now.message
    assert now.details["known_now_passes"] is True


def test_budget_counts_from_the_suites_first_test(monkeypatch):
    monkeypatch.setattr(gpeer, "_started", {})
    params = {"suite": "blktests", "budget_s": 100}
    assert gpeer.budget_left(params, 1000.0) == 100
    assert gpeer.budget_left(params, 1060.0) == 40
    assert gpeer.budget_left(params, 1101.0) < 0


def test_a_failed_suite_test_is_a_junit_failure_with_diff_and_dmesg():
    step = StepResult(
        "blktests/loop/004",
        "suite",
        "fail",
        "loop/004 failed (output)",
        3.5,
        details={"diff": "-ok\n+bad", "dmesg": "loop0: capacity change"},
    )
    case = step_case(step, "k.default")
    assert case.name == "blktests/loop/004" and case.elapsed_sec == 3.5
    assert "-ok\n+bad" in case.failures[0]["output"]
    assert "loop0: capacity change" in case.failures[0]["output"]


def _run(status: str, spec: str) -> RunResult:
    steps = (
        StepResult("blktests/loop/004", "suite", status),
        StepResult("blktests/loop/005", "suite", "pass"),
    )
    env = Environment(accel="tcg", qemu_version="7.2", host_fs="ext4", cpus=2)
    return RunResult(
        KernelInfo(spec), environment=env, topology="default", plan="none", steps=steps
    )


def test_ab_flags_a_new_failure_and_a_new_pass():
    c = compare([_run("pass", "base")], [_run("fail", "cand")])
    assert [(s.step_id, s.verdict) for s in c.statuses if s.kind == "suite"] == [
        ("blktests/loop/004", "regression")
    ]
    c = compare([_run("fail", "base")], [_run("pass", "cand")])
    assert [(s.step_id, s.verdict) for s in c.statuses if s.kind == "suite"] == [
        ("blktests/loop/004", "fixed")
    ]
    assert suite_changes(c) == ([], ["blktests/loop/004"])
    assert "- new pass: blktests/loop/004" in render_markdown(c)


def test_a_splat_during_a_passing_suite_test_is_a_kernel_failure_naming_it():
    from harness.results.model import Splat
    from harness.run.assemble import assemble
    from harness.verdict import KERNEL_FAILURE, judge

    planned = [
        Step.from_dict(
            {
                "id": f"blktests/loop/00{n}",
                "kind": "suite",
                "timeout_s": 60,
                "target": {"name": "blktests"},
                "params": {},
            }
        )
        for n in (3, 4)
    ]
    records = [{"id": s.id, "kind": "suite", "status": "pass"} for s in planned]
    warning = Splat(
        "warning",
        "WARNING: CPU: 0 PID: 901 at drivers/block/loop.c:1024",
        812,
        "WARNING: CPU: 0 PID: 901 at drivers/block/loop.c:1024 loop_configure",
    )
    steps = assemble(planned, records, "done", None, [warning], ["blktests/loop/004"])
    assert [s.status for s in steps] == ["pass", "fail"]
    env = Environment(accel="tcg", qemu_version="7.2", host_fs="ext4", cpus=2)
    run = RunResult(
        KernelInfo("debian:6.12"),
        environment=env,
        topology="default",
        plan="none",
        steps=tuple(steps),
        splats=(warning,),
    )
    verdict = judge(run)
    assert verdict.cls == KERNEL_FAILURE and verdict.step == "blktests/loop/004"


def test_kcidb_path_of_a_suite_test_is_the_suites_own():
    from harness.report.kcidb import PEER_SUITES, path_of

    assert path_of("blktests/loop/004") == "blktests.loop.004"
    assert path_of("fstests/ext4/032") == "fstests.ext4.032"
    assert path_of("check/sparse/loop-dio-on-xfs").startswith("harness.check.")
    assert set(PEER_SUITES) == {str(s) for s in peer.PeerSuite}


def test_a_plan_with_suites_keeps_the_real_udev(tmp_path):
    blk = fake_blktests(tmp_path / "b")
    plan = Plan("none", "vm", "/tmp/w", DISKS, ())
    assert not plan.real_udev
    spec = peer.parse_suite(f"blktests:{blk}@loop/001")
    assert rpeer.with_suites(plan, (spec,), "6.12", build_suite=lambda s: blk).real_udev


def _results_copy(tmp_path: Path) -> Path:
    """The recorded blktests files laid out as ./check -o RESULTS left them."""
    import shutil

    results = tmp_path / "results"
    shutil.copytree(DATA / "blktests", results)
    return results


def test_recorded_blktests_result_files_are_read(tmp_path):
    results = _results_copy(tmp_path)
    fields = gpeer.result_fields("blktests", str(results), "loop/004", "")
    assert fields["status"] == "pass" and fields["runtime"] == "31.682s"
    failed = gpeer.result_fields("blktests", str(results), "loop/013", "")
    assert (failed["status"], failed["reason"]) == ("fail", "output")
    files = gpeer.result_files("blktests", str(results), "loop/013")
    assert [Path(f).name for f in files] == ["013", "013.full", "013.out.bad"]
    golden = tmp_path / "013.out"
    golden.write_text("Running loop/013\nTest complete\n")
    diff = gpeer.out_diff(str(golden), files[2], str(tmp_path))
    assert diff.startswith("--- 013.out\n+++ results/nodev/loop/013.out.bad\n")
    assert "+Partition still exists after loop device reuse" in diff
    assert " Running loop/013" in diff
    assert gpeer.result_fields("blktests", str(results), "loop/099", "") == {}


def test_recorded_check_output_gives_the_suites_skip_reason():
    output = (DATA / "blktests-output" / "loop-012.txt").read_text()
    assert gpeer.blktests_skip_reasons(output) == ["systemd version is older than 259"]
    fields = gpeer.result_fields("blktests", "/nonexistent", "loop/012", output)
    assert fields == {"status": "not run", "reason": "systemd version is older than 259"}


def test_blktests_choking_on_debians_release_is_a_suite_quirk_not_a_failure():
    output = (DATA / "blktests-output" / "loop-010.txt").read_text()
    outcome = gpeer.judge({}, 1, 600, output, "loop/010")
    assert outcome.status == "skip" and outcome.details == {"suite_quirk": True}
    assert "cannot parse this kernel's release" in outcome.message
    assert "118deb12" in outcome.message
    assert gpeer.judge({}, 1, 600, "./check: line 3: oops", "loop/010").status == "error"


def test_suite_junit_validates_against_the_jenkins_schema(tmp_path):
    import xml.etree.ElementTree as ET

    import xmlschema

    from harness.report.junit import write_junit

    steps = (
        StepResult("blktests/loop/001", "suite", "pass", "", 7.2),
        StepResult(
            "blktests/loop/012", "suite", "skip", "not run: systemd version is older than 259", 3.4
        ),
        StepResult(
            "blktests/loop/013",
            "suite",
            "fail",
            "loop/013 failed (output)",
            9.3,
            details={"diff": "+Partition still exists", "dmesg": "loop0: p1"},
        ),
        StepResult("fstests/ext4/033", "suite", "xfail", "known failure (x): ...", 2.0),
    )
    env = Environment(accel="tcg", qemu_version="7.2", host_fs="ext4", cpus=2)
    run = RunResult(
        KernelInfo("debian:6.12", release="6.12.118+deb12-amd64"),
        environment=env,
        topology="default",
        plan="none",
        steps=steps,
    )
    path = tmp_path / "junit.xml"
    write_junit(path, [run])
    xmlschema.XMLSchema(str(junit_xsd())).validate(path.read_text())
    cases = {c.get("name"): c for c in ET.parse(path).getroot().iter("testcase")}
    assert cases["blktests/loop/012"].find("skipped").get("message").startswith("not run: ")
    assert "+Partition still exists" in cases["blktests/loop/013"].find("failure").text
    assert cases["fstests/ext4/033"].find("failure") is None


def test_the_guest_gets_the_build_as_one_tar(tmp_path):
    argv = rpeer.tar_argv(Path("/c/fstests-1"), Path("/c/fstests-1.tar"))
    assert argv[:3] == ["tar", "-cf", "/c/fstests-1.tar"] and argv[-3:] == [
        "-C",
        "/c/fstests-1",
        ".",
    ]
    assert "--exclude=*.o" in argv and "--exclude=.git" in argv
    assert gpeer.unpack_argv("/c/fstests-1.tar", "/w/suite") == [
        "tar",
        "-xf",
        "/c/fstests-1.tar",
        "-C",
        "/w/suite",
    ]
    blk = fake_blktests(tmp_path / "b")
    spec = peer.parse_suite(f"blktests:{blk}@loop/001")
    step = peer.suite_steps(spec, tmp_path / "blktests-x", ["loop/001"], [], "6.12")[0]
    assert step["params"]["src"] == str(tmp_path / "blktests-x.tar")


def test_a_tests_timeout_ends_inside_the_budget_and_before_the_step_alarm():
    step = {"timeout_s": 780, "params": {"test_timeout_s": 600}}
    assert gpeer.check_timeout(step, 3600, 5) == 600
    assert gpeer.check_timeout(step, 100, 5) == 100  # the budget's rest
    # a slow first-test setup (4.5 min unpacking) leaves less than the test's own 600 s
    assert gpeer.check_timeout(step, 3600, 270) == 780 - 270 - gpeer.ALARM_SLACK_S


def test_host_mode_refuses_suites_rather_than_dropping_them(tmp_path):
    from harness.run.host import HostExecutor

    req = RunRequest(
        "host", tmp_path / "o", plan="none", scratch=tmp_path, suites=("blktests:/p@loop",)
    )
    with pytest.raises(UserError, match="VM guest"):
        HostExecutor().plan(req, None)


def test_recorded_fstests_xunit_report_is_read(tmp_path):
    xml = (DATA / "fstests" / "result-ext4-032.xml").read_text()
    assert gpeer.fstests_result(xml, "ext4/032") == {
        "status": "pass",
        "reason": "",
        "runtime": "511",
    }
    assert gpeer.fstests_result(xml, "ext4/033") == {}
    assert gpeer.fstests_result("<testsuite", "ext4/032") == {}  # torn: no result, no crash
    results = tmp_path / "results"
    (results / "ext4").mkdir(parents=True)
    (results / "result.xml").write_text(xml)
    assert gpeer.result_fields("fstests", str(results), "ext4/032", "")["status"] == "pass"
    (results / "ext4" / "033.notrun").write_text("ext4 resize needs more than 8 GiB\n")
    fields = gpeer.result_fields("fstests", str(results), "ext4/033", "")
    assert fields == {"status": "not run", "reason": "ext4 resize needs more than 8 GiB"}


class _NoKmsg:
    def read(self):
        return []

    def close(self):
        pass


@pytest.mark.parametrize(
    ("budget", "status", "words"),
    [
        (30, "skip", "time budget of 30s ran out during it"),  # the budget cut it short
        (3600, "fail", "did not finish within 60s (per-test timeout)"),  # its own timeout
    ],
)
def test_a_test_cut_by_the_budget_is_not_run_one_past_its_timeout_fails(
    monkeypatch, tmp_path, budget, status, words
):
    from guest.api import Context

    monkeypatch.setattr(gpeer, "_started", {})
    monkeypatch.setattr(gpeer, "prepare", lambda params, ctx: str(tmp_path))
    monkeypatch.setattr(gpeer, "run_check", lambda copy, argv, timeout: (None, ""))
    monkeypatch.setattr(gpeer.probes, "KmsgTail", _NoKmsg)
    step = {
        "timeout_s": 240,
        "params": {
            "suite": "blktests",
            "test": "loop/004",
            "test_timeout_s": 60,
            "budget_s": budget,
        },
    }
    outcome = gpeer.run_test(step, Context(str(tmp_path), "vm", {}, results=str(tmp_path)))
    assert outcome.status == status and words in outcome.message


def test_shard_cuts_a_suite_test_by_test_and_each_job_runs_its_suite(tmp_path):
    from harness.run import shard

    blk = fake_blktests(tmp_path / "b")
    text = f"blktests:{blk}@loop"
    jobs = shard.matrix("none", ["debian:6.12"], 2, "default", (text,), lambda spec: blk)
    assert sorted(s for j in jobs for s in j.steps) == ["blktests/loop/001", "blktests/loop/002"]
    assert all(len(j.steps) == 1 for j in jobs)  # one test each: the suite is not kept whole
    argv = jobs[0].run_argv()
    assert argv[argv.index("--suite") + 1] == text and "--shard" in argv
    assert f"--suite {text}" in shard.gitlab_pipeline(jobs)
    with pytest.raises(UserError, match="2 unit"):
        shard.matrix("none", ["debian:6.12"], 3, "default", (text,), lambda spec: blk)


def test_backport_rows_carry_a_suite_column_with_new_failures(tmp_path):
    from harness.workflows.backport import report as backport_report
    from harness.workflows.backport.model import BaseResult, suite_of, verdict_of

    comparison = compare([_run("pass", "base")], [_run("fail", "cand")])
    suite = suite_of(comparison)
    assert (suite.ran, suite.new_failures, suite.new_passes) == (2, ("blktests/loop/004",), ())
    verdict, summary = verdict_of(comparison)
    assert verdict == "test-failure" and "blktests/loop/004" in summary
    row = BaseResult("src:debian:linux-source-6.12", "s.mbox", False, None, suite=suite)
    row = BaseResult(**{**row.__dict__, "verdict": verdict, "summary": summary})
    backport_report.write_all(tmp_path, [row])
    assert "| 2 tests, new failures: blktests/loop/004 |" in (tmp_path / "backport.md").read_text()
    doc = json.loads((tmp_path / "backport.json").read_text())
    assert doc["bases"][0]["suite"]["new_failures"] == ["blktests/loop/004"]
    case = [
        c for c in ET.parse(tmp_path / "junit.xml").iter("testcase") if c.get("name") == "suite"
    ]
    assert case and case[0].find("failure") is not None


def test_the_guest_mounts_configfs_for_null_blk_only_when_it_is_not_there():
    guest = "proc /proc proc rw 0 0\nsysfs /sys sysfs rw,nosuid 0 0\n"
    assert not gpeer.configfs_mounted(guest)
    assert gpeer.configfs_mounted(guest + "configfs /sys/kernel/config configfs rw,relatime 0 0\n")
    assert not gpeer.configfs_mounted(guest + "configfs /mnt/cfg configfs rw 0 0\n")
