"""Cost mode (--measure cost): QEMU instruction counting words, request validation, labels."""

import dataclasses
import shlex
from pathlib import Path

import pytest

from harness.cli.main import build_parser
from harness.cli.run import requests_from
from harness.errors import UserError
from harness.run.request import RunRequest
from harness.vm.launch import COST_QEMU_ARGS, BootSpec, vng_argv
from harness.workflows.ab import workflow as ab

SPEC = BootSpec(
    image=Path("/boot/vmlinuz"),
    exec_argv=("python3", "/a.py"),
    rw_dirs=(Path("/tmp/shared"),),
    qemu_args=("-device", "nvme,id=n0"),
    accel="tcg",
)


def qemu_words(argv):
    opts = next(a for a in argv if a.startswith("--qemu-opts="))
    return shlex.split(opts.removeprefix("--qemu-opts="))


def test_wall_is_the_default_and_names_multi_threaded_tcg():
    argv = vng_argv(SPEC)
    assert qemu_words(argv) == ["-device", "nvme,id=n0", "-accel", "tcg,thread=multi"]
    assert RunRequest("debian:6.12", Path("/o")).measure == "wall"


def test_cost_mode_counts_instructions_on_single_threaded_tcg():
    argv = vng_argv(dataclasses.replace(SPEC, measure="cost", accel="kvm"))
    assert "--disable-kvm" in argv
    assert qemu_words(argv) == ["-device", "nvme,id=n0", *COST_QEMU_ARGS]
    assert COST_QEMU_ARGS == (
        "-accel",
        "tcg,thread=single",
        "-icount",
        "shift=0,sleep=off,align=off",
    )


def test_cost_mode_without_disks_still_passes_qemu_words():
    argv = vng_argv(dataclasses.replace(SPEC, qemu_args=(), measure="cost"))
    assert qemu_words(argv) == list(COST_QEMU_ARGS)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"measure": "cycles"}, "use one of wall, cost"),
        ({"measure": "cost", "kernel": "host"}, "needs a VM kernel"),
        ({"measure": "cost", "accel": "kvm"}, "--accel tcg or auto"),
    ],
)
def test_bad_measure_requests_are_user_errors(kw, match):
    with pytest.raises(UserError, match=match):
        RunRequest(**{"kernel": "debian:6.12", "out_dir": Path("/o"), **kw})


def test_request_round_trip_keeps_the_measure():
    req = RunRequest("debian:6.12", Path("/o"), measure="cost")
    assert RunRequest.from_dict(req.to_dict()) == req


def test_run_cli_carries_measure(tmp_path):
    ns = build_parser().parse_args(["run", "--measure", "cost", "--out", str(tmp_path)])
    assert {r.measure for r in requests_from(ns)} == {"cost"}
    ns = build_parser().parse_args(["run", "--out", str(tmp_path)])
    assert {r.measure for r in requests_from(ns)} == {"wall"}


def test_ab_request_passes_measure_to_every_run_and_the_reproducer(tmp_path):
    req = ab.AbRequest(
        ab.Side(ab.BASE, "debian:6.12"),
        ab.Side(ab.CANDIDATE, "debian:6.12"),
        tmp_path,
        measure="cost",
    )
    slots = ab.schedule(req.sides, 2)
    assert {ab.run_request(req, s).measure for s in slots} == {"cost"}
    assert ab.ab_argv(req)[-2:] == ["--measure", "cost"]
    assert ab.AbRequest.from_dict(req.to_dict()) == req
    assert "--measure" not in ab.ab_argv(dataclasses.replace(req, measure="wall"))


def test_run_report_labels_cost_figures():
    from harness.report.markdown import markdown
    from harness.results.model import Environment, KernelInfo, RunResult

    env = Environment(accel="tcg", measure="cost")
    run = RunResult(KernelInfo("debian:6.12"), env, "default", "quick")
    assert "Measure: cost - COST figures: QEMU instruction counting" in markdown([run])
    wall = dataclasses.replace(run, environment=Environment(accel="tcg"))
    assert "Measure: wall" in markdown([wall])


def test_ab_cli_carries_measure(tmp_path):
    from harness.cli.ab import request_from_args

    argv = ["ab", "--base", "debian:6.12", "--candidate", "debian:6.12", "--out", str(tmp_path)]
    assert request_from_args(build_parser().parse_args([*argv, "--measure", "cost"])).measure == (
        "cost"
    )
    assert request_from_args(build_parser().parse_args(argv)).measure == "wall"
