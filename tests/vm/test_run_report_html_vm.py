"""report.html opens in a real headless Chromium, offline, with its chart drawn (issue #25
item 3): the page is rendered from the recorded default job (tests/data/run/) and
screenshot; the chart's bar colours must be on the screenshot, which they only are if the
embedded PNG decoded and painted."""

import json
import shutil
import subprocess
from pathlib import Path

from PIL import Image

from harness.cli.run import raw_under
from harness.report.run_html import write_html
from harness.results.model import RunResult

RECORDED = Path(__file__).parents[1] / "data" / "run" / "default-job-results.json"
LOOP_DIO_OFF, FILE = (0xE6, 0x7E, 0x22), (0x29, 0x80, 0xB9)  # bar colours (run_html._color)


def chromium_screenshot_argv(page: Path, png: Path, profile: Path) -> list[str]:
    return [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        "--window-size=1200,1600",
        page.as_uri(),
    ]


def test_report_html_renders_in_headless_chromium_with_its_chart(tmp_path):
    assert shutil.which("chromium"), "chromium missing: bootstrap.sh installs it"
    runs = [RunResult.from_dict(r) for r in json.loads(RECORDED.read_text())["runs"]]
    page, png = tmp_path / "report.html", tmp_path / "report.png"
    write_html(page, runs, raw_under(runs))
    argv = chromium_screenshot_argv(page, png, tmp_path / "profile")
    # no network needed: the page has nothing to fetch
    subprocess.run(
        argv,
        check=True,
        timeout=180,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    with Image.open(png) as shot:
        assert shot.size == (1200, 1600)
        colours = shot.convert("RGB").getcolors(maxcolors=1 << 20)
    counted = {rgb: n for n, rgb in colours}
    # two workloads x four panels of solid bars each: thousands of pixels per colour
    assert counted.get(LOOP_DIO_OFF, 0) > 2000, "the loop dio-off bars are not on the page"
    assert counted.get(FILE, 0) > 2000, "the file-xfs bars are not on the page"
