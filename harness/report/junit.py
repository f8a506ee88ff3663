"""JUnit XML from RunResults, built with junit-xml and made to validate against Jenkins' schema.

One <testsuite> per run (kernel x topology x repetition), one <testcase> per step.
Status mapping: pass -> passed; fail -> <failure>; error -> <error>; skip -> <skipped>
with the reason (a step after a kernel oops or hang: "not run: kernel oopsed in STEP");
xfail -> passed, its system-out saying it is an expected failure and why. A step with
console splats attached fails with their excerpts (an error step stays an error and gets
them too). The run's verdict (harness.verdict) decides the rest: a kernel failure that
names an errored step (a guest unresponsive twice) makes that step a <failure>; splats
not attached to any step make a failing "console" testcase; an infrastructure verdict
becomes an "infrastructure" <error> testcase; a run that ended as an emulator artefact
an "emulator-artefact" <error> testcase with its excerpt and console log. What an attempt
that was retried (a known emulator artefact, a VM that died) showed is history, not the
run's result: it goes into the testsuite's properties (`attempts`, `artefacts`,
`artefact.N.summary`, `artefact.N.console_log`) and its system-out (summary, first
console, excerpt), and a run whose retry passed has only passing cases. Nothing that went
wrong is silently absent.

Schema (Jenkins' xUnit plugin's jenkins-junit-10.xsd, which the tests validate against):
junit-xml 1.9 always writes `disabled` on <testsuites> and <testsuite>, which the schema
rejects, and formats suite times with str(float) (e.g. "1e-05"), which its SUREFIRE_TIME
pattern rejects. We never disable testcases, so `disabled` is always "0" and dropping it
loses nothing; we re-emit times as fixed-point. We fix both on the element tree after
junit-xml builds it rather than writing XML by hand, so junit-xml still does escaping and
illegal-character cleaning. The schema has no <properties> inside <testcase> (and junit-xml
1.9 cannot write them), so per-step metrics go into the testcase's system-out as JSON.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from junit_xml import TestCase, TestSuite, to_xml_report_string

from harness.results.files import atomic_write_text
from harness.results.model import RunResult, Splat, StepResult, StepStatus
from harness.verdict import EMULATOR_ARTEFACT, INFRA_ERROR, Verdict, classify

# Attributes the schema allows; anything else junit-xml adds is dropped.
_SUITES_ATTRS = ("name", "time", "tests", "failures", "errors")
_SUITE_ATTRS = (
    "name",
    "tests",
    "failures",
    "errors",
    "group",
    "time",
    "skipped",
    "timestamp",
    "hostname",
    "id",
    "package",
    "file",
    "log",
    "url",
)
_CASE_ATTRS = ("name", "time", "classname", "group")

# What XML 1.0 cannot hold (Char production: tab, LF, CR, U+0020-U+D7FF, U+E000-U+FFFD,
# U+10000 and up). junit-xml drops the C0 controls but writes U+FFFE/U+FFFF and lone
# surrogates (a console log read with surrogateescape, a hostile guest) as character
# references no parser accepts; both forms become U+FFFD.
_XML_ILLEGAL = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CHAR_REF = re.compile(r"&#(x[0-9a-fA-F]+|[0-9]+);")


def _legal_ref(match: re.Match[str]) -> str:
    ref = match.group(1)
    code = int(ref[1:], 16) if ref[0] == "x" else int(ref)
    char = chr(code) if code <= 0x10FFFF else "\x00"
    return match.group(0) if not _XML_ILLEGAL.match(char) else "\ufffd"


def xml_legal(text: str) -> str:
    """`text` (XML markup) with every character and character reference XML 1.0 forbids
    replaced by U+FFFD."""
    return _XML_ILLEGAL.sub("\ufffd", _CHAR_REF.sub(_legal_ref, text))


def suite_name(run: RunResult) -> str:
    """E.g. "6.12.111+deb12-amd64 (debian:6.12) / default", plus " #2" for repetition 2."""
    kernel = f"{run.kernel.release} ({run.kernel.spec})" if run.kernel.release else run.kernel.spec
    name = f"{kernel} / {run.topology}"
    return f"{name} #{run.repetition}" if run.repetition > 0 else name


def class_name(run: RunResult) -> str:
    """Jenkins splits classname at its last dot into package and class: kernel.topology."""
    kernel = (run.kernel.release or run.kernel.spec).replace(".", "_")
    topology = run.topology.replace(".", "_")
    if run.repetition > 0:
        topology += f"-rep{run.repetition}"
    return f"{kernel}.{topology}"


def suite_properties(run: RunResult) -> dict[str, str]:
    """What ran: kernel, environment, topology, plan (the testsuite's <properties>)."""
    props = {"kernel.release": run.kernel.release, "kernel.spec": run.kernel.spec}
    props["kernel.image"] = run.kernel.image
    props.update({f"kernel.provenance.{k}": str(v) for k, v in run.kernel.provenance.items()})
    props.update(run.environment.properties())
    props.update(topology=run.topology, plan=run.plan, repetition=str(run.repetition))
    props.update(console_log=run.console_log, started=run.started)
    verdict = classify(run)
    props.update({"verdict": verdict.cls, "verdict.summary": verdict.summary})
    props.update(retried_properties(verdict))
    # The Jenkins schema allows no <properties> inside <testcase>, so each step's metrics
    # are also suite properties keyed by step id (and JSON in the testcase's system-out).
    props.update(
        {
            f"metric.{step.id}.{name}": f"{value:.6g}"
            for step in run.steps
            for name, value in step.metrics.items()
        }
    )
    return {k: v for k, v in props.items() if v != ""}


def _splat_text(splats: Sequence[Splat]) -> str:
    return "\n\n".join(f"{s.kind} at console line {s.line}: {s.title}\n{s.excerpt}" for s in splats)


def _splat_message(splats: Sequence[Splat]) -> str:
    first = splats[0]
    more = f" (+{len(splats) - 1} more)" if len(splats) > 1 else ""
    return f"kernel {first.kind}: {first.title}{more}"


def failure_text(step: StepResult) -> str:
    """A failure's text: the message, and for a peer suite's test its .out.bad diff and the
    kernel log while it ran (guest/peer.py)."""
    parts = [step.message]
    for key, title in (("diff", "diff against the golden output"), ("dmesg", "kernel log")):
        if step.details.get(key):
            parts.append(f"--- {title} ---\n{step.details[key]}")
    return "\n\n".join(parts)


def step_case(step: StepResult, classname: str, verdict: Verdict | None = None) -> TestCase:
    """The testcase for one step (see the module docstring for the status mapping)."""
    out = {"target": step.target, "workload": step.workload, "metrics": step.metrics}
    if step.details:
        out["details"] = step.details
    stdout = json.dumps(out, indent=1, sort_keys=True, default=str)
    if step.status == StepStatus.XFAIL:
        stdout = f"XFAIL (expected failure): {step.message}\n{stdout}"
    case = TestCase(step.id, classname=classname, elapsed_sec=step.duration_s, stdout=stdout)
    message = step.message or f"step ended with status {step.status}"
    if step.status == StepStatus.ERROR and verdict and verdict.failed and verdict.step == step.id:
        case.add_failure_info(message=verdict.summary, output=step.message, failure_type="kernel")
    elif step.status == StepStatus.ERROR:
        output = _splat_text(step.splats) if step.splats else step.message
        case.add_error_info(message=message, output=output, error_type="error")
    elif step.splats:
        text = _splat_text(step.splats)
        if step.status == StepStatus.FAIL:
            text = f"{step.message}\n\n{text}"
        case.add_failure_info(
            message=_splat_message(step.splats), output=text, failure_type="splat"
        )
    elif step.status == StepStatus.FAIL:
        case.add_failure_info(message=message, output=failure_text(step), failure_type="failure")
    elif step.status == StepStatus.SKIP:
        case.add_skipped_info(message=step.message or "skipped")
    return case


def run_suite(run: RunResult) -> TestSuite:
    """The testsuite for one run: its steps plus console/infrastructure cases when needed."""
    classname = class_name(run)
    verdict = classify(run)
    cases = [step_case(step, classname, verdict) for step in run.steps]
    attached = {(s.line, s.kind) for step in run.steps for s in step.splats}
    loose = [s for s in run.splats if (s.line, s.kind) not in attached]
    if verdict.cls == INFRA_ERROR:
        # One error case says what broke, with any splat no step carries.
        message = run.infra_error or verdict.summary
        case = TestCase("infrastructure", classname=classname, elapsed_sec=run.duration_s)
        output = "\n\n".join(filter(None, [message, _splat_text(loose)]))
        case.add_error_info(message=message, output=output, error_type="infra")
        cases.append(case)
    elif loose and verdict.cls != EMULATOR_ARTEFACT:
        case = TestCase("console", classname=classname, stdout=run.console_log or None)
        output = "\n\n".join(filter(None, [run.infra_error, _splat_text(loose)]))
        case.add_failure_info(message=_splat_message(loose), output=output, failure_type="splat")
        cases.append(case)
    cases += artefact_cases(run, verdict, classname)
    return TestSuite(
        suite_name(run),
        cases,
        timestamp=run.started or None,
        properties=suite_properties(run),
        stdout=retried_note(verdict),
    )


def artefact_cases(run: RunResult, verdict: Verdict, classname: str) -> list[TestCase]:
    """The "emulator-artefact" error case of a run that ended as one (a recurring artefact
    its retry did not shake off); [] for any other run."""
    if verdict.cls != EMULATOR_ARTEFACT:
        return []
    case = TestCase("emulator-artefact", classname=classname, stdout=run.console_log or None)
    output = f"console log: {run.console_log}\n{verdict.evidence}"
    case.add_error_info(message=verdict.summary, output=output, error_type="emulator-artefact")
    return [case]


def retried_properties(verdict: Verdict) -> dict[str, str]:
    """The retried attempts of a run as testsuite properties; {} for a run booted once."""
    if verdict.attempts < 2 and not verdict.artefacts:
        return {}
    props = {"attempts": str(verdict.attempts), "artefacts": str(len(verdict.artefacts))}
    for i, artefact in enumerate(verdict.artefacts, 1):
        props[f"artefact.{i}.summary"] = artefact.get("summary", "")
        props[f"artefact.{i}.console_log"] = artefact.get("console_log", "")
    return props


def retried_note(verdict: Verdict) -> str | None:
    """The testsuite's system-out for a retried run: what each retried attempt showed."""
    notes = [
        f"retried: {a.get('summary', '')}\nfirst attempt's console: "
        f"{a.get('console_log', '')}\n{a.get('excerpt', '')}"
        for a in verdict.artefacts
    ]
    return "\n\n".join(notes) or None


def _conform(root: ET.Element) -> None:
    """Make junit-xml's tree valid under the Jenkins schema (see the module docstring)."""
    _keep(root, _SUITES_ATTRS)
    for suite in root.iter("testsuite"):
        _keep(suite, _SUITE_ATTRS)
        for case in suite.iter("testcase"):
            _keep(case, _CASE_ATTRS)
            if "time" in case.attrib:
                # SUREFIRE_TIME has no sign and no exponent: a clock step must not break it.
                case.set("time", f"{max(float(case.get('time', '0')), 0.0):.3f}")
        total = sum(float(c.get("time", "0")) for c in suite.iter("testcase"))
        suite.set("time", f"{total:.3f}")
    total = sum(float(s.get("time", "0")) for s in root.iter("testsuite"))
    root.set("time", f"{total:.3f}")


def _keep(element: ET.Element, allowed: Sequence[str]) -> None:
    for key in list(element.attrib):
        if key not in allowed:
            del element.attrib[key]


def conformed_xml(suites: Sequence[TestSuite], name: str = "harness") -> str:
    """junit-xml's document for `suites`, made valid under the Jenkins schema. Every JUnit
    writer of the harness (runs, comparisons, bisect, backport) goes through this."""
    raw = to_xml_report_string(list(suites), prettyprint=False)
    root = ET.fromstring(xml_legal(raw))
    root.set("name", name)
    _conform(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def junit_xml_text(runs: Sequence[RunResult]) -> str:
    """The JUnit XML document (a string with an XML declaration) for `runs`."""
    return conformed_xml([run_suite(run) for run in runs])


def write_junit(path: Path, runs: Sequence[RunResult]) -> None:
    """Write junit.xml for `runs` atomically."""
    atomic_write_text(path, junit_xml_text(runs))
