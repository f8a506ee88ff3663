"""Comparison verdicts on RunResult lists built here (the numbers are chosen, not random)."""

import dataclasses

import pytest

from harness.errors import UserError
from harness.results.compare import SPLAT_STEP, compare, environment_diffs
from harness.results.model import Environment, KernelInfo, RunResult, Splat, StepResult

ENV = Environment(accel="tcg", qemu_version="7.2.19", host_fs="ext4", cpus=2)
FIO = "fio/loop-dio-on-xfs-nvme0/randread-4k"
# Three repetitions of IOPS on TCG with about 2% spread, as the real runs show.
BASE_IOPS = (2010.0, 1985.0, 2040.0)


def run(rep, iops, *, spec="debian:6.12", check="pass", extra=None, splats=(), details=None, **kw):
    metrics = {"read_iops": iops, "read_clat_p50_us": 8_000_000.0 / iops, **(extra or {})}
    steps = (
        StepResult(FIO, "fio", "pass", metrics=metrics, details=dict(details or {})),
        StepResult(
            "check/sparse", "check", check, message="blocks leaked" if check == "fail" else ""
        ),
    )
    fields = {"environment": ENV, "topology": "default", **kw}
    return RunResult(
        KernelInfo(spec), plan="quick", steps=steps, repetition=rep, splats=tuple(splats), **fields
    )


def side(values, **kw):
    return [run(i, v, **kw) for i, v in enumerate(values)]


def verdicts(comparison):
    return {m.name: m.verdict for m in comparison.metrics}


def test_aa_same_numbers_shuffled_is_clean():
    c = compare(side(BASE_IOPS), side(BASE_IOPS[::-1]))
    assert c.verdict == "ok" and c.valid
    assert set(verdicts(c).values()) == {"unchanged"}
    assert all(s.verdict == "pass" for s in c.statuses)


def test_planted_slowdown_is_a_regression_in_the_right_direction():
    slow = [v * 0.8 for v in BASE_IOPS]
    c = compare(side(BASE_IOPS), side(slow, spec="cand"))
    v = verdicts(c)
    assert v[f"{FIO}:read_iops"] == "regression"
    assert v[f"{FIO}:read_clat_p50_us"] == "regression"  # latency rose: lower is better
    m = next(m for m in c.metrics if m.metric == "read_iops")
    assert m.change_pct == pytest.approx(-20.0)
    assert m.q_value < 0.05 and m.base.n == m.cand.n == 3
    assert c.verdict == "regression" and c.cand_label == "cand"


def test_speedup_is_an_improvement_not_a_regression():
    fast = [v * 1.3 for v in BASE_IOPS]
    c = compare(side(BASE_IOPS), side(fast))
    assert verdicts(c)[f"{FIO}:read_iops"] == "improvement"
    assert c.verdict == "ok" and len(c.improvements) == 2


def test_significant_but_below_minimum_is_unchanged():
    base = (2000.0, 2001.0, 2002.0)
    cand = (1960.0, 1961.0, 1962.0)  # -2%: clearly significant, under the 5% minimum
    c = compare(side(base), side(cand))
    m = next(m for m in c.metrics if m.metric == "read_iops")
    assert m.q_value < 0.001
    assert m.verdict == "unchanged"


def test_unknown_metric_is_reported_never_flagged():
    base = side(BASE_IOPS, extra={"mystery_units": 1.0})
    cand = side(BASE_IOPS, extra={"mystery_units": 100.0})
    c = compare(base, cand)
    assert verdicts(c)[f"{FIO}:mystery_units"] == "undirected"
    assert c.verdict == "ok"


def test_blocking_writes_from_zero_uses_absolute_minimum():
    base = side(BASE_IOPS, extra={"nr_blocking_writes": 0.0})
    cand = [
        run(i, v, extra={"nr_blocking_writes": n})
        for i, (v, n) in enumerate(zip(BASE_IOPS, (40.0, 42.0, 41.0), strict=True))
    ]
    c = compare(base, cand)
    m = next(m for m in c.metrics if m.metric == "nr_blocking_writes")
    assert m.change_pct is None and m.verdict == "regression"


def test_single_repetition_is_insufficient():
    c = compare(side(BASE_IOPS[:1]), side([1000.0]))
    assert set(verdicts(c).values()) == {"insufficient"}


@pytest.mark.parametrize(
    ("base_check", "cand_check", "expected"),
    [
        ("pass", "fail", "regression"),
        ("fail", "fail", "pre-existing"),
        ("fail", "pass", "fixed"),
        ("skip", "skip", "skipped"),
        ("xfail", "xfail", "pass"),
        ("pass", "error", "regression"),
    ],
)
def test_check_verdicts(base_check, cand_check, expected):
    c = compare(side(BASE_IOPS, check=base_check), side(BASE_IOPS, check=cand_check))
    s = next(s for s in c.statuses if s.step_id == "check/sparse")
    assert s.verdict == expected
    assert (c.verdict == "regression") == (expected == "regression")


def test_check_failing_in_one_rep_is_a_regression_with_its_message():
    cand = side(BASE_IOPS)
    cand[1] = run(1, BASE_IOPS[1], check="fail")
    c = compare(side(BASE_IOPS), cand)
    s = next(s for s in c.statuses if s.step_id == "check/sparse")
    assert s.verdict == "regression" and "1/3" in s.message and "blocks leaked" in s.message


def test_splat_only_on_candidate_is_a_regression():
    oops = Splat("warning", "WARNING: CPU: 0 PID: 1 at drivers/block/loop.c", 12, "...")
    cand = side(BASE_IOPS)
    cand[2] = run(2, BASE_IOPS[2], splats=(oops,))
    c = compare(side(BASE_IOPS), cand)
    s = next(s for s in c.statuses if s.step_id == SPLAT_STEP)
    assert s.verdict == "regression" and "candidate warning: WARNING: CPU: 0" in s.message
    fixed = next(s for s in compare(cand, side(BASE_IOPS)).statuses if s.step_id == SPLAT_STEP)
    assert fixed.verdict == "fixed" and "base warning: WARNING" in fixed.message


def test_environment_guard_refuses_then_allows_and_marks_invalid():
    cand = side(BASE_IOPS, topology="throttled.json")
    with pytest.raises(UserError, match="--allow-env-diff topology"):
        compare(side(BASE_IOPS), cand)
    c = compare(side(BASE_IOPS), cand, allow_env_diff=["topology"])
    assert not c.valid and c.env_diffs[0].field == "topology"
    with pytest.raises(UserError, match="not a guarded field"):
        compare(side(BASE_IOPS), cand, allow_env_diff=["kernel"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("accel", "kvm"),
        ("measure", "cost"),
        ("qemu_version", "8.2.0"),
        ("host_fs", "xfs"),
        ("cpus", 4),
    ],
)
def test_environment_fields_are_guarded(field, value):
    env = dataclasses.replace(ENV, **{field: value})
    diffs = environment_diffs(side(BASE_IOPS), side(BASE_IOPS, environment=env))
    assert [d.field for d in diffs] == [field]
    with pytest.raises(UserError, match=field):
        compare(side(BASE_IOPS), side(BASE_IOPS, environment=env))


def test_infra_error_runs_add_no_numbers_and_make_it_incomplete():
    cand = side(BASE_IOPS)
    cand.append(
        RunResult(
            KernelInfo("debian:6.12"),
            ENV,
            "default",
            "quick",
            repetition=3,
            infra_error="vng exited 255 before the agent started",
        )
    )
    c = compare(side(BASE_IOPS), cand)
    m = next(m for m in c.metrics if m.metric == "read_iops")
    assert m.cand.n == 3
    assert c.verdict == "incomplete" and "vng exited" in c.infra_errors[0]


def test_no_runs_is_a_user_error():
    with pytest.raises(UserError):
        compare([], side(BASE_IOPS))


def test_step_missing_on_candidate_is_flagged():
    cand = [dataclasses.replace(r, steps=r.steps[:1]) for r in side(BASE_IOPS)]
    c = compare(side(BASE_IOPS), cand)
    s = next(s for s in c.statuses if s.step_id == "check/sparse")
    assert s.verdict == "missing" and c.verdict == "regression"


def test_cost_figures_are_never_compared_with_wall_figures():
    cost = dataclasses.replace(ENV, measure="cost")
    with pytest.raises(UserError, match="measure.*'wall'.*'cost'"):
        compare(side(BASE_IOPS), side(BASE_IOPS, environment=cost))


def test_primary_and_secondary_families_and_effect_next_to_every_verdict():
    extra = {"read_clat_p99_us": 900.0, "ctxsw_per_io": 2.0, "mystery_units": 3.0}
    c = compare(side(BASE_IOPS, extra=extra), side([v * 0.5 for v in BASE_IOPS], extra=extra))
    fam = {m.metric: m.family for m in c.metrics}
    assert fam == {
        "read_iops": "primary",
        "read_clat_p99_us": "primary",
        "read_clat_p50_us": "secondary",
        "ctxsw_per_io": "secondary",
        "mystery_units": "",
    }
    iops = next(m for m in c.metrics if m.metric == "read_iops")
    assert iops.effect.test == "paired-t" and iops.effect.n == 3
    assert iops.effect.estimate == pytest.approx(-50.0)
    assert iops.verdict == "regression"
    assert all(m.effect is not None for m in c.metrics)


def test_pairs_follow_repetitions_not_list_order():
    # Host drift: rep 1 ran at half speed on both sides; the candidate is 20% slower in
    # every pair. Pairing by repetition sees it even though the candidate list is shuffled.
    base = (2000.0, 1000.0, 1800.0)
    cand_by_rep = {0: 1600.0, 1: 800.0, 2: 1440.0}
    cand = [run(r, cand_by_rep[r]) for r in (2, 0, 1)]
    m = next(m for m in compare(side(base), cand).metrics if m.metric == "read_iops")
    assert m.effect.estimate == pytest.approx(-20.0) and m.verdict == "regression"
    assert stats_welch_misses(base, tuple(cand_by_rep.values()))


def stats_welch_misses(base, cand):
    from harness.results import stats

    return stats.welch_p(base, cand, log_scale=True) > 0.05


def test_cost_mode_does_not_judge_a_row_that_waits_on_an_emulated_disk():
    """The same 50% IOPS drop: a regression in wall mode, and in cost mode on a tmpfs-backed
    row; descriptive (shown, never a verdict) in cost mode on a row over an emulated disk,
    whose CPU per I/O is still judged."""
    cost = dataclasses.replace(ENV, measure="cost")
    slow = tuple(v / 2 for v in BASE_IOPS)
    disk = {"waits_on_device": True}
    c = compare(
        side(BASE_IOPS, environment=cost, details=disk), side(slow, environment=cost, details=disk)
    )
    m = next(m for m in c.metrics if m.metric == "read_iops")
    assert (m.family, m.verdict) == ("descriptive", "descriptive") and not c.regressions
    assert m.change_pct == pytest.approx(-50.0)  # still reported
    cpu = compare(
        side(BASE_IOPS, environment=cost, details=disk, extra={"cpu_us_per_io": 80.0}),
        side(BASE_IOPS, environment=cost, details=disk, extra={"cpu_us_per_io": 170.0}),
    )
    assert verdicts(cpu)[f"{FIO}:cpu_us_per_io"] == "regression"
    assert verdicts(cpu)[f"{FIO}:read_clat_p50_us"] == "descriptive"
    tmpfs = {"waits_on_device": False}
    c = compare(
        side(BASE_IOPS, environment=cost, details=tmpfs),
        side(slow, environment=cost, details=tmpfs),
    )
    assert verdicts(c)[f"{FIO}:read_iops"] == "regression"
    wall = compare(side(BASE_IOPS, details=disk), side(slow, details=disk))
    assert verdicts(wall)[f"{FIO}:read_iops"] == "regression"


def test_cost_mode_makes_cpu_per_io_primary():
    cost = dataclasses.replace(ENV, measure="cost")
    extra = {"cpu_us_per_io": 80.0}
    c = compare(
        side(BASE_IOPS, extra=extra, environment=cost),
        side(BASE_IOPS, extra={"cpu_us_per_io": 170.0}, environment=cost),
    )
    m = next(m for m in c.metrics if m.metric == "cpu_us_per_io")
    assert m.family == "primary" and m.verdict == "regression"
    wall = compare(side(BASE_IOPS, extra=extra), side(BASE_IOPS, extra=extra))
    assert next(m for m in wall.metrics if m.metric == "cpu_us_per_io").family == "secondary"


def test_a_run_its_emulator_artefact_spoiled_adds_no_statuses_or_numbers():
    """An A/A side whose rep 1 lost NVMe I/O on both attempts (round-robin TCG, cost mode):
    that run could not tell, so it is listed, not counted; the A/A stays clean."""
    title = "nvme nvme0: I/O tag 256 (2100) opcode 0x2 (I/O Cmd) QID 1 timeout, aborting"
    lost = Splat("io_timeout", title, 40, title)
    spoiled = dataclasses.replace(
        run(1, 200.0, check="fail", splats=(lost,)),
        verdict={
            "class": "emulator-artefact",
            "summary": "emulator artefact under TCG "
            "(tcg-round-robin-lost-io): nvme nvme0: I/O tag 256 timeout",
        },
    )
    cand = [run(0, BASE_IOPS[0]), spoiled, run(2, BASE_IOPS[2])]
    c = compare(side(BASE_IOPS), cand)
    assert not c.regressions, c.regressions
    assert c.infra_errors == ("candidate rep 1: " + spoiled.verdict["summary"],)
    healthy_failure = dataclasses.replace(spoiled, verdict={"class": "test-failure"})
    failed = compare(side(BASE_IOPS), [run(0, BASE_IOPS[0]), healthy_failure, run(2, 2040.0)])
    assert "check/sparse" in [getattr(r, "step_id", "") for r in failed.regressions]


def test_a_contained_artefact_drops_only_the_step_it_hit():
    """A run whose lost NVMe I/O stayed in one step (verdict `contained`): that step adds no
    numbers, its other steps count, a check that failed there on its own included."""
    title = "nvme nvme0: I/O tag 256 (2100) opcode 0x2 (I/O Cmd) QID 1 timeout, aborting"
    lost = Splat("io_timeout", title, 40, title)
    hit = StepResult(
        "fio/raw-nvme0/randread-4k",
        "fio",
        "fail",
        "io_timeout",
        splats=(lost,),
        metrics={"read_iops": 20.0},
    )
    rest = run(1, BASE_IOPS[1], check="fail")
    verdict = {"class": "emulator-artefact", "contained": True, "summary": "lost I/O"}
    cand = dataclasses.replace(rest, steps=(hit, *rest.steps), verdict=verdict)
    c = compare(side(BASE_IOPS), [run(0, BASE_IOPS[0]), cand, run(2, BASE_IOPS[2])])
    fio = next(m for m in c.metrics if m.step_id == FIO and m.metric == "read_iops")
    assert fio.effect.n == 3  # the other row keeps all three pairs
    assert all(not m.cand_values for m in c.metrics if m.step_id == hit.id)
    assert "check/sparse" in [getattr(r, "step_id", "") for r in c.regressions]
    assert c.infra_errors == ("candidate rep 1: lost I/O (its other clean steps count)",)


def test_a_test_failure_beside_contained_lost_io_brings_no_emulator_splats():
    """judge() calls a run whose check failed on its own beside lost NVMe I/O a test failure
    (still `contained`): the comparison flags the check, not the lost I/O's failed fio step
    nor its io_timeout reports (those are the emulator's)."""
    from harness.verdict import TEST_FAILURE, with_verdict

    cost = dataclasses.replace(ENV, measure="cost")
    title = "nvme nvme0: I/O tag 256 (2100) opcode 0x2 (I/O Cmd) QID 1 timeout, aborting"
    lost = Splat("io_timeout", title, 40, title)
    hit = StepResult("fio/raw-nvme0/randread-4k", "fio", "fail", "io_timeout", splats=(lost,))
    rest = run(1, BASE_IOPS[1], check="fail", environment=cost)
    cand = with_verdict(dataclasses.replace(rest, steps=(hit, *rest.steps), splats=(lost,)))
    assert cand.verdict["class"] == TEST_FAILURE and cand.verdict["contained"], cand.verdict
    base = side(BASE_IOPS, environment=cost)
    c = compare(
        base, [run(0, BASE_IOPS[0], environment=cost), cand, run(2, BASE_IOPS[2], environment=cost)]
    )
    flagged = [getattr(r, "step_id", "") for r in c.regressions]
    assert flagged == ["check/sparse"], flagged
    assert next(m for m in c.metrics if m.step_id == FIO and m.metric == "read_iops").effect.n == 3
