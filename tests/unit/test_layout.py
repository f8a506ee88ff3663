"""The house: every command has a module named after it and is wired, exit codes live in
one place, run requests and plans serialise and shard."""

import ast
import json
from pathlib import Path

import pytest

from harness.cli import main as cli_main
from harness.cli.main import build_parser, main
from harness.run.request import RunRequest
from harness.suite.plan import Plan
from harness.suite.plans import PLANS, build_plan
from harness.vm.console import Timeouts

ROOT = Path(__file__).resolve().parents[2]
DISKS = [
    {"name": "nvme0", "bus": "nvme", "serial": "nvme0"},
    {"name": "scsi0", "bus": "scsi", "serial": "scsi0"},
]


def test_every_command_module_is_wired_and_named_after_its_command() -> None:
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    modules = {p.stem for p in (ROOT / "harness/cli").glob("*.py")}
    helpers = {"__init__", "main", "exits", "progress", "hosts", "options"}
    for module in cli_main.COMMANDS:
        name = module.__name__.rsplit(".", 1)[1].replace("_", "-")
        assert name in commands, f"{module.__name__} is not wired"
    assert {c.replace("-", "_") for c in commands} == modules - helpers


def test_exit_codes_are_defined_once() -> None:
    """Only harness/cli/exits.py assigns EXIT_* names; nothing below the CLI calls sys.exit."""
    for path in (ROOT / "harness").rglob("*.py"):
        tree = ast.parse(path.read_text())
        # an `if __name__ == "__main__":` block is a program's edge of its own
        tree.body = [
            n
            for n in tree.body
            if not (isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
        ]
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                names += [
                    e.id
                    for t in node.targets
                    if isinstance(t, ast.Tuple)
                    for e in t.elts
                    if isinstance(e, ast.Name)
                ]
                if any(n.startswith("EXIT_") for n in names):
                    assert path.name == "exits.py", f"{path} defines {names}"
            if isinstance(node, ast.Attribute) and node.attr == "exit":
                assert path.name == "__main__.py", f"{path} calls exit"


def test_no_module_over_400_lines_no_function_over_60() -> None:
    for path in [*(ROOT / "harness").rglob("*.py"), *(ROOT / "guest").glob("*.py")]:
        text = path.read_text()
        assert len(text.splitlines()) <= 420, f"{path}: {len(text.splitlines())} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                assert length <= 60, f"{path}:{node.name} is {length} lines"


def test_run_request_round_trips_through_json() -> None:
    req = RunRequest(
        kernel="src:debian:linux-source-6.12+series=/tmp/x.mbox",
        out_dir=Path("/tmp/out/0-k"),
        topology="all-buses",
        plan="loop",
        accel="tcg",
        repetition=2,
        append=("loop.harness_spin_us=5", "quiet"),
        runtime_s=7,
        timeouts=Timeouts(boot_s=100.0, silence_s=50.0, step_grace_s=5.0),
        scratch=Path("/var/tmp/s"),
        keep_images=True,
        shard=(2, 3),
    )
    text = json.dumps(req.to_dict())
    assert RunRequest.from_dict(json.loads(text)) == req
    assert (
        RunRequest.from_dict(RunRequest(kernel="host", out_dir=Path("o")).to_dict()).shard is None
    )


def _plan(name: str) -> Plan:
    return build_plan(name, disks=DISKS, mode="vm", workdir="/tmp/w")


@pytest.mark.parametrize("name", list(PLANS))
@pytest.mark.parametrize("count", [1, 2, 3, 4, 5])
def test_every_step_in_exactly_one_shard_and_targets_stay_whole(name: str, count: int) -> None:
    plan = _plan(name)
    shards = [plan.shard_of(i, count) for i in range(1, count + 1)]
    ids = [s.id for shard in shards for s in shard.steps]
    assert sorted(ids) == sorted(s.id for s in plan.steps) and len(ids) == len(set(ids))
    owners: dict[str, int] = {}
    for index, shard in enumerate(shards):
        assert shard.shard == (index + 1, count)
        for step in shard.steps:
            assert owners.setdefault(step.target_name, index) == index, step.target_name
        order = [s.id for s in plan.steps if s.id in {x.id for x in shard.steps}]
        assert [s.id for s in shard.steps] == order  # plan order kept inside a shard
    # stable: the same cut from a plan rebuilt and from its plan.json
    again = Plan.from_dict(json.loads(json.dumps(_plan(name).to_dict())))
    assert [again.shard_of(i, count).steps for i in range(1, count + 1)] == [
        s.steps for s in shards
    ]


def test_shards_are_balanced_when_targets_allow() -> None:
    plan = _plan("loop")
    loads = [sum(s.timeout_s for s in plan.shard_of(i, 2).steps) for i in (1, 2)]
    assert min(loads) > 0.5 * max(loads), loads


def test_bad_shard_is_a_usage_error(capsys, tmp_path: Path) -> None:
    assert main(["run", "--shard", "3/2", "--out", str(tmp_path)]) == 2
    assert "--shard '3/2': use I/N" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["/proc/harness-x", "FILE"])
def test_unwritable_or_non_directory_out_is_one_line(out: str, tmp_path: Path, capsys) -> None:
    if out == "FILE":
        out = str(tmp_path / "f")
        Path(out).write_text("x")
    assert main(["run", "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out" in err, err
