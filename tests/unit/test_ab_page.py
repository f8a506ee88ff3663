"""The A/B page opens with what changed and ends with the method, and links each run's own
page (issue #25 item 3), from a recorded A/B: tests/data/ab/wall-loop-slowdown-results.json
(lean 6.12 + slowdown.mbox on both sides, a planted loop-only spin on the candidate, 3 reps
under TCG)."""

import base64
import re
from pathlib import Path

import pytest

from harness.workflows.ab import workflow as ab
from harness.workflows.ab.changed import judged, run_pages
from harness.workflows.ab.report import write_reports

RECORDED = Path(__file__).parents[1] / "data" / "ab" / "wall-loop-slowdown-results.json"


def _comparison():
    return ab.load_comparison([RECORDED])[1]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """The A/B directory with every page written once (matplotlib makes each page cost)."""
    out = tmp_path_factory.mktemp("ab")
    write_reports(_comparison(), out)
    return out


def test_every_judged_effect_is_charted_regressions_first():
    c = _comparison()
    metrics = judged(c)
    verdicts = [m.verdict for m in metrics]
    assert verdicts.count("regression") == 19 and verdicts.count("inconclusive") == 17
    assert verdicts == sorted(verdicts, key=["regression", "inconclusive"].index)
    assert all(m.effect is not None for m in metrics)
    assert "undirected" not in verdicts  # shown in the tables, never judged, not charted


def test_page_opens_with_what_changed_and_ends_with_the_method(written):
    page = (written / "report.html").read_text()
    headings = re.findall(r"<h2>([^<]+)</h2>", page)
    assert headings == ["What changed", "Checks", "Metrics", "Runs", "Method"]
    assert page.index('id="verdict"') < page.index("<h2>What changed</h2>")
    chart = re.search(
        r'<img class="plot" id="changed"[^>]* src="data:image/png;base64,([^"]+)"', page
    )
    assert chart and base64.b64decode(chart.group(1)).startswith(b"\x89PNG")


def test_page_links_each_runs_own_page_and_writes_them(written):
    rels = [rel for rel, _ in run_pages(_comparison())]
    assert sorted(rels) == sorted(
        f"runs/rep{n}-{side}/report.html" for n in range(3) for side in ("base", "candidate")
    )
    page = (written / "report.html").read_text()
    for rel in rels:
        assert f'href="{rel}"' in page
        assert "Kernel test run" in (written / rel).read_text()
