"""Peer suites in the guest: run one blktests or fstests test and turn what the suite wrote
into this step's outcome. Stdlib only.

The suite was built on the host (harness/run/peer.py) and is read-only here, like the rest
of the host's root; the first test of a suite copies it into the workdir (a tmpfs), writes
its configuration there (blktests `config`, fstests `local.config` with TEST_DEV and
SCRATCH_DEV on the plan's disks) and every test runs `./check TEST` in that copy. What the
suite wrote (result file, .out.bad, .dmesg, .full) is copied to the shared results
directory under peer/SUITE/, capped in size.
"""

from __future__ import annotations

import os
import re
import time

from guest import probes, sh
from guest.api import Context, Outcome, Skip

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any

ALARM_SLACK_S = 20  # reading and copying a timed-out test's files, before the step alarm
FILE_CAP = 256 * 1024  # bytes of one suite file kept in the shared directory
TEXT_CAP = 8 * 1024  # characters of a diff or a dmesg excerpt in the step record
_ready: dict[str, str] = {}  # suite -> its writable copy, prepared once per agent run
_started: dict[str, float] = {}  # suite -> monotonic time its first test began


def unpack_argv(tarball: str, dst: str) -> list[str]:
    """The suite as built on the host, one tar file (one sequential read over 9p)."""
    return ["tar", "-xf", tarball, "-C", dst]


def _copy_suite(src: str, dst: str) -> None:
    if os.path.isdir(dst):
        sh.run(["rm", "-rf", dst], timeout=120)
    os.makedirs(dst)
    sh.run(unpack_argv(src, dst), timeout=600)


def blktests_config(test_devs: list[str]) -> str:
    """blktests' ./config: TEST_DEVS empty runs only the tests that need no device."""
    return f"TEST_DEVS=({' '.join(test_devs)})\n"


def fstests_config(params: dict[str, Any], test_dev: str, scratch_dev: str, work: str) -> str:
    """fstests' local.config: the plan's disks, FSTYP, mount points in the writable workdir."""
    lines = [
        f"FSTYP={params.get('fstype', 'ext4')}",
        f"TEST_DEV={test_dev}",
        f"TEST_DIR={work}/mnt/test",
        f"SCRATCH_DEV={scratch_dev}",
        f"SCRATCH_MNT={work}/mnt/scratch",
        f"RESULT_BASE={work}/suite/results",
    ]
    return "".join(f"export {line}\n" for line in lines)


def mkfs_argv(fstype: str, dev: str) -> list[str]:
    if fstype == "xfs":
        return ["mkfs.xfs", "-f", "-q", dev]
    return [f"mkfs.{fstype}", "-F", "-q", dev]


def _disk(ctx: Context, params: dict[str, Any], key: str) -> str:
    name = params.get(key, "")
    if name not in ctx.disks:
        why = ctx.disk_problems.get(name, "not attached")
        raise Skip(f"not run: disk {name!r} for {key} is missing ({why})")
    return ctx.disks[name]


def prepare(params: dict[str, Any], ctx: Context) -> str:
    """The suite's writable copy with its configuration, made on the suite's first test."""
    suite = params["suite"]
    if suite in _ready:
        return _ready[suite]
    work = os.path.join(ctx.workdir, "peer", suite)
    copy = os.path.join(work, "suite")
    _copy_suite(params["src"], copy)
    if suite == "blktests":
        test_devs = [_disk(ctx, params, "test_disk")] if params.get("test_disk") else []
        sh.write_text(os.path.join(copy, "config"), blktests_config(test_devs))
        mount_configfs()
    else:
        test_dev = _disk(ctx, params, "test_disk")
        scratch = _disk(ctx, params, "scratch_disk")
        for mnt in ("test", "scratch"):
            os.makedirs(os.path.join(work, "mnt", mnt), exist_ok=True)
        sh.run(mkfs_argv(params.get("fstype", "ext4"), test_dev), timeout=300)
        sh.write_text(
            os.path.join(copy, "local.config"), fstests_config(params, test_dev, scratch, work)
        )
    _ready[suite] = copy
    return copy


CONFIGFS = "/sys/kernel/config"


def configfs_mounted(mounts: str) -> bool:
    """Whether /proc/mounts text shows configfs at CONFIGFS."""
    return any(f.split()[1:3] == [CONFIGFS, "configfs"] for f in mounts.splitlines() if f.strip())


def mount_configfs() -> None:
    """blktests makes null_blk devices through configfs (`mkdir .../nullb/nullb1`), which a
    virtme-ng guest has not mounted (Debian builds it as a module). A kernel without it
    leaves those tests to fail with the suite's own message."""
    if configfs_mounted(sh.read_text("/proc/mounts", "") or ""):
        return
    sh.run(["modprobe", "configfs"], timeout=60, check=False)
    sh.run(["mount", "-t", "configfs", "configfs", CONFIGFS], timeout=60, check=False)


def check_argv(suite: str, test: str) -> list[str]:
    """./check for one test; fstests also writes its xunit report (result.xml)."""
    if suite == "fstests":
        return ["./check", "-R", "xunit", test]
    return ["./check", test]


def run_check(copy: str, argv: list[str], timeout: float) -> tuple[int | None, str]:
    """(exit code, output) of ./check in the copy; None for a test past its timeout."""
    cwd = os.getcwd()
    os.chdir(copy)
    try:
        return sh.run(argv, timeout=timeout, check=False)
    except sh.CommandError as exc:
        if exc.rc is not None:
            raise
        return None, exc.output
    finally:
        os.chdir(cwd)


def read_capped(path: str, cap: int = TEXT_CAP) -> str:
    """A suite file's text, its tail kept when long; '' when absent or not a regular file."""
    try:
        if not os.path.isfile(path) or os.path.islink(path):
            return ""
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - cap))
            data = fh.read(cap).decode("utf-8", "replace")
    except OSError:
        return ""
    return data if size <= cap else f"[... first {size - cap} bytes cut ...]\n{data}"


def out_diff(expected_path: str, bad_path: str, root: str = "") -> str:
    """Unified diff of the golden output against what the test printed (.out.bad), the
    files named relative to `root` (the suite's copy) as the suite itself shows them."""
    bad = read_capped(bad_path, FILE_CAP)
    if not bad:
        return ""
    import difflib  # only a failing suite test pays for it

    expected = read_capped(expected_path, FILE_CAP)
    names = [os.path.relpath(p, root) if root else p for p in (expected_path, bad_path)]
    lines = difflib.unified_diff(expected.splitlines(), bad.splitlines(), *names, lineterm="")
    return "\n".join(lines)[:TEXT_CAP]


def blktests_result(text: str) -> dict[str, str]:
    """blktests' per-test result file (KEY<TAB>VALUE lines: status, reason, runtime, ...)."""
    fields = {}
    for line in text.splitlines():
        key, tab, value = line.partition("\t")
        if tab:
            fields[key.strip()] = value.strip()
    return fields


_NOT_RUN_RE = re.compile(r"\[not run\]\s*$")


def blktests_skip_reasons(output: str) -> list[str]:
    """The reasons ./check printed under a '[not run]' line (blktests keeps them nowhere
    else); the key/value table it may print there has '...' columns and is left out."""
    reasons: list[str] = []
    taking = False
    for line in output.splitlines():
        if _NOT_RUN_RE.search(line):
            taking = True
        elif taking and line.startswith("    ") and " ... " not in line and "\t" not in line:
            reasons.append(line.strip())
        elif taking and not line.startswith("    "):
            taking = False
    return reasons


def fstests_result(xml_text: str, test: str) -> dict[str, str]:
    """{status, reason, runtime} of `test` in fstests' xunit result.xml ({} if absent)."""
    import xml.etree.ElementTree as ET  # only suite runs pay for it

    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return {}
    for case in root.iter("testcase"):
        if case.get("name") != test:
            continue
        fields = {"status": "pass", "reason": "", "runtime": case.get("time", "")}
        for tag, status in (("skipped", "not run"), ("failure", "fail"), ("error", "fail")):
            found = case.find(tag)
            if found is not None:
                fields.update(status=status, reason=found.get("message", ""))
        return fields
    return {}


def result_fields(suite: str, results: str, test: str, output: str) -> dict[str, str]:
    """What the suite recorded for the test: status (pass, fail, not run), reason, runtime."""
    if suite == "fstests":
        fields = fstests_result(read_capped(os.path.join(results, "result.xml"), FILE_CAP), test)
        notrun = read_capped(os.path.join(results, test + ".notrun")).strip()
        if notrun and fields.get("status") in (None, "not run"):
            fields = {**fields, "status": "not run", "reason": notrun}
        return fields
    for sub in sorted(os.listdir(results)) if os.path.isdir(results) else ():
        text = read_capped(os.path.join(results, sub, test))
        if text:
            fields = blktests_result(text)
            if fields.get("status") == "not run":
                fields["reason"] = "; ".join(blktests_skip_reasons(output))
            return fields
    reasons = blktests_skip_reasons(output)
    return {"status": "not run", "reason": "; ".join(reasons)} if reasons else {}


def result_files(suite: str, results: str, test: str) -> list[str]:
    """The suite's files for the test: blktests results/DEV/T*, fstests results/T.*."""
    if suite == "fstests":
        bases = [os.path.join(results, test)]
    else:
        subs = sorted(os.listdir(results)) if os.path.isdir(results) else []
        bases = [os.path.join(results, sub, test) for sub in subs]
    found = []
    for base in bases:
        folder, name = os.path.split(base)
        if os.path.isdir(folder):
            found += [
                os.path.join(folder, f)
                for f in sorted(os.listdir(folder))
                if f == name or f.startswith(name + ".")
            ]
    if suite == "fstests":
        found.append(os.path.join(results, "result.xml"))
    return [f for f in found if os.path.isfile(f) and not os.path.islink(f)]


def keep_files(files: list[str], results: str, ctx: Context, params: dict[str, Any]) -> list[str]:
    """Copy the test's files (capped) to the shared results directory: peer/SUITE/..."""
    if not ctx.results:
        return []
    kept = []
    for path in files:
        rel = os.path.relpath(path, results)
        dst = os.path.join(ctx.results, "peer", params["suite"], rel)
        if rel == "result.xml":
            dst = os.path.join(ctx.results, "peer", params["suite"], params["test"] + ".xml")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "w") as fh:
            fh.write(read_capped(path, FILE_CAP))
        kept.append(os.path.relpath(dst, ctx.results))
    return kept


def keep_output(output: str, ctx: Context, params: dict[str, Any]) -> list[str]:
    """./check's own output (blktests says why a test did not run only there)."""
    if not ctx.results:
        return []
    rel = os.path.join("peer", params["suite"], params["test"] + ".check.txt")
    os.makedirs(os.path.dirname(os.path.join(ctx.results, rel)), exist_ok=True)
    with open(os.path.join(ctx.results, rel), "w") as fh:
        fh.write(output[-FILE_CAP:])
    return [rel]


def _clear(results: str) -> None:
    if os.path.isdir(results):
        sh.run(["rm", "-rf", results], timeout=120)


def budget_left(params: dict[str, Any], now: float) -> float:
    """Seconds of the suite's time budget left (counted from its first test)."""
    started = _started.setdefault(params["suite"], now)
    return float(params.get("budget_s", 3600)) - (now - started)


def check_timeout(step: dict[str, Any], budget_left: float, spent: float) -> float:
    """Seconds ./check may run: the test's timeout, within the suite's budget, and ending
    before the agent's step alarm (which would cut the test short as an error, without its
    files); `spent` is what setup took of the step already (the first test unpacks)."""
    alarm_left = float(step.get("timeout_s", 780)) - spent - ALARM_SLACK_S
    test_s = float(step.get("params", {}).get("test_timeout_s", 600))
    return max(1.0, min(test_s, budget_left, alarm_left))


def run_test(step: dict[str, Any], ctx: Context) -> Outcome:
    """Run one suite test (step params from harness/suite/peer.py) and judge what it wrote."""
    entered = time.monotonic()  # the agent's step alarm was armed just before
    params = step.get("params", {})
    suite, test = params["suite"], params["test"]
    left = budget_left(params, entered)
    if left <= 0:
        return Outcome(
            "skip", f"not run: the {suite} time budget of {params['budget_s']}s was spent"
        )
    copy = prepare(params, ctx)
    results = os.path.join(copy, "results")
    _clear(results)
    kmsg = probes.KmsgTail()
    timeout = check_timeout(step, left, time.monotonic() - entered)
    started = time.monotonic()
    try:
        rc, output = run_check(copy, check_argv(suite, test), timeout)
        dmesg = kmsg.read()
    finally:
        kmsg.close()
    elapsed = round(time.monotonic() - started, 3)
    fields = result_fields(suite, results, test, output)
    expected = os.path.join(copy, "tests", test + ".out")
    details: dict[str, Any] = {
        "suite_status": fields.get("status", ""),
        "suite_reason": fields.get("reason", ""),
        "suite_runtime": fields.get("runtime", ""),
        "check_rc": rc,
        "files": keep_files(result_files(suite, results, test), results, ctx, params)
        + keep_output(output, ctx, params),
    }
    if rc is None and left <= timeout:  # the suite's budget, not the test, ran out
        return Outcome(
            "skip",
            f"not finished: the {suite} time budget of {params['budget_s']}s ran out during it",
            {"suite_s": elapsed},
            details,
        )
    outcome = judge(fields, rc, timeout, output, test)
    if outcome.status == "fail":
        bad = [f for f in result_files(suite, results, test) if f.endswith(".out.bad")]
        details["diff"] = out_diff(expected, bad[0], copy) if bad else ""
        details["dmesg"] = "\n".join(dmesg)[-TEXT_CAP:]
        details["output"] = output[-TEXT_CAP:]
    return known(
        Outcome(outcome.status, outcome.message, {"suite_s": elapsed}, details),
        params.get("known_failure"),
    )


def judge(
    fields: dict[str, str], rc: int | None, timeout: float, output: str, test: str
) -> Outcome:
    """The step's status from what the suite said: pass, fail, or skip with its reason."""
    if rc is None:
        return Outcome("fail", f"{test} did not finish within {timeout:.0f}s (per-test timeout)")
    status = fields.get("status", "")
    reason = fields.get("reason", "")
    if status == "pass":
        return Outcome("pass")
    if status == "not run":
        return Outcome("skip", f"not run: {reason or 'the suite gave no reason'}")
    if status == "fail":
        return Outcome("fail", f"{test} failed ({reason or 'see diff'})")
    quirk = suite_quirk(output)
    if quirk:
        return Outcome("skip", f"not run: {quirk}", details={"suite_quirk": True})
    tail = " | ".join(output.strip().splitlines()[-3:])
    return Outcome("error", f"{test}: the suite wrote no result (exit {rc}): {tail}")


# What a suite prints when it stops before a test's body for a reason of its own, not the
# kernel's: the test is "not run" with the suite's words and the release it choked on.
QUIRKS = (
    # blktests common/rc _have_kver strips the release to a.b.c with `sed 's/-.*//'`, which
    # leaves "118deb12" of Debian's "6.12.118+deb12-amd64"; bash arithmetic then aborts
    # ./check before the test runs.
    (
        "value too great for base",
        "the suite cannot parse this kernel's release {release} "
        "(a suite quirk, not a kernel failure): {line}",
    ),
)


def suite_quirk(output: str, release: str = "") -> str:
    """The reason a suite stopped before the test for a quirk of its own ('' for none)."""
    for needle, text in QUIRKS:
        for line in output.splitlines():
            if needle in line:
                return text.format(release=release or os.uname().release, line=line.strip())
    return ""


def known(outcome: Outcome, reason: str | None) -> Outcome:
    """A test on the kernel's known-failure list: its failure is known (xfail); a pass is
    said, so the list can be pruned."""
    if not reason:
        return outcome
    details = {**outcome.details, "known_failure": reason}
    if outcome.status == "fail":
        message = f"known failure ({reason}): {outcome.message}"
        return Outcome("xfail", message, outcome.metrics, details)
    if outcome.status == "pass":
        message = f"passes now; listed as a known failure ({reason}): drop it from the list"
        return Outcome("pass", message, outcome.metrics, {**details, "known_now_passes": True})
    return Outcome(outcome.status, outcome.message, outcome.metrics, details)
