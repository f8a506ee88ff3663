"""JUnit writer: content, Jenkins schema validity (xmlschema) and read-back (junitparser)."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

import junitparser
import pytest
import xmlschema

from harness.report.junit import class_name, junit_xml_text, suite_name, write_junit
from harness.results.model import Environment, KernelInfo, RunResult, Splat, StepResult
from harness.verdict import EMULATOR_ARTEFACT, KERNEL_FAILURE, Verdict
from tests.conftest import junit_xsd

KINDS = (junitparser.Failure, junitparser.Error, junitparser.Skipped)

HUNG = Splat(
    kind="hung_task",
    title="INFO: task dd:301 blocked for more than 5 seconds.",
    line=512,
    excerpt="[   60.1] INFO: task dd:301 blocked for more than 5 seconds.\n"
    "[   60.2] Call Trace:\n[   60.3]  <TASK>\n[   60.4]  </TASK>",
)
PANIC = Splat("panic", "Kernel panic - not syncing: sysrq triggered crash", 511, "[ 29.1] Kernel…")


def _run(**changes) -> RunResult:
    steps = (
        StepResult(
            "fio/raw-nvme0/randread-4k",
            "fio",
            "pass",
            duration_s=6.125,
            target="raw-nvme0",
            workload="randread-4k",
            metrics={"read_iops": 1234.5, "read_clat_p99_us": 900.0},
            details={"fio_argv": ["fio", "--name=x"]},
        ),
        StepResult("check/sparse/loop-dio-on", "check", "fail", "hole punched but 4 MiB stayed"),
        StepResult("fio/loop-dio-on/randwrite", "fio", "error", "fio exited 1: bad option"),
        StepResult("fio/raw-scsi0/randread-4k", "fio", "skip", "disk scsi0 not found"),
        StepResult("check/dm-linear-reflink", "check", "xfail", "static map corrupts clones"),
        StepResult("fio/file-xfs/randwrite", "fio", "pass", duration_s=1e-6, splats=(HUNG,)),
    )
    run = RunResult(
        kernel=KernelInfo(
            spec="debian:6.12",
            release="6.12.111+deb12-amd64",
            image="/c/vmlinuz",
            provenance={"package": "linux-image-6.12.111+deb12-amd64-unsigned"},
        ),
        environment=Environment(
            accel="tcg",
            accel_note="KVM probe failed: /dev/kvm unusable",
            qemu_version="7.2.19",
            fio_version="fio-3.33",
        ),
        topology="default",
        plan="quick",
        steps=steps,
        splats=(HUNG,),
        console_log="out/console-0.log",
        started="2025-11-22T17:00:00",
    )
    return dataclasses.replace(run, **changes)


def _validate(text: str) -> None:
    xmlschema.XMLSchema(str(junit_xsd())).validate(text)


def _cases(text: str) -> dict[str, ET.Element]:
    return {c.get("name"): c for c in ET.fromstring(text).iter("testcase")}


def test_names_carry_kernel_topology_and_repetition():
    assert suite_name(_run()) == "6.12.111+deb12-amd64 (debian:6.12) / default"
    assert suite_name(_run(repetition=2)) == "6.12.111+deb12-amd64 (debian:6.12) / default #2"
    assert class_name(_run()) == "6_12_111+deb12-amd64.default"
    assert class_name(_run(repetition=1)) == "6_12_111+deb12-amd64.default-rep1"


def test_status_mapping():
    cases = _cases(junit_xml_text([_run()]))
    assert [c.tag for c in cases["fio/raw-nvme0/randread-4k"]] == ["system-out"]  # passed
    fail = cases["check/sparse/loop-dio-on"].find("failure")
    assert fail is not None and fail.get("message") == "hole punched but 4 MiB stayed"
    error = cases["fio/loop-dio-on/randwrite"].find("error")
    assert error is not None and error.get("message") == "fio exited 1: bad option"
    skipped = cases["fio/raw-scsi0/randread-4k"].find("skipped")
    assert skipped is not None and skipped.get("message") == "disk scsi0 not found"
    xfail = cases["check/dm-linear-reflink"]
    assert xfail.find("failure") is None and xfail.find("error") is None
    assert "XFAIL (expected failure): static map corrupts clones" in xfail.findtext("system-out")


def test_step_with_splat_fails_with_excerpt():
    case = _cases(junit_xml_text([_run()]))["fio/file-xfs/randwrite"]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == f"kernel hung_task: {HUNG.title}"
    assert "console line 512" in failure.text and HUNG.excerpt in failure.text


def test_metrics_are_json_in_system_out_and_time_is_duration():
    case = _cases(junit_xml_text([_run()]))["fio/raw-nvme0/randread-4k"]
    out = json.loads(case.findtext("system-out"))
    assert out["metrics"] == {"read_iops": 1234.5, "read_clat_p99_us": 900.0}
    assert out["target"] == "raw-nvme0" and out["details"]["fio_argv"] == ["fio", "--name=x"]
    assert case.get("time") == "6.125"
    assert case.get("classname") == "6_12_111+deb12-amd64.default"


def test_suite_properties():
    suite = ET.fromstring(junit_xml_text([_run()])).find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["kernel.release"] == "6.12.111+deb12-amd64"
    assert props["metric.fio/raw-nvme0/randread-4k.read_iops"] == "1234.5"
    assert props["metric.fio/raw-nvme0/randread-4k.read_clat_p99_us"] == "900"
    assert props["kernel.spec"] == "debian:6.12"
    assert props["kernel.provenance.package"] == "linux-image-6.12.111+deb12-amd64-unsigned"
    assert props["accel"] == "tcg" and props["accel_note"].startswith("KVM probe failed")
    assert props["qemu_version"] == "7.2.19" and props["fio_version"] == "fio-3.33"
    assert props["topology"] == "default" and props["plan"] == "quick"
    assert suite.get("timestamp") == "2025-11-22T17:00:00"


def test_splat_outside_steps_gets_a_console_case():
    run = _run(splats=(HUNG, PANIC))
    cases = _cases(junit_xml_text([run]))
    failure = cases["console"].find("failure")
    assert failure is not None and failure.get("message") == f"kernel panic: {PANIC.title}"
    # the hung task is already reported by its step, not twice
    assert "hung_task" not in failure.text


def test_boot_panic_is_one_failure_case_with_the_excerpt():
    # A panic is the kernel's verdict, not the infrastructure's: <failure>, never <error>.
    run = _run(steps=(), splats=(PANIC,), stop_reason="panic")
    text = junit_xml_text([run])
    _validate(text)
    (case,) = _cases(text).values()
    assert case.find("error") is None
    failure = case.find("failure")
    assert failure.get("message") == f"kernel panic: {PANIC.title}"
    assert PANIC.excerpt in failure.text


def test_guest_unresponsive_twice_fails_the_step_it_hung_in():
    step = StepResult("fio/loop/randwrite", "fio", "error", "the guest stopped answering")
    verdict = Verdict(
        KERNEL_FAILURE,
        "guest unresponsive in fio/loop/randwrite twice",
        "fio/loop/randwrite",
        attempts=2,
    )
    run = _run(steps=(step,), splats=(), stop_reason="unresponsive", verdict=verdict.to_dict())
    case = _cases(junit_xml_text([run]))["fio/loop/randwrite"]
    assert case.find("error") is None
    assert case.find("failure").get("message") == verdict.summary


def test_emulator_artefact_is_an_error_case_with_excerpt_and_log():
    """A run that ended as an artefact (a lost NVMe I/O that came back on the retry) is an
    error case with its evidence; the first attempt goes into the suite's properties."""
    artefact = {
        "summary": "emulator artefact under TCG (tcg-round-robin-lost-io): nvme I/O",
        "excerpt": "nvme nvme0: I/O tag 128 (9080) opcode 0x2 (I/O Cmd) QID 1 timeout",
        "console_log": "out/console.attempt1.log",
        "signature": "x",
    }
    verdict = Verdict(
        EMULATOR_ARTEFACT,
        artefact["summary"] + " (came back on retry)",
        evidence="nvme nvme0: I/O tag 64 timeout",
        artefacts=(artefact,),
        attempts=2,
    )
    run = _run(steps=_run().steps[:1], splats=(), verdict=verdict.to_dict())
    text = junit_xml_text([run])
    _validate(text)
    error = _cases(text)["emulator-artefact"].find("error")
    assert error.get("message") == verdict.summary
    assert run.console_log in error.text and "I/O tag 64" in error.text
    props = {p.get("name"): p.get("value") for p in ET.fromstring(text).iter("property")}
    assert props["artefact.1.console_log"] == "out/console.attempt1.log"


def test_infra_error_without_steps_is_one_error_case():
    run = _run(steps=(), splats=(), infra_error="QEMU exited 1 before the agent started")
    text = junit_xml_text([run])
    _validate(text)
    (case,) = _cases(text).values()
    assert case.get("name") == "infrastructure"
    assert case.find("error").get("message") == "QEMU exited 1 before the agent started"


def test_validates_against_jenkins_schema():
    odd_times = (
        StepResult("long", "fio", "pass", duration_s=12345.6789),
        StepResult("clock-step", "fio", "pass", duration_s=-0.5),
    )
    runs = [_run(), _run(repetition=1), _run(steps=(), infra_error="boot")]
    text = junit_xml_text([*runs, _run(steps=odd_times, splats=())])
    _validate(text)
    times = [c.get("time") for c in ET.fromstring(text).iter("testcase")][-2:]
    assert times == ["12345.679", "0.000"]
    root = ET.fromstring(text)
    assert "disabled" not in root.attrib
    assert all("disabled" not in s.attrib for s in root.iter("testsuite"))


def test_junit_xml_output_alone_is_rejected_by_the_schema():
    # Why _conform exists: if junit-xml ever stops writing `disabled`, this tells us.
    from junit_xml import TestCase, TestSuite, to_xml_report_string

    raw = to_xml_report_string([TestSuite("s", [TestCase("c")])])
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        _validate(raw)


def test_console_noise_is_cleaned_to_valid_xml():
    noisy = dataclasses.replace(HUNG, excerpt="\x1b[0mINFO: task\x00 dd \x07blocked")
    step = StepResult("s", "fio", "fail", "splat", splats=(noisy,))
    text = junit_xml_text([_run(steps=(step,), splats=())])
    _validate(text)
    assert "INFO: task" in _cases(text)["s"].find("failure").text


def test_reads_back_through_junitparser_with_same_counts(tmp_path):
    runs = [_run(), _run(repetition=1), _run(steps=(), splats=(), infra_error="boot failed")]
    path = tmp_path / "junit.xml"
    write_junit(path, runs)
    _validate(path.read_text())
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert [s.name for s in suites] == [suite_name(r) for r in runs]
    # 6 steps (failures: the failed check and the step with a splat), or 1 infrastructure case
    assert [s.tests for s in suites] == [6, 6, 1]
    assert [s.failures for s in suites] == [2, 2, 0]
    assert [s.errors for s in suites] == [1, 1, 1]
    assert [s.skipped for s in suites] == [1, 1, 0]
    # junitparser counts the testcases itself; they must agree with the suites' attributes
    for suite, element in zip(suites, ET.parse(path).getroot().iter("testsuite"), strict=True):
        counted = [len(list(suite))]
        counted += [sum(isinstance(r, k) for c in suite for r in c.result) for k in KINDS]
        assert counted == [int(element.get(a)) for a in ("tests", "failures", "errors", "skipped")]
    results = {c.name: c.result for c in suites[0]}
    assert results["check/dm-linear-reflink"] == []  # xfail passes
    assert isinstance(results["fio/raw-scsi0/randread-4k"][0], junitparser.Skipped)
    assert isinstance(results["fio/loop-dio-on/randwrite"][0], junitparser.Error)


def test_write_is_atomic_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "junit.xml"
    write_junit(path, [_run()])
    write_junit(path, [_run(repetition=3)])
    assert [p.name for p in path.parent.iterdir()] == ["junit.xml"]
    assert "#3" in path.read_text()
