"""Cut a plan into shards for CI job matrices and remote hosts.

`matrix()` turns (plan, kernels, shard count) into one ShardJob per kernel x shard; the
formatters print it the way each CI engine reads a matrix: GitHub's `fromJSON` include list,
a GitLab child pipeline with `parallel:matrix`, or plain JSON. Each job runs
`harness run --kernel K --shard I/N`; `harness merge` puts the shards back together.

A sharded `harness run` writes shard.json beside its results.json: its index/count and the
full plan's step order per kernel (`write_shard_record`), so a merge restores plan order
and sees which shard is missing without rebuilding the plan.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.kernel.model import Kernel
from harness.results.files import atomic_write_text
from harness.run import peer as peer_run
from harness.run.request import RunRequest
from harness.suite import plans
from harness.suite.peer import SuiteSpec, parse_suite
from harness.suite.plan import Plan
from harness.vm import topology as topo_mod

FORMATS = ("github", "gitlab", "json")
SHARD_FILE = "shard.json"  # beside results.json of `harness run --shard`


@dataclass(frozen=True)
class ShardJob:
    """One cell of the job matrix: a kernel and a shard of the plan."""

    kernel: str
    index: int
    count: int
    plan: str
    topology: str
    steps: tuple[str, ...]
    cost_s: int  # sum of the shard's step timeouts: the balance the cut aims for
    suites: tuple[str, ...] = ()  # --suite texts: their tests are cut one by one

    @property
    def shard(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def name(self) -> str:
        return f"{self.kernel} {self.shard}"

    @property
    def slug(self) -> str:
        """A name safe for artifact names and directories, e.g. debian_6.12-shard-1of2."""
        kernel = "".join(c if c.isalnum() or c in ".-" else "_" for c in self.kernel)
        return f"{kernel}-shard-{self.index}of{self.count}"

    def run_argv(self) -> list[str]:
        """The command the job runs (the out dir is the job's slug under out/)."""
        argv = [
            "harness",
            "run",
            "--kernel",
            self.kernel,
            "--plan",
            self.plan,
            "--topology",
            self.topology,
            *(word for text in self.suites for word in ("--suite", text)),
            "--shard",
            self.shard,
            "--out",
            f"out/{self.slug}",
        ]
        return argv + (["--scratch", f"scratch/{self.slug}"] if self.kernel == "host" else [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kernel": self.kernel,
            "shard": self.shard,
            "index": self.index,
            "count": self.count,
            "plan": self.plan,
            "topology": self.topology,
            "slug": self.slug,
            "suites": list(self.suites),
            "steps": len(self.steps),
            "cost_s": self.cost_s,
            "command": shlex.join(self.run_argv()),
        }


def plan_for(
    plan: str,
    topology: str,
    host_mode: bool,
    suites: Sequence[str] = (),
    build_suite: Callable[[SuiteSpec], Path] = peer_run.build,
) -> Plan:
    """The plan as `harness run` builds it (host mode has no disks; step ids and order do
    not depend on the workdir or runtime), with the suites' tests (built on this host to
    list them) after the plan's steps."""
    if host_mode:
        return plans.build_plan(plan, disks=[], mode="host", workdir="/scratch/harness-work")
    topo = topo_mod.load(topology)
    full = plans.build_plan(plan, disks=topo.plan_disks(), mode="vm", workdir="/tmp/w")
    if not suites:
        return full
    specs = tuple(parse_suite(text) for text in suites)
    return peer_run.with_suites(full, specs, "", build_suite)


def matrix(
    plan: str,
    kernels: Sequence[str],
    count: int,
    topology: str,
    suites: Sequence[str] = (),
    build_suite: Callable[[SuiteSpec], Path] = peer_run.build,
) -> list[ShardJob]:
    """One job per kernel x shard, in kernel then shard order. A shard that would be empty
    (more shards than the plan has units: targets, and each suite test) is a usage error,
    not an idle CI job."""
    if count < 1:
        raise UserError(f"--shards {count}: use a positive number of shards")
    jobs = []
    for kernel in kernels:
        full = plan_for(plan, topology, kernel == "host", suites, build_suite)
        if count > len(full.groups()):
            raise UserError(
                f"plan {full.name} has {len(full.groups())} unit(s) (targets and suite tests), "
                f"and a shard keeps a target whole: use --shards {len(full.groups())} or fewer"
            )
        for index in range(1, count + 1):
            part = full.shard_of(index, count)
            steps = tuple(s.id for s in part.steps)
            cost = sum(s.timeout_s for s in part.steps)
            jobs.append(ShardJob(kernel, index, count, plan, topology, steps, cost, tuple(suites)))
    return jobs


def github_matrix(jobs: Sequence[ShardJob]) -> str:
    """One line of JSON for `strategy.matrix: ${{ fromJSON(...) }}` ({"include": [...]})."""
    return json.dumps({"include": [j.to_dict() for j in jobs]}, separators=(",", ":"))


def gitlab_pipeline(jobs: Sequence[ShardJob]) -> str:
    """A child pipeline (YAML is a superset of JSON, so this is JSON): one `parallel:matrix`
    job per plan running every shard with one JUnit report each, then a merge job."""
    cells: dict[str, list[str]] = {}
    for j in jobs:
        cells.setdefault(j.kernel, []).append(j.shard)
    first = jobs[0]
    suites = "".join(f"--suite {shlex.quote(text)} " for text in first.suites)
    run = (
        '.venv/bin/harness run --kernel "$KERNEL" --shard "$SHARD" '
        f"--plan {shlex.quote(first.plan)} --topology {shlex.quote(first.topology)} {suites}"
        '--out "out/$CI_JOB_ID" || test $? -eq 1'
    )  # exit 1: a verdict; merge decides
    doc = {
        "stages": ["shard", "merge"],
        "default": {"image": "debian:bookworm", "before_script": ["./bootstrap.sh"]},
        "harness-shard": {
            "stage": "shard",
            "parallel": {"matrix": [{"KERNEL": k, "SHARD": s} for k, s in cells.items()]},
            "script": [run],
            "artifacts": {
                "when": "always",
                "paths": ["out/"],
                "reports": {"junit": "out/$CI_JOB_ID/junit.xml"},
            },
        },
        "harness-merge": {
            "stage": "merge",
            "needs": ["harness-shard"],
            "when": "always",
            "script": [".venv/bin/harness merge out/* --out merged"],
            "artifacts": {
                "when": "always",
                "paths": ["merged/"],
                "reports": {"junit": "merged/junit.xml"},
            },
        },
    }
    return json.dumps(doc, indent=2)


def render(jobs: Sequence[ShardJob], fmt: str) -> str:
    if fmt == "github":
        return github_matrix(jobs)
    if fmt == "gitlab":
        return gitlab_pipeline(jobs)
    if fmt == "json":
        return json.dumps([j.to_dict() for j in jobs], indent=2)
    raise UserError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")


def full_plan_steps(req: RunRequest, kernel: Kernel) -> list[str]:
    """The step ids of the whole (unsharded) plan this request runs, in plan order."""
    from harness.run.engine import executor_for  # the engine imports the executors

    return [s.id for s in executor_for(kernel).plan(replace(req, shard=None), kernel).steps]


def write_shard_record(
    out: Path, requests: Sequence[RunRequest], kernels: Sequence[Kernel]
) -> None:
    """OUT/shard.json for a sharded `harness run` (nothing when not sharded): which shard,
    and each kernel's full plan order, so `harness merge` needs nothing else."""
    if not requests or requests[0].shard is None:
        return
    index, count = requests[0].shard
    order = {k.spec: full_plan_steps(r, k) for r, k in zip(requests, kernels, strict=True)}
    record = {"index": index, "count": count, "plan": requests[0].plan, "plan_steps": order}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SHARD_FILE, json.dumps(record, indent=1) + "\n")
