"""What the user sees of progress: one plain line per step every 30 s in a CI log (a fake
clock drives it), the lines' wording, nothing with -q, live bars on a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from harness import progress
from harness.cli import progress as shown_progress
from harness.cli.main import build_parser
from harness.progress import Progress


def build_event(done: float, elapsed: float, **kw: object) -> Progress:
    fields = {
        "stage": "build src:debian:linux-source-6.12",
        "done": done,
        "total": 2000.0,
        "unit": "objects",
        "elapsed_s": elapsed,
        "eta_s": 600.0,
        **kw,
    }
    return Progress(**fields)  # type: ignore[arg-type]


def test_plain_lines_appear_once_per_interval_per_step():
    now = [0.0]
    lines: list[str] = []
    plain = shown_progress.PlainLines(lines.append, every_s=30.0, clock=lambda: now[0])
    for t in range(0, 95, 5):  # a report every 5 s for 90 s
        now[0] = float(t)
        plain(build_event(t * 10, t))
        plain(Progress("download linux-source-6.12", t * 1e6, 153.5e6, "bytes", t, None))
    now[0] = 95.0
    plain(build_event(950, 95, finished=True, eta_s=0.0))
    build_lines = [line for line in lines if line.startswith("build")]
    assert [line.split(": ")[1].split(" of")[0] for line in build_lines] == [
        "0",
        "300",
        "600",
        "900",
        "950",
    ]
    assert build_lines[-1].endswith("took 1m35s")
    assert len([line for line in lines if line.startswith("download")]) == 4  # 0, 30, 60, 90


def test_a_boot_gets_a_line_for_each_stage_it_reaches():
    now = [0.0]
    lines: list[str] = []
    plain = shown_progress.PlainLines(lines.append, every_s=30.0, clock=lambda: now[0])
    for t, note in (
        (0, "starting QEMU"),
        (2, "kernel started"),
        (3, "kernel started"),
        (9, "init started"),
    ):
        now[0] = t
        plain(Progress("boot", 0, None, "", t, None, note=note))
    assert lines == [
        "boot: starting QEMU, 0s elapsed",
        "boot: kernel started, 2s elapsed",
        "boot: init started, 9s elapsed",
    ]


def test_a_line_says_how_far_how_long_and_how_much_is_left():
    line = shown_progress.describe(build_event(734, 725.0))
    assert line == (
        "build src:debian:linux-source-6.12: 734 of ~2000 objects (37%), "
        "12m05s elapsed, ~10m00s left"
    )
    download = Progress("download linux-source-6.12", 12e6, 153.5e6, "bytes", 4.0, 47.0)
    assert shown_progress.describe(download) == (
        "download linux-source-6.12: 12.0 MB of 153.5 MB (8%), 4s elapsed, ~47s left"
    )
    boot = Progress("boot", 0, None, "", 3.0, None, note="init started")
    assert shown_progress.describe(boot) == "boot: init started, 3s elapsed"
    plan = Progress("plan", 3, 10, "steps", 62.0, None, True, note="10 steps ended")
    assert shown_progress.describe(plan) == "plan: 3 of 10 steps (30%), 10 steps ended, took 1m02s"


def test_without_a_terminal_lines_go_to_stderr_and_quiet_silences_them(capsys):
    with shown_progress.shown(quiet=False, tty=False):
        progress.Step("apt update").update(0, note="updating package lists")
    assert "apt update: updating package lists, 0s elapsed" in capsys.readouterr().err
    with shown_progress.shown(quiet=True, tty=False):
        step = progress.Step("apt update")
        step.update(0)
        step.finish()
    assert capsys.readouterr() == ("", "")


def test_the_command_line_takes_q():
    assert build_parser().parse_args(["-q", "list"]).quiet
    assert not build_parser().parse_args(["list"]).quiet


def test_a_terminal_gets_a_live_bar_and_a_line_when_the_step_ends():
    out = io.StringIO()
    bars = shown_progress.LiveBars(Console(file=out, force_terminal=True, width=120))
    bars(build_event(500, 60.0))
    assert bars.tasks and bars.bars.live.is_started
    bars(build_event(2000, 240.0, finished=True, eta_s=0.0))
    assert not bars.tasks and not bars.bars.live.is_started
    assert (
        "build src:debian:linux-source-6.12: 2000 of ~2000 objects (100%), took 4m00s"
        in out.getvalue()
    )


def test_log_lines_go_to_the_stderr_of_the_moment(monkeypatch):
    """While a live bar runs rich swaps sys.stderr for a proxy that prints above the bar; a
    log handler holding the stderr of its creation would tear the bar instead."""
    import logging

    handler = shown_progress.CurrentStderrHandler()
    swapped = io.StringIO()
    monkeypatch.setattr("sys.stderr", swapped)
    handler.emit(logging.LogRecord("t", logging.INFO, __file__, 1, "a log line", None, None))
    assert swapped.getvalue() == "a log line\n"


def test_quiet_silences_the_ab_run_bar_and_its_per_run_lines():
    from harness.cli.progress import RichProgress
    from harness.workflows.ab.workflow import BASE, Side

    class Slot:
        name, rep, side = "rep0-base", 0, Side(BASE, "debian:6.12")

    class Result:
        infra_error, steps = None, ()

    out = io.StringIO()
    with RichProgress(Console(file=out, width=120), quiet=True) as bar:
        bar.started(0, 2, Slot())  # type: ignore[arg-type]
        bar.finished(0, 2, Slot(), Result())  # type: ignore[arg-type]
    assert out.getvalue() == ""
