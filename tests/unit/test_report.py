"""Report writers: JUnit against Jenkins' schema, markdown content, HTML in headless Chromium."""

import dataclasses
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import xmlschema
from matplotlib.image import imread

from harness.results.compare import compare
from harness.results.model import Environment, KernelInfo, RunResult, StepResult
from harness.workflows.ab.report import plot_step, render_html, render_junit, render_markdown
from tests.conftest import junit_xsd

# Jenkins xUnit's junit-10 schema
ENV = Environment(accel="tcg", qemu_version="7.2.19", host_fs="ext4", cpus=2)
STEPS = ("fio/raw-nvme0/randread-4k", "fio/loop-dio-on-xfs-nvme0/randwrite-4k")


def runs(factor, *, check="pass", topology="default"):
    out = []
    for rep, jitter in enumerate((1.0, 1.02, 0.985)):
        steps = [
            StepResult(
                sid,
                "fio",
                "pass",
                metrics={
                    "read_iops": 2000.0 * factor * jitter,
                    "read_clat_p99_us": 9000.0 / (factor * jitter),
                    "ctxsw_per_io": 1.9 * jitter,
                    "odd_metric": 4.0,
                },
            )
            for sid in STEPS
        ]
        steps.append(StepResult("check/reflink", "check", check, message="clone corrupted"))
        out.append(
            RunResult(
                KernelInfo("debian:6.12"),
                ENV,
                topology,
                "quick",
                steps=tuple(steps),
                repetition=rep,
            )
        )
    return out


@pytest.fixture(scope="module")
def regression():
    return compare(runs(1.0), runs(0.7, check="fail"))


@pytest.fixture(scope="module")
def invalid():
    return compare(runs(1.0), runs(1.0, topology="slow.json"), allow_env_diff=["topology"])


def test_junit_validates_and_counts_failures(regression):
    xml = render_junit(regression)
    xmlschema.XMLSchema(str(junit_xsd())).validate(xml)
    root = ET.fromstring(xml)
    cases = root.findall(".//testcase")
    # 4 metrics x 2 steps, the reflink check and the splat scan.
    assert len(cases) == 10
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert failed == {(s, m) for s in STEPS for m in ("read_iops", "read_clat_p99_us")} | {
        ("check.check", "check/reflink")
    }
    assert "disabled" not in xml


def test_junit_properties_carry_means_ci_change_and_reps(regression):
    root = ET.fromstring(render_junit(regression))
    suite = root.find(f"testsuite[@name='{STEPS[0]}']")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    for key in (
        "base_mean",
        "candidate_mean",
        "base_ci_low",
        "base_ci_high",
        "candidate_ci_low",
        "candidate_ci_high",
        "change_pct",
        "base_reps",
        "candidate_reps",
    ):
        assert f"read_iops.{key}" in props, key
    assert float(props["read_iops.change_pct"]) == pytest.approx(-30.0)
    assert props["read_iops.base_reps"] == "3" and props["ab.valid"] == "true"


def test_invalid_comparison_is_marked_in_every_output(invalid):
    root = ET.fromstring(render_junit(invalid))
    assert {p.get("value") for p in root.iter("property") if p.get("name") == "ab.valid"} == {
        "false"
    }
    assert "This comparison is INVALID" in render_markdown(invalid)
    assert 'id="invalid"' in render_html(invalid)


def test_markdown_tables(regression):
    md = render_markdown(regression)
    assert md.startswith("# A/B: debian:6.12 vs debian:6.12")
    row = next(line for line in md.splitlines() if line.startswith("| read_iops"))
    assert "-30.0%" in row and "**regression**" in row
    assert "| check/reflink | pass pass pass | fail fail fail | regression |" in md
    assert "bootstrap percentile" in md and "Welch" in md


def test_plot_is_a_png():
    m = compare(runs(1.0), runs(0.7)).metrics
    png = plot_step(m[:4])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def _chromium(args, html_file: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium")
    assert exe, "chromium missing: run ./bootstrap.sh (Debian package chromium)"
    with tempfile.TemporaryDirectory() as profile:
        argv = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
            html_file.as_uri(),
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)


# Marks every image with its decoded size once the page has loaded, for --dump-dom to show.
_PROBE = (
    "<script>window.addEventListener('load',()=>{for(const i of document.images)"
    "{i.setAttribute('data-decoded',i.complete&&i.naturalWidth>0?"
    "i.naturalWidth+'x'+i.naturalHeight:'no')}});</script></body>"
)


def test_html_renders_with_plots_in_chromium(tmp_path, regression):
    page = render_html(regression)
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", _PROBE))
    dom = _chromium(["--virtual-time-budget=5000", "--dump-dom"], probe).stdout
    sizes = re.findall(r'data-decoded="([^"]+)"', dom)
    assert len(sizes) == len(STEPS) + 1  # one per step, and what changed on top
    assert all(re.fullmatch(r"\d{3,4}x\d{3,4}", s) for s in sizes), sizes
    assert "REGRESSION" in dom

    shot = tmp_path / "shot.png"
    plain = tmp_path / "report.html"
    plain.write_text(page)
    _chromium(["--window-size=1200,2400", f"--screenshot={shot}"], plain)
    pixels = imread(shot)[..., :3]
    ink = np.mean(np.any(pixels < 0.9, axis=-1))
    assert pixels.shape[:2] == (2400, 1200) and ink > 0.03
    # The regression colour (red bars, blended) is on the page.
    red = (pixels[..., 0] > 0.7) & (pixels[..., 1] < 0.6) & (pixels[..., 2] < 0.6)
    assert red.sum() > 500


def test_unknown_metric_never_fails_junit(regression):
    root = ET.fromstring(render_junit(regression))
    odd = [c for c in root.iter("testcase") if c.get("name") == "odd_metric"]
    assert odd and all(c.find("failure") is None for c in odd)


def test_dataclass_is_frozen(regression):
    with pytest.raises(dataclasses.FrozenInstanceError):
        regression.alpha = 0.1


def test_markdown_shows_families_effects_and_the_method(regression):
    md = render_markdown(regression)
    assert "effect [95% CI]" in md and "paired-t n=3" in md
    assert "| read_iops | primary |" in md and "| ctxsw_per_io | secondary |" in md
    assert "| -30.0% [-30.0, -30.0] | paired-t n=3 |" in md  # the same jitter on both sides
    assert "paired two-sided t-test" in md and "Benjamini-Hochberg on its own" in md
    assert "Measure: wall" in md


def test_cost_figures_are_labelled_everywhere():
    cost = dataclasses.replace(ENV, measure="cost")

    def costed(rs):
        return [dataclasses.replace(r, environment=cost) for r in rs]

    c = compare(costed(runs(1.0)), costed(runs(0.7)))
    assert "[COST figures]" in render_markdown(c).splitlines()[2]
    assert "Measure: cost - COST figures: QEMU instruction counting" in render_markdown(c)
    assert "[COST figures]" in render_html(c) and "id='measure'" in render_html(c)
    assert 'name="ab.measure" value="cost"' in render_junit(c)
