"""KCIDB (KernelCI's common results database) JSON from RunResults, validated with kcidb-io.

One checkout per base (the base commit and the series' patchset hash from the kernel's
provenance), one build per kernel, and per run a tree of tests under `harness`:

    harness                         the run's verdict (harness.verdict.classify)
    harness.boot / harness.kernel-log   the synthetic setup case
    harness.fio.raw-nvme0.randread-4k   one test per step
    harness.fio.raw-nvme0.randread-4k.read_iops   one per numeric metric, with `number`

Status mapping. Steps: pass/xfail -> PASS (xfail noted in misc), fail -> FAIL, skip ->
SKIP, error -> ERROR, except an error step of a run that stopped on an infrastructure
error and that never ran (no duration) -> MISS. Runs: pass -> PASS, kernel-failure and
test-failure -> FAIL, infra-error and emulator-artefact -> ERROR. Infrastructure failures
therefore never read FAIL. A run retried after an emulator artefact (or a VM that died)
whose retry passed is PASS; its misc says `attempts` and counts `artefacts`.

KCIDB's patchset_hash is sha256 over the newline-terminated sha256 of each patch, in
order; the kernel's provenance carries it from the build (series_patchset_hash; the
harness's own series_sha256 hashes bodies only, so it goes into misc).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import InfraError
from harness.results.model import RunResult, StepResult, StepStatus
from harness.verdict import EMULATOR_ARTEFACT, INFRA_ERROR, classify

ORIGIN = "harness"
_STEP_STATUS = {"pass": "PASS", "xfail": "PASS", "fail": "FAIL", "skip": "SKIP", "error": "ERROR"}
_VERDICT_STATUS = {INFRA_ERROR: "ERROR", EMULATOR_ARTEFACT: "ERROR"}  # everything else below
_UNITS = (
    ("_us", "s", 1e-6),
    ("_ms", "s", 1e-3),
    ("_s", "s", 1.0),
    ("_mib", "B", 2**20),
    ("_kib", "B", 2**10),
    ("_pct", "%", 1.0),
    ("_iops", "IOPS", 1.0),
)


# Peer suites' tests keep the suite's path (harness.suite.peer.PeerSuite; results/ sits
# below suite/, so the names are repeated here and a test holds them equal).
PEER_SUITES = ("blktests", "fstests")


def _id(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return f"{ORIGIN}:{digest}"


def path_of(step_id: str) -> str:
    """'fio/raw-nvme0/randread-4k' -> 'harness.fio.raw-nvme0.randread-4k' (KCIDB's path
    pattern allows letters, digits, '_' and '-' between dots)."""
    parts = [re.sub(r"[^A-Za-z0-9_-]+", "_", p) for p in re.split(r"[/.]", step_id) if p]
    if parts and parts[0] in PEER_SUITES:  # the suite's own name: 'blktests.loop.004'
        return ".".join(parts)
    return ".".join([ORIGIN, *parts])


def number_of(name: str, value: float) -> dict[str, Any]:
    """A KCIDB test number from a metric whose name ends in its unit."""
    for suffix, unit, scale in _UNITS:
        if name.endswith(suffix):
            prefix = "binary" if unit == "B" else "metric"
            return {"value": value * scale, "unit": unit, "prefix": prefix}
    return {"value": value}


def checkout_of(run: RunResult) -> dict[str, Any]:
    prov = run.kernel.provenance
    base = prov.get("tree_commit", "")
    series = prov.get("series", "")
    checkout: dict[str, Any] = {
        "id": _id("checkout", base or run.kernel.spec, prov.get("series_sha256", "")),
        "origin": ORIGIN,
        "valid": True,
        "comment": f"{run.kernel.spec} ({run.kernel.release})",
        "misc": {
            k: v
            for k, v in prov.items()
            if k
            in (
                "source",
                "packages",
                "origin",
                "series",
                "series_sha256",
                "reverts",
                "variant_commit",
            )
        },
    }
    if re.fullmatch(r"[0-9a-f]{40}", base):
        checkout["git_commit_hash"] = base
    if not series:
        checkout["patchset_hash"] = ""  # KCIDB: no patches applied
    elif digest := prov.get("series_patchset_hash"):  # harness.kernel.series.Series
        checkout["patchset_hash"] = digest
    if run.started:
        checkout["start_time"] = run.started
    return checkout


def build_of(run: RunResult, checkout_id: str) -> dict[str, Any]:
    prov = run.kernel.provenance
    build: dict[str, Any] = {
        "id": _id(
            "build",
            run.kernel.spec,
            run.kernel.release,
            run.kernel.image,
            prov.get("cache_key", ""),
        ),
        "checkout_id": checkout_id,
        "origin": ORIGIN,
        "status": "PASS",
        "comment": run.kernel.spec,
        "misc": {"release": run.kernel.release, "image": run.kernel.image},
    }
    for key, field in (("arch", "architecture"), ("compiler", "compiler")):
        if prov.get(key):
            build[field] = prov[key]
    if prov.get("fragments"):
        build["config_name"] = prov["fragments"]
    return build


def step_status(run: RunResult, step: StepResult) -> str:
    if step.status == StepStatus.ERROR and run.infra_error and step.duration_s == 0:
        return "MISS"  # the harness lost the step before it ran: nothing about the code
    return _STEP_STATUS[step.status]


def _test(run: RunResult, build_id: str, path: str, status: str) -> dict[str, Any]:
    test: dict[str, Any] = {
        "id": _id("test", build_id, run.topology, str(run.repetition), run.started, path),
        "build_id": build_id,
        "origin": ORIGIN,
        "path": path,
        "status": status,
        "environment": {
            "comment": f"{run.environment.accel} / {run.topology}",
            "misc": run.environment.properties(),
        },
    }
    if run.started:
        test["start_time"] = run.started
    if run.console_log.startswith("/"):
        test["log_url"] = Path(run.console_log).as_uri()
    return test


def tests_of(run: RunResult, build_id: str) -> list[dict[str, Any]]:
    verdict = classify(run)
    root = _test(run, build_id, ORIGIN, _VERDICT_STATUS.get(verdict.cls, "PASS"))
    if verdict.failed:
        root["status"] = "FAIL"
    root.update(duration=run.duration_s, comment=verdict.summary or verdict.cls)
    root["misc"] = {"verdict": verdict.cls, "plan": run.plan, "repetition": run.repetition}
    if verdict.attempts > 1 or verdict.artefacts:
        root["misc"].update(attempts=verdict.attempts, artefacts=len(verdict.artefacts))
    tests = [root]
    for step in run.steps:
        status = step_status(run, step)
        test = _test(run, build_id, path_of(step.id), status)
        test.update(duration=step.duration_s, misc={"harness_status": step.status})
        if step.message:
            test["comment"] = step.message[:1000]
        if step.splats:
            test["log_excerpt"] = step.splats[0].excerpt[:16000]
        tests.append(test)
        for name, value in sorted(step.metrics.items()):
            if isinstance(value, int | float) and value == value:  # finite numbers only
                metric = _test(run, build_id, f"{path_of(step.id)}.{name}", status)
                metric["number"] = number_of(name, float(value))
                tests.append(metric)
    return tests


def kcidb_document(runs: Sequence[RunResult]) -> dict[str, Any]:
    """The KCIDB JSON (latest schema version kcidb-io knows) for `runs`, validated."""
    from kcidb_io.schema import LATEST

    data = LATEST.new()
    checkouts: dict[str, Any] = {}
    builds: dict[str, Any] = {}
    tests: list[dict[str, Any]] = []
    for run in runs:
        checkout = checkout_of(run)
        checkouts.setdefault(checkout["id"], checkout)
        build = build_of(run, checkout["id"])
        builds.setdefault(build["id"], build)
        tests.extend(tests_of(run, build["id"]))
    data.update(checkouts=list(checkouts.values()), builds=list(builds.values()), tests=tests)
    validate(data)
    return data


def validate(data: dict[str, Any]) -> None:
    """kcidb-io's schema validation; its first complaint as a one-line InfraError (a
    document this module wrote that does not validate is the harness's fault)."""
    import jsonschema
    from kcidb_io.schema import LATEST

    try:
        LATEST.validate(data)
    except jsonschema.exceptions.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise InfraError(f"KCIDB document invalid at {where or 'top'}: {exc.message}") from exc
