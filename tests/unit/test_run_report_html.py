"""A plain run's report.html (issue #25 item 3), rendered from the recorded default job
(tests/data/run/default-job-results.json: see test_versus_raw.py)."""

import base64
import json
import re
from pathlib import Path

from harness.cli.run import raw_under, write_outputs
from harness.report.run_html import render_html, rows
from harness.results.model import RunResult

RECORDED = Path(__file__).parents[1] / "data" / "run" / "default-job-results.json"


def _runs() -> list[RunResult]:
    return [RunResult.from_dict(r) for r in json.loads(RECORDED.read_text())["runs"]]


def test_report_html_has_the_verdict_on_top_the_chart_the_figures_and_the_checks():
    page = render_html(_runs(), raw_under(_runs()))
    verdict = page.index("PASS debian:6.12 (6.12.118+deb12-amd64) on default: verdict pass")
    chart = re.search(r'<img class="plot"[^>]* src="data:image/png;base64,([^"]+)"', page)
    assert chart and verdict < chart.start()
    assert base64.b64decode(chart.group(1)).startswith(b"\x89PNG\r\n\x1a\n")
    # per workload and target: the share of the raw device and the mechanism figures
    assert re.search(
        r"<tr><td>randread-4k</td><td>loop-dio-on-xfs</td><td>raw-nvme0</td><td>496</td>"
        r"<td>0.0528x</td><td>591,397</td><td>73.1x</td><td>2,423</td><td>1.6</td>"
        r"<td>0</td><td>0.114</td></tr>",
        page,
    )
    checks = page[page.index("<h3>Checks</h3>") :]
    for name in ("sparse", "reflink", "truncate"):
        assert (
            f"<tr><td>check/{name}/loop-dio-on-xfs</td><td>loop-dio-on-xfs</td>"
            '<td class="pass">pass</td>'
        ) in checks
    # readable offline: no scripts, nothing fetched
    assert "<script" not in page and not re.search(r'(src|href)="https?:', page)


def test_every_run_writes_report_html_beside_report_md(tmp_path):
    write_outputs(tmp_path, _runs())
    for name in ("results.json", "junit.xml", "report.md", "report.html"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "loop-dio-off-xfs vs raw-nvme0" in (tmp_path / "report.html").read_text()


def test_a_target_without_its_raw_device_measured_keeps_its_row_and_figures():
    by_target = {r.target: r for r in rows(_runs()[0], {}) if r.group == "randread-4k"}
    assert by_target["loop-dio-on-xfs"].iops_share is None
    assert by_target["loop-dio-on-xfs"].get("cpu_us_per_io") == 2422.85
