"""JUnit from hostile text: a console log or guest record may hold characters XML 1.0
cannot carry (U+FFFE, U+FFFF, lone surrogates); every JUnit writer still writes a document
that parses, with U+FFFD where they were."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report.junit import write_junit, xml_legal
from harness.results.model import Environment, KernelInfo, RunResult, Splat, StepResult

HOSTILE = ("\ufffe", "\uffff", "\ud800", "\udfff")


def _run(bad: str) -> RunResult:
    splat = Splat("oops", f"Oops: {bad}", 3, f"[ 1.0] RIP {bad} \udcff")
    return RunResult(
        kernel=KernelInfo("debian:6.12", f"6.12{bad}", "/c/vmlinuz", {"series": f"p{bad}"}),
        environment=Environment(accel="tcg"),
        topology="default",
        plan="quick",
        steps=(
            StepResult(f"fio/a{bad}", "fio", "fail", f"fio said {bad}", splats=(splat,)),
            StepResult("check/b", "check", "error", f"agent wrote {bad}"),
        ),
        splats=(splat,),
        console_log="out/console.log",
        started="2026-12-04T00:00:00",
    )


@pytest.mark.parametrize("bad", HOSTILE)
def test_junit_is_written_and_parses_with_xml_illegal_characters(tmp_path: Path, bad: str):
    path = tmp_path / "junit.xml"
    write_junit(path, [_run(bad)])
    text = path.read_text(encoding="utf-8")
    root = ET.fromstring(text)
    names = [c.get("name") for c in root.iter("testcase")]
    assert "fio/a\ufffd" in names
    assert "fio said \ufffd" in text and "agent wrote \ufffd" in text
    assert bad not in text


def test_xml_legal_keeps_legal_text_and_references() -> None:
    assert xml_legal("a&#65534;b&#xFFFF;c&#55296;d") == "a\ufffdb\ufffdc\ufffdd"
    kept = "tab\there &#233; &#x1F600; &amp;#65534; \u00e9\U0001f600"
    assert xml_legal(kept) == kept
    assert xml_legal("x\ud800y\ufffez") == "x\ufffdy\ufffdz"
