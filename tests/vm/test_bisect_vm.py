"""Bisect, slow tier: real builds, real TCG boots, real git bisect.

A history of our own on top of the lean base (Debian's linux-source-6.12 snapshot), made
with git plumbing on a branch of the snapshot repository (the extracted tree is never
touched), so every step builds in the lean base's object directory and rebuilds only what
changed:

    c0  the snapshot (good endpoint, the lean base build: a cache hit)
    c1  harmless (documentation)
    c2  does not compile (drivers/block/loop.c)
    c3  fixes the build (loop.c as in c0) + documentation
    c4  BREAKS: loop completes REQ_OP_DISCARD without punching the hole (check sparse fails)
    c5  harmless (documentation): the bad endpoint

Commit ids are fixed (identity and dates), so later sessions hit the build cache.
The git bisect is interrupted after three items and resumed; the list bisect runs a guest
script over three prebuilt kernels, with the first boot of its middle step killed.

A second branch is bisected on a metric (3 runs per step, the default):

    c0  the snapshot (good)
    m1  SLOW: loop busy-waits 2 ms (udelay) in every request it serves
    m2  harmless (documentation): the bad endpoint

Three items, nine boots: the two endpoints, then m1 between them.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness.workflows.bisect import workflow as bisect
from harness.workflows.bisect.state import BisectRequest, load_state
from tests.qemu_killer import QemuKiller

BRANCH = "refs/heads/harness-bisect-test"
LOOP_C = "drivers/block/loop.c"
DOC = "Documentation/admin-guide/blockdev/ramdisk.rst"
DISCARD = "\tcase REQ_OP_DISCARD:\n\t\treturn lo_fallocate(lo, rq, pos, FALLOC_FL_PUNCH_HOLE);\n"
BROKEN = "\tcase REQ_OP_DISCARD:\n\t\treturn 0; /* harness bisect test: discard dropped */\n"
ANCHOR = "static DEFINE_MUTEX(loop_validate_mutex);\n"
NOBUILD = ANCHOR + "static int harness_bisect_nobuild = harness_bisect_undeclared;\n"
SPARSE_PLAN = {
    "name": "bisect-sparse",
    "size_mb": 64,
    "checks": [{"check": "sparse", "targets": ["loop-dio-on-xfs"]}],
}
METRIC_BRANCH = "refs/heads/harness-bisect-metric"
SPINLOCK = "#include <linux/spinlock.h>\n"
FILEBACKED = "\tloff_t pos = ((loff_t) blk_rq_pos(rq) << 9) + lo->lo_offset;\n\n"
SLOW = "\tudelay(2000);\t/* harness bisect test: a slow loop, 2 ms per request */\n\n"
METRIC = "fio/loop-dio-on-xfs/randwrite-4k:write_iops"
METRIC_FIO = [{"workloads": ["randwrite-4k"], "targets": ["loop-dio-on-xfs"]}]
METRIC_PLAN = {"name": "bisect-metric", "runtime_s": 2, "size_mb": 64, "fio": METRIC_FIO}
# exit 0 when a discarded range of a loop device reads back as zeros, 1 when it does not
DISCARD_SCRIPT = """\
d=$(mktemp -d) && mount -t tmpfs tmpfs "$d" || exit 125
truncate -s 16M "$d/img" && dev=$(losetup -f --show "$d/img") || exit 125
dd if=/dev/urandom of="$dev" bs=1M count=2 oflag=direct status=none || exit 125
blkdiscard -o 0 -l 1048576 "$dev" || exit 125
left=$(dd if="$dev" bs=1M count=1 iflag=direct status=none | tr -d '\\000' | wc -c)
losetup -d "$dev"; umount "$d"
echo "non-zero bytes after discard: $left"
[ "$left" -eq 0 ]
"""


def _git(repo: Path, *args: str, env=None, input_text: str | None = None) -> str:
    ident = ["-c", "user.name=harness", "-c", "user.email=harness@localhost"]
    argv = ["git", "-C", str(repo), *ident, *args]
    done = subprocess.run(
        argv, check=True, text=True, capture_output=True, env=env, input=input_text
    )
    return done.stdout.strip()


def _sources(repo: Path, base: str) -> tuple[str, str]:
    return (
        _git(repo, "show", f"{base}:{LOOP_C}") + "\n",
        _git(repo, "show", f"{base}:{DOC}") + "\n",
    )


def make_history(repo: Path, base: str, salt: str = "") -> list[str]:
    """c0..c5 above as commits on BRANCH (plumbing, a private index); returns their ids."""
    loop_c, doc = _sources(repo, base)
    assert DISCARD in loop_c and ANCHOR in loop_c
    versions = [
        ("bisect test: harmless doc line", {DOC: doc + "\n.. harmless 1\n"}),
        ("bisect test: loop does not build", {LOOP_C: loop_c.replace(ANCHOR, NOBUILD)}),
        ("bisect test: fix the build", {LOOP_C: loop_c, DOC: doc + "\n.. harmless 2\n"}),
        ("bisect test: loop drops discards", {LOOP_C: loop_c.replace(DISCARD, BROKEN)}),
        ("bisect test: harmless doc line 3", {DOC: doc + "\n.. harmless 3\n"}),
    ]
    return commit_versions(repo, base, versions, BRANCH, salt)


def make_metric_history(repo: Path, base: str, salt: str = "") -> list[str]:
    """c0, m1, m2 above as commits on METRIC_BRANCH; returns their ids."""
    loop_c, doc = _sources(repo, base)
    assert SPINLOCK in loop_c and FILEBACKED in loop_c
    slow = loop_c.replace(SPINLOCK, SPINLOCK + "#include <linux/delay.h>\n", 1)
    slow = slow.replace(FILEBACKED, FILEBACKED + SLOW, 1)
    versions = [
        ("bisect test: loop busy-waits 2 ms per request", {LOOP_C: slow}),
        ("bisect test: harmless doc line m2", {DOC: doc + "\n.. metric harmless 2\n"}),
    ]
    return commit_versions(repo, base, versions, METRIC_BRANCH, salt)


def commit_versions(
    repo: Path, base: str, versions: list[tuple[str, dict[str, str]]], branch: str, salt: str
) -> list[str]:
    """Each (subject, {path: text}) as a commit on top of the last, `branch` at the tip."""
    with tempfile.TemporaryDirectory() as tmp:
        date = "2001-01-01T00:00:00Z"
        env = {
            **os.environ,
            "GIT_INDEX_FILE": f"{tmp}/index",
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_DATE": date,
        }
        _git(repo, "read-tree", base, env=env)
        commits = [base]
        for subject, files in versions:
            for path, text in files.items():
                blob = _git(repo, "hash-object", "-w", "--stdin", env=env, input_text=text)
                _git(repo, "update-index", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = _git(repo, "write-tree", env=env)
            commits.append(
                _git(repo, "commit-tree", tree, "-p", commits[-1], "-m", subject + salt, env=env)
            )
    _git(repo, "update-ref", branch, commits[-1])
    return commits


@pytest.fixture(scope="module")
def history(lean_base):
    from harness.kernel.source import debian_source

    snap = debian_source("linux-source-6.12")
    return snap.repo, make_history(snap.repo, snap.commit)


@pytest.fixture(scope="module")
def git_bisect(history, tmp_path_factory):
    """The git bisection, interrupted after 3 items (endpoints + 1 step), then resumed."""
    repo, commits = history
    plan = tmp_path_factory.mktemp("plan") / "bisect-sparse.json"
    plan.write_text(json.dumps(SPARSE_PLAN))
    out = tmp_path_factory.mktemp("bisect-git")
    req = BisectRequest(
        "git",
        "check:sparse@loop-dio-on-xfs",
        out,
        good="src:debian:linux-source-6.12",
        bad=f"git:{repo}@harness-bisect-test",
        plan=str(plan),
        accel="tcg",
    )
    _, first = bisect.run_bisect(req, max_steps=3, progress=print)
    state = load_state(out)
    resumed_state, result = bisect.run_bisect(state.request, state=state, progress=print)
    print((out / "bisect.md").read_text())
    return commits, first, state, resumed_state, result


def test_git_bisect_names_the_breaking_commit(git_bisect) -> None:
    commits, _, _, state, result = git_bisect
    assert result.status == "found", result.message
    assert result.first_bad == commits[4] and "drops discards" in result.first_bad_label
    by_item = {s.item: s for s in state.steps}
    assert by_item[commits[0]].outcome == "good" and by_item[commits[5]].outcome == "bad"
    assert "check/sparse/loop-dio-on-xfs failed" in by_item[commits[5]].reason


def test_git_bisect_skips_the_commit_that_does_not_build(git_bisect) -> None:
    commits, _, _, state, _ = git_bisect
    nobuild = next(s for s in state.steps if s.item == commits[2])
    assert (nobuild.outcome, nobuild.resolution) == ("skip", "build-failed")
    assert nobuild.build_log and Path(nobuild.build_log).is_file() and not nobuild.runs


def test_git_bisect_resumes_without_retesting(git_bisect) -> None:
    _, first, interrupted, state, _ = git_bisect
    assert first.status == "interrupted" and len(interrupted.steps) == 3
    assert state.steps[:3] == interrupted.steps
    items = [s.item for s in state.steps]
    assert len(items) == len(set(items))
    doc = (interrupted.request.out_dir / "bisect.json").read_text()
    assert '"first_bad"' in doc and '"steps"' in doc


def test_git_bisect_steps_build_incrementally_in_the_lean_object_dir(git_bisect) -> None:
    commits, _, _, state, _ = git_bisect
    built = [s for s in state.steps if s.resolution == "ok" and s.item != commits[0]]
    for step in built:
        assert step.kernel.startswith("git:") and step.build_log
        log = Path(step.build_log).read_text(errors="replace")
        objects = sum(1 for line in log.splitlines() if line.strip().startswith("CC "))
        assert objects < 40, f"{step.label}: {objects} objects rebuilt"


def _image_spec(kernel) -> str:
    return f"image:{kernel.image}" + (
        f",modules={kernel.modules_dir}" if kernel.modules_dir else ""
    )


def test_list_bisect_with_a_guest_script_and_a_killed_qemu(
    history, tmp_path, host_left_clean
) -> None:
    from harness.kernel.build import kernel_from_spec

    repo, commits = history
    kernels = [kernel_from_spec(f"git:{repo}@{c}") for c in (commits[0], commits[4], commits[5])]
    specs = tuple(_image_spec(k) for k in kernels)
    script = tmp_path / "discard-zeroes.sh"
    script.write_text(DISCARD_SCRIPT)
    killer = QemuKiller()

    def progress(message: str) -> None:
        print(message, flush=True)
        if message.startswith("[2] step"):  # the middle kernel: kill its first boot
            killer.armed.set()

    req = BisectRequest("list", f"script:{script}", tmp_path / "out", kernels=specs, accel="tcg")
    try:
        state, result = bisect.run_bisect(req, progress=progress)
    finally:
        killer.stop.set()
    report = (req.out_dir / "bisect.md").read_text()
    assert killer.killed, f"the injected QEMU kill never happened:\n{report}"
    assert result.status == "found" and result.first_bad == specs[1], result.message
    middle = state.tested()[0]
    # the run engine booted the killed VM again (no kernel evidence: harness.verdict
    # RETRY_VM_EXIT), so the step needed no retry of its own; the first console is kept
    assert [r.outcome for r in middle.runs] == ["bad"], middle.runs
    assert middle.outcome == "bad" and "script exited 1" in middle.reason
    run_dir = Path(middle.runs[0].directory)
    assert list(run_dir.rglob("console.attempt1.log")), "the killed boot's console was not kept"
    verdict = json.loads((run_dir / "results.json").read_text())["runs"][0]["verdict"]
    assert verdict["attempts"] == 2 and verdict["artefacts"][0]["signature"].startswith("vm-exit")
    assert state.steps[0].outcome == "good"


def test_metric_bisect_finds_the_commit_that_slows_loop(lean_base, tmp_path) -> None:
    """Default runs per step (3), judged against the good endpoint's runs with the A/B
    statistics; the table shows good / last good / first bad / bad."""
    from harness.kernel.source import debian_source

    snap = debian_source("linux-source-6.12")
    commits = make_metric_history(snap.repo, snap.commit)
    plan = tmp_path / "bisect-metric.json"
    plan.write_text(json.dumps(METRIC_PLAN))
    req = BisectRequest(
        "git",
        f"metric:{METRIC}:-25%",
        tmp_path / "out",
        runs=3,
        good="src:debian:linux-source-6.12",
        bad=f"git:{snap.repo}@harness-bisect-metric",
        plan=str(plan),
        accel="tcg",
    )
    state, result = bisect.run_bisect(req, progress=print)
    report = (req.out_dir / "bisect.md").read_text()
    print(report)
    assert result.status == "found", result.message
    assert result.first_bad == commits[1] and "busy-waits" in result.first_bad_label
    by_item = {s.item: s for s in state.steps}
    assert all(len(s.runs) == 3 for s in state.steps if s.resolution == "ok")
    assert by_item[commits[0]].outcome == "good" and by_item[commits[2]].outcome == "bad"
    assert by_item[commits[1]].outcome == "bad"
    assert "write_iops" in by_item[commits[2]].reason and "%" in by_item[commits[2]].reason
    for label in ("good", "last good", "first bad", "bad"):
        assert label in report
