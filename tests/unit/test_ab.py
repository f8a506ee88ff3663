"""A/B orchestration: interleaving order, stored results, early guard, regeneration, CLI."""

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from harness.cli.ab import request_from_args
from harness.cli.main import build_parser, main
from harness.errors import UserError
from harness.results.model import Environment, KernelInfo, RunResult, StepResult
from harness.workflows.ab import workflow as ab

ENV = Environment(accel="tcg", qemu_version="7.2.19", host_fs="ext4", cpus=2)
STEP = "fio/raw-nvme0/randread-4k"


@dataclasses.dataclass
class FakeVmRequest:
    """What run_one receives in these tests: the slot, so the recorder sees the order."""

    slot: ab.Slot
    out_dir: Path


class Recorder:
    """A real run_one: returns a RunResult whose IOPS depend on the side, logs the order."""

    def __init__(self, cand_factor=1.0, cand_env=ENV):
        self.calls: list[str] = []
        self.cand_factor = cand_factor
        self.cand_env = cand_env

    def __call__(self, request: FakeVmRequest) -> RunResult:
        slot = request.slot
        self.calls.append(slot.name)
        cand = slot.side.label == ab.CANDIDATE
        iops = (1000.0 + 7 * slot.rep) * (self.cand_factor if cand else 1.0)
        step = StepResult(
            STEP,
            "fio",
            "pass",
            metrics={"read_iops": iops},
            details={"fio_argv": ["fio", "--rw=randread", "--bs=4k"]},
        )
        return RunResult(
            KernelInfo(slot.side.kernel, provenance={"sha256": "ab12"}),
            self.cand_env if cand else ENV,
            slot.side.topology,
            "quick",
            steps=(step,),
            repetition=slot.rep,
        )


def fake_request(req: ab.AbRequest, slot: ab.Slot) -> FakeVmRequest:
    return FakeVmRequest(slot, req.out_dir / "runs" / slot.name)


def make_req(tmp_path, **kw) -> ab.AbRequest:
    fields = {
        "base": ab.Side(ab.BASE, "debian:6.12"),
        "candidate": ab.Side(ab.CANDIDATE, "debian:6.12"),
        "out_dir": tmp_path / "out",
        "reps": 3,
        **kw,
    }
    return ab.AbRequest(**fields)


def test_schedule_alternates_sides_and_rotates_their_order():
    sides = [ab.Side("base", "a"), ab.Side("candidate", "b")]
    assert [s.name for s in ab.schedule(sides, 3)] == [
        "rep0-base",
        "rep0-candidate",
        "rep1-candidate",
        "rep1-base",
        "rep2-base",
        "rep2-candidate",
    ]
    three = [*sides, ab.Side("slow", "c")]
    order = [s.side.label for s in ab.schedule(three, 3)]
    assert order == [
        "base",
        "candidate",
        "slow",
        "candidate",
        "slow",
        "base",
        "slow",
        "base",
        "candidate",
    ]
    # each side in each place once: a Latin square
    assert all(sorted(order[i::3]) == ["base", "candidate", "slow"] for i in range(3))


def test_run_ab_interleaves_and_writes_every_output(tmp_path):
    rec = Recorder(cand_factor=0.7)
    req = make_req(tmp_path)
    comparison = ab.run_ab(req, rec, make_request=fake_request)
    assert rec.calls == [
        "rep0-base",
        "rep0-candidate",
        "rep1-candidate",
        "rep1-base",
        "rep2-base",
        "rep2-candidate",
    ]
    assert comparison.verdict == "regression"
    out = req.out_dir
    for name in ("junit.xml", "results.json", "report.md", "report.html", "reproduce.sh"):
        assert (out / name).stat().st_size > 0, name
    stored = json.loads((out / "results.json").read_text())
    assert stored["ab"]["sides"] == ["base", "candidate", "candidate", "base", "base", "candidate"]
    assert len(stored["runs"]) == 6


def test_environment_difference_stops_after_first_pair(tmp_path):
    rec = Recorder(cand_env=dataclasses.replace(ENV, accel="kvm"))
    req = make_req(tmp_path)
    with pytest.raises(UserError, match="accel"):
        ab.run_ab(req, rec, make_request=fake_request)
    assert rec.calls == ["rep0-base", "rep0-candidate"]
    assert len(json.loads((req.out_dir / "results.json").read_text())["runs"]) == 2


def test_allowed_difference_runs_through_and_is_invalid(tmp_path):
    rec = Recorder(cand_env=dataclasses.replace(ENV, accel="kvm"))
    req = make_req(tmp_path, allow_env_diff=("accel",))
    comparison = ab.run_ab(req, rec, make_request=fake_request)
    assert not comparison.valid and len(rec.calls) == 6
    assert "INVALID" in (req.out_dir / "report.md").read_text()


def test_reproducer_reparses_to_the_same_request(tmp_path):
    req = make_req(
        tmp_path,
        plan="tests/data/x.json",
        runtime_s=2,
        accel="tcg",
        candidate=ab.Side(
            ab.CANDIDATE, "image:/k/bzImage", "slow.json", ("loop.hw_queue_depth=1",)
        ),
        allow_env_diff=("topology",),
    )
    ns = build_parser().parse_args([*ab.ab_argv(req), "--out", str(req.out_dir)])
    assert request_from_args(ns) == req
    ab.run_ab(req, Recorder(), make_request=fake_request)
    script = req.out_dir / "reproduce.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "--candidate-append loop.hw_queue_depth=1" in text
    assert "sha256: ab12" in text and "fio --rw=randread --bs=4k" in text
    assert script.stat().st_mode & 0o111


def test_candidate_topology_needs_allowing_up_front():
    ns = build_parser().parse_args(
        ["ab", "--base", "a", "--candidate", "b", "--candidate-topology", "slow.json"]
    )
    with pytest.raises(UserError, match="--allow-env-diff topology"):
        request_from_args(ns)


def test_report_regenerates_and_pools(tmp_path):
    first = make_req(tmp_path)
    second = dataclasses.replace(first, out_dir=tmp_path / "out2")
    ab.run_ab(first, Recorder(cand_factor=0.7), make_request=fake_request)
    ab.run_ab(second, Recorder(cand_factor=0.7), make_request=fake_request)
    (first.out_dir / "report.md").unlink()
    assert main(["report", str(first.out_dir / "results.json")]) == 1
    assert "regression" in (first.out_dir / "report.md").read_text()
    pooled = tmp_path / "pooled"
    rc = main(
        [
            "report",
            str(first.out_dir / "results.json"),
            str(second.out_dir / "results.json"),
            "--out",
            str(pooled),
        ]
    )
    assert rc == 1
    req, comparison = ab.load_comparison([pooled / "results.json"])
    assert req is not None and len(comparison.base_runs) == len(comparison.cand_runs) == 6


def test_report_compares_two_plain_results_files(tmp_path):
    from harness.results.store import save_runs

    rec = Recorder()
    base = [rec(FakeVmRequest(ab.Slot(i, ab.Side(ab.BASE, "a")), tmp_path)) for i in range(3)]
    cand = [rec(FakeVmRequest(ab.Slot(i, ab.Side(ab.CANDIDATE, "b")), tmp_path)) for i in range(3)]
    save_runs(tmp_path / "a.json", base)
    save_runs(tmp_path / "b.json", cand)
    out = tmp_path / "cmp"
    assert (
        main(["report", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(out)]) == 0
    )
    assert "# A/B: a vs b" in (out / "report.md").read_text()
    assert main(["report", str(tmp_path / "a.json")]) == 2  # one plain file: nothing to compare


def test_progress_shows_running_done_and_left(tmp_path):
    import io

    from rich.console import Console

    from harness.cli.progress import RichProgress

    console = Console(file=io.StringIO(), width=120)
    with RichProgress(console) as progress:
        ab.run_ab(
            make_req(tmp_path, reps=2), Recorder(), make_request=fake_request, progress=progress
        )
    text = console.file.getvalue()
    assert "rep0-base: done (1 steps, 0 failed" in text and "rep1-candidate: done" in text
    assert "4/4" in text and "left" in text


def test_reproducer_pins_a_moving_debian_spec_and_hashes_the_image(tmp_path):
    from harness.report.reproducer import pinned_spec

    assert pinned_spec("debian:6.12", "6.12.117+deb12-amd64") == "debian:6.12.117+deb12"
    assert pinned_spec("image:/k/bzImage", "6.19.0-rc1") == "image:/k/bzImage"
    image = tmp_path / "vmlinuz"
    image.write_bytes(b"kernel")

    class WithRelease(Recorder):
        def __call__(self, request):
            run = super().__call__(request)
            kernel = dataclasses.replace(
                run.kernel, release="6.12.117+deb12-amd64", image=str(image)
            )
            return dataclasses.replace(run, kernel=kernel)

    req = make_req(tmp_path)
    ab.run_ab(req, WithRelease(), make_request=fake_request)
    text = (req.out_dir / "reproduce.sh").read_text()
    assert "--base debian:6.12.117+deb12 --candidate debian:6.12.117+deb12" in text
    import hashlib

    assert f"image sha256: {hashlib.sha256(b'kernel').hexdigest()}" in text


def test_plan_and_topology_files_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.json").write_text("{}")
    ns = build_parser().parse_args(
        ["ab", "--base", "a", "--candidate", "b", "--topology", "t.json", "--plan", "quick"]
    )
    req = request_from_args(ns)
    assert req.base.topology == str(tmp_path / "t.json") == req.candidate.topology
    assert req.plan == "quick"
