"""Cost of the harness's curated peer-suite selections (@harness-quick) on a real TCG guest:
blktests, fstests on ext4 and fstests on XFS, one guest after the other.

    .venv/bin/python benchmarks/bench_peer_curated.py [--suites ../shared/peer-suites]
        [--only blktests,ext4,xfs] [--kernel debian:6.12] [--expunge DIR] [--out DIR]

Each selection is a real `harness run --plan none --suite SUITE:PATH@harness-quick[...]`
into OUT/<name>. Printed per selection: every suite test with its status, the step's
seconds and the suite's own runtime; then tests, passes, skips, known failures, failures,
the wall time against the selection's budget, the load average before and after, and
whether junit.xml validates against the Jenkins schema with one testcase per test
($HARNESS_JUNIT_XSD or ../shared/schemas/jenkins-junit-10.xsd). The figures in
docs/peer-suites.md come from here. Not a test: the three take about half an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.suite import peer  # noqa: E402

EXPUNGE = ROOT / "tests" / "data" / "peer" / "expunge"
SELECTIONS = {  # name -> (suite, fstype)
    "blktests": ("blktests", ""),
    "ext4": ("fstests", "ext4"),
    "xfs": ("fstests", "xfs"),
}


def suite_arg(name: str, suites: Path, expunge: Path) -> str:
    suite, fstype = SELECTIONS[name]
    text = f"{suite}:{suites / suite}@{peer.CURATED}"
    if fstype:
        text += f":fstype={fstype}"
    if (expunge / suite).is_dir():
        text += f":expunge={expunge / suite}"
    return text


def junit_check(path: Path, ids: list[str]) -> str:
    """'valid, one testcase per test' or what is wrong with junit.xml."""
    if not path.is_file():
        return "no junit.xml"
    names = Counter(c.get("name") for c in ET.parse(path).getroot().iter("testcase"))
    missing = [i for i in ids if names[i] != 1]
    xsd = Path(
        os.environ.get("HARNESS_JUNIT_XSD", ROOT.parent / "shared/schemas/jenkins-junit-10.xsd")
    )
    try:
        import xmlschema

        xmlschema.XMLSchema(str(xsd)).validate(path.read_text())
        schema = "valid against the Jenkins schema"
    except (ImportError, OSError) as exc:
        schema = f"schema not checked ({exc})"
    except Exception as exc:  # xmlschema's validation errors have no common base we import
        schema = f"INVALID: {exc}"[:200]
    return schema + (f"; testcases not once: {missing}" if missing else "; one testcase per test")


def report(name: str, out: Path, took: float, rc: int, loads: tuple[str, str]) -> None:
    suite, fstype = SELECTIONS[name]
    chosen = peer.curated(suite, fstype or "ext4")
    results = out / "results.json"
    if not results.is_file():
        print(f"{name}: exit {rc} in {took:.0f}s, no results.json")
        return
    run = json.loads(results.read_text())["runs"][0]
    steps = [s for s in run["steps"] if s.get("kind") == "suite"]
    for s in steps:
        runtime = s.get("details", {}).get("suite_runtime", "")
        why = s.get("message", "")[:90]
        print(f"  {s['id']:24} {s['status']:5} {s['duration_s']:7.1f}s  suite {runtime:>8}  {why}")
    counts = Counter(s["status"] for s in steps)
    print(
        f"{name}: {len(steps)} tests: {counts['pass']} pass, {counts['skip']} skip, "
        f"{counts['xfail']} known failure, {counts['fail'] + counts['error']} fail; "
        f"wall {took:.0f}s (run {run.get('duration_s', 0):.0f}s, suite steps "
        f"{sum(s['duration_s'] for s in steps):.0f}s; budget {chosen.budget_s}s); exit {rc}; "
        f"load {loads[0]} -> {loads[1]}"
    )
    print(f"  junit: {junit_check(out / 'junit.xml', [s['id'] for s in steps])}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", type=Path, default=ROOT.parent / "shared" / "peer-suites")
    ap.add_argument("--only", default="blktests,ext4,xfs", help="comma-separated selections")
    ap.add_argument("--kernel", default="debian:6.12")
    ap.add_argument("--expunge", type=Path, default=EXPUNGE)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / f"curated-{time.strftime('%H%M%S')}")
    ns = ap.parse_args()
    ns.out.mkdir(parents=True, exist_ok=True)
    for name in ns.only.split(","):
        out = ns.out / name
        argv = [sys.executable, "-m", "harness", "run", "--kernel", ns.kernel, "--plan", "none"]
        argv += ["--suite", suite_arg(name, ns.suites.resolve(), ns.expunge), "--out", str(out)]
        before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        t0 = time.monotonic()
        with (ns.out / f"{name}.log").open("w") as log:
            rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT).returncode
        after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        report(name, out, time.monotonic() - t0, rc, (before, after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
