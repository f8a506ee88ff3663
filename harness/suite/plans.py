"""Plans: which workloads run on which targets and which checks, built into plan.json.

A plan (named, or a JSON file of the same shape) looks like:

    {"name": "mine", "description": "...", "runtime_s": 5, "size_mb": 256,
     "trace_stack": false,
     "targets": {"my-loop": {"kind": "loop", "fs": "xfs", "disk": "nvme0", ...}},
     "fio": [{"workloads": ["randread-4k"], "targets": ["raw-nvme0", "my-loop"],
              "fio": {"iodepth": 32}, "timeout_s": 120}],
     "checks": [{"check": "sparse", "targets": ["loop-dio-on-xfs"], "params": {}}]}

`targets` adds or overrides target definitions; each fio group's `fio` overrides options
of every workload in it, from the allow-list in guest/fio_options.py (no filename,
directory, exec_* or file-naming options: the agent runs as root in host mode). Workloads
limited to some target kinds are left out elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness_guest import fio_options

from harness.errors import UserError
from harness.suite import checks, stack_scope, targets, workloads
from harness.suite.plan import Plan, Step

SHORT = ["randread-4k", "randwrite-4k"]
_QUICK_TARGETS = ["raw-nvme0", "raw-scsi0", "file-xfs", "loop-dio-on-xfs", "loop-dio-off-xfs"]
_UPSTREAM = [t.name for t in targets.TARGETS.values() if "upstream" in t.tags]
_ALL_TARGETS = [t for t in targets.TARGETS if t not in _UPSTREAM]
QUICK_CHECKS = ("sparse", "reflink", "truncate")

PLANS: dict[str, dict[str, Any]] = {
    "none": {"description": "no harness steps: only the peer suites given with --suite"},
    "quick": {
        "description": "short 4k fio on raw NVMe, raw SCSI, a file on XFS, loop dio on/off; "
        "the sparse/discard, reflink and truncate checks on loop (dio on) over XFS",
        "runtime_s": 3,
        "size_mb": 128,
        "fio": [{"workloads": SHORT, "targets": _QUICK_TARGETS}],
        # The checks the harness exists for, on one loop target: the same definitions as
        # the `loop` plan's, at the plan's small size (each a few seconds under TCG).
        "checks": [{"check": c, "targets": ["loop-dio-on-xfs"]} for c in QUICK_CHECKS],
    },
    "loop": {
        "description": "every check, and the short workloads plus the seeds' loop rows "
        "(shortened) on every target, but upstream-failures' own; sized for TCG",
        "runtime_s": 3,
        "size_mb": 192,
        "trace_stack": True,
        "fio": [
            {
                "workloads": [*SHORT, "uring-randread-4k", "uring-hipri-randread-4k"],
                "targets": _ALL_TARGETS,
            },
            {
                "workloads": ["ming-randwrite-sparse", "mikulas-rw-libaio"],
                "targets": ["loop-dio-on-xfs", "loop-dio-off-xfs"],
            },
        ],
        "checks": [
            {"check": c.name, "targets": list(c.targets)}
            for c in checks.CHECKS.values()
            if "upstream" not in c.tags
        ],
    },
    "seeds": {
        "description": "the seeds' full-length fio lines (real hardware: minutes per row)",
        "size_mb": 4096,
        "fio": [
            {
                "workloads": [
                    "mikulas-rw-psync",
                    "mikulas-rw-libaio",
                    "seq-read-1m",
                    "seq-write-1m",
                ],
                "targets": [
                    "raw-nvme0",
                    "file-xfs",
                    "file-ext4",
                    "loop-dio-on-xfs",
                    "loop-dio-off-xfs",
                    "loop-dio-on-ext4",
                    "dm-linear-xfs",
                ],
            },
            {
                "workloads": ["ming-randwrite-sparse", "ming-write-sparse"],
                "targets": ["loop-dio-on-xfs", "loop-dio-off-xfs"],
            },
            {
                "workloads": ["uring-randread-4k", "uring-hipri-randread-4k"],
                "targets": ["raw-nvme0", "loop-dio-on-xfs"],
            },
        ],
    },
    "upstream-failures": {
        "description": "the configurations where the loop NOWAIT series broke upstream: loop "
        "on XFS on dm-linear/stripe/crypt, nested loops, ext4 on loop on ext4 (stack through "
        "the submission path), online resize, wbt-throttled writes, plug re-entry; ~10 min TCG",
        "runtime_s": 3,
        "size_mb": 128,
        "stack_scope": "submission",
        "checks": [
            {
                "check": "stack",
                "targets": _UPSTREAM,
                "params": {"runtime_s": 4, "size_mb": 64, "rw": "randrw"},
            },
            *(
                {"check": c.name, "targets": list(c.targets)}
                for c in checks.CHECKS.values()
                if "upstream" in c.tags
            ),
        ],
    },
}

_PLAN_KEYS = {
    "name",
    "description",
    "runtime_s",
    "size_mb",
    "trace_stack",
    "targets",
    "fio",
    "checks",
    "stack_scope",
}


def list_plans() -> list[tuple[str, str]]:
    return [(name, p["description"]) for name, p in PLANS.items()]


def list_workloads() -> list[tuple[str, str]]:
    return [(w.name, f"{w.description} [{','.join(w.tags)}]") for w in workloads.WORKLOADS.values()]


def list_targets() -> list[tuple[str, str]]:
    return [(t.name, f"{t.description} [{','.join(t.tags)}]") for t in targets.TARGETS.values()]


def list_checks() -> list[tuple[str, str]]:
    return [(c.name, c.description) for c in checks.CHECKS.values()]


def load_plan_source(plan: str) -> tuple[str, dict[str, Any]]:
    """(name, plan dict) from a plan name or a JSON file path; UserError names the problem."""
    if plan in PLANS:
        return plan, PLANS[plan]
    path = Path(plan)
    if not path.is_file():
        raise UserError(f"unknown plan {plan!r}: use one of {', '.join(PLANS)} or a JSON file")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"plan file {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UserError(f"plan file {path}: must hold a JSON object")
    unknown = set(data) - _PLAN_KEYS
    if unknown:
        raise UserError(
            f"plan file {path}: unknown keys {sorted(unknown)}; allowed: {sorted(_PLAN_KEYS)}"
        )
    return str(data.get("name") or path.stem), data


def _list_of_str(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{where} must be a list of names")
    return value


def _target_table(source: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    table = {name: t.spec for name, t in targets.TARGETS.items()}
    extra = source.get("targets", {})
    if not isinstance(extra, dict):
        raise UserError(f"{where}: 'targets' must map names to target objects")
    for name, spec in extra.items():
        if not isinstance(spec, dict) or spec.get("kind") not in (
            "raw",
            "file",
            "loop",
            "nested-loop",
            "dm-linear",
            "stacked",
        ):
            raise UserError(
                f"{where}: target {name!r} needs kind raw|file|loop|nested-loop|dm-linear|stacked"
            )
        table[name] = dict(spec)
    return table


def _resolve_target(
    name: str, table: dict[str, dict[str, Any]], disks: list[dict], mode: str, size_mb: int | None
) -> dict[str, Any]:
    """The plan.json target: named spec, size applied, disk dropped where host mode lacks it."""
    if name not in table:
        raise UserError(f"unknown target {name!r}: see 'harness list targets'")
    spec = {"name": name, **table[name]}
    if size_mb is not None and spec["kind"] != "raw":
        spec["size_mb"] = size_mb
    names = {d["name"] for d in disks}
    if mode == "host" and spec["kind"] != "raw" and spec.get("disk") not in names:
        spec.pop("disk", None)  # the agent makes a scratch image under workdir instead
    return spec


def _fio_steps(source: dict, table: dict, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    steps = []
    for i, group in enumerate(source.get("fio", [])):
        where = f"plan {ctx['name']}: fio group {i}"
        if not isinstance(group, dict):
            raise UserError(f"{where} must be an object with 'workloads' and 'targets'")
        overrides = group.get("fio", {})
        refused = fio_options.problems(overrides)
        if refused:
            raise UserError(f"{where}: " + "; ".join(refused))
        for tname in _list_of_str(group.get("targets"), f"{where} 'targets'"):
            target = _resolve_target(tname, table, ctx["disks"], ctx["mode"], ctx["size_mb"])
            for wname in _list_of_str(group.get("workloads"), f"{where} 'workloads'"):
                wl = workloads.get(wname)
                if wl.target_kinds and target["kind"] not in wl.target_kinds:
                    continue
                workload = wl.to_plan(ctx["runtime_s"], None)
                workload["fio"].update(overrides)
                runtime = int(workload["fio"].get("runtime", 30))
                steps.append(
                    {
                        "id": f"fio/{tname}/{wname}",
                        "kind": "fio",
                        "timeout_s": int(group.get("timeout_s", 180 + 3 * runtime)),
                        "target": target,
                        "workload": workload,
                    }
                )
    return steps


def _check_steps(source: dict, table: dict, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    steps = []
    for i, entry in enumerate(source.get("checks", [])):
        where = f"plan {ctx['name']}: checks entry {i}"
        if not isinstance(entry, dict) or entry.get("check") not in checks.CHECKS:
            raise UserError(f"{where}: 'check' must be one of {', '.join(checks.CHECKS)}")
        check = checks.CHECKS[entry["check"]]
        names = entry.get("targets", list(check.targets))
        for tname in _list_of_str(names, f"{where} 'targets'"):
            target = _resolve_target(tname, table, ctx["disks"], ctx["mode"], ctx["size_mb"])
            step = {
                "id": f"check/{check.name}/{tname}",
                "kind": "check",
                "check": check.name,
                "timeout_s": int(entry.get("timeout_s", check.timeout_s)),
                "target": target,
                "params": {**check.params, **entry.get("params", {})},
            }
            known = targets.TARGETS.get(tname)
            note = known.notes.get(check.name) if known else None
            if entry.get("xfail") or note:
                step["xfail"] = entry.get("xfail") or note
            steps.append(step)
    return steps


def build_plan(
    plan: str,
    *,
    disks: list[dict[str, Any]],
    mode: str,
    workdir: str,
    runtime_s: int | None = None,
    size_mb: int | None = None,
) -> Plan:
    """The typed Plan (plan.json is its to_dict(), docs/CONTRACT.md) for a named plan or a
    plan file.

    `disks` are the {"name","bus","serial"} (or "path" in host mode) the topology attached;
    runtime_s/size_mb override the plan's own. Steps are ordered by target so that the
    agent prepares each target once for its run of fio steps.
    """
    if mode not in ("vm", "host"):
        raise UserError(f"mode must be vm or host, not {mode!r}")
    name, source = load_plan_source(plan)
    table = _target_table(source, f"plan {name}")
    ctx = {
        "name": name,
        "disks": disks,
        "mode": mode,
        "runtime_s": runtime_s if runtime_s is not None else source.get("runtime_s"),
        "size_mb": size_mb if size_mb is not None else source.get("size_mb"),
    }
    fio_steps = _fio_steps(source, table, ctx)
    order = {t: i for i, t in enumerate(dict.fromkeys(s["target"]["name"] for s in fio_steps))}
    fio_steps.sort(key=lambda s: order[s["target"]["name"]])  # stable: workload order kept
    steps = fio_steps + _check_steps(source, table, ctx)
    if not steps and name != "none":
        raise UserError(f"plan {name} has no steps: give it 'fio' groups or 'checks'")
    return Plan(
        name=name,
        mode=mode,
        workdir=workdir,
        disks=tuple(disks),
        steps=tuple(Step.from_dict(s) for s in steps),
        trace_stack=bool(source.get("trace_stack", False)),
        stack_scope=stack_scope.resolve(source.get("stack_scope"), f"plan {name}"),
    )
