"""Console splat detector over real recorded console logs (tests/data/console/).

The logs were captured from real boots of the Debian 6.12 kernel under TCG by
tests/data/capture_logs.py (see there for how each splat was provoked). The Debian kernel
has no KASAN, UBSAN, lockdep or hard-lockup detector that fires under TCG, so those kinds
are checked on short reports written out below in the kernels' formats (marked SAMPLE).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.klog.splats import MAX_EXCERPT_LINES, SplatScanner, clean_line, message_of, scan

CONSOLE = Path(__file__).parents[1] / "data" / "console"
MODULE = "/work/main/.cache/splatmod/build/splatmod.c"


def _lines(name: str) -> list[str]:
    return (CONSOLE / f"{name}.log").read_text().split("\n")


def _scan_log(name: str):
    return scan(_lines(name))


# log -> [(kind, title, first line, text of the excerpt's first line, ... of its last line)]
RECORDED = {
    "sysrq-crash": [
        (
            "panic",
            "Kernel panic - not syncing: sysrq triggered crash",
            497,
            "Kernel panic - not syncing: sysrq triggered crash",
            "Kernel Offset: 0x37000000",  # panic=-1 reboots: no end marker, log ends here
        )
    ],
    "warning": [
        (
            "warning",
            f"WARNING: at {MODULE}:67 splat_init [splatmod]",
            499,
            "------------[ cut here ]------------",
            "---[ end trace 0000000000000000 ]---",
        )
    ],
    "bug": [
        (
            "bug",
            f"kernel BUG at {MODULE}:69!",
            500,
            "------------[ cut here ]------------",
            "---[ end trace 0000000000000000 ]---",
        )
    ],
    # dd writing into a frozen XFS on loop, hung_task_timeout_secs=5: reported every 5 s
    "hung-task": [
        (
            "hung_task",
            f"INFO: task dd:305 blocked for more than {secs} seconds.",
            line,
            f"INFO: task dd:305 blocked for more than {secs} seconds.",
            "</TASK>",
        )
        for secs, line in ((5, 520), (10, 549), (15, 578), (20, 607))
    ],
    # unbounded recursion: VMAP stack guard page, an Oops, then the panic it forces
    "stack-overflow": [
        (
            "stack_overflow",
            "BUG: TASK stack guard page was hit at 00000000a3b2eb04"
            " (stack is 000000007a9523b9..00000000df3b55f8)",
            504,
            "BUG: TASK stack guard page was hit",
            "---[ end trace 0000000000000000 ]---",
        ),
        (
            "panic",
            "Kernel panic - not syncing: Fatal exception in interrupt",
            588,
            "Kernel panic - not syncing: Fatal exception in interrupt",
            "Kernel Offset:",
        ),
    ],
    # STACK_END_MAGIC overwritten, then schedule(): SCHED_STACK_END_CHECK panics
    "stack-end": [
        (
            "stack_overflow",
            "Kernel panic - not syncing: corrupted stack end detected inside scheduler",
            502,
            "Kernel panic - not syncing: corrupted stack end detected inside scheduler",
            "Kernel Offset:",
        )
    ],
    # 8 s with preemption off, watchdog_thresh=1
    "soft-lockup": [
        (
            "soft_lockup",
            f"watchdog: BUG: soft lockup - CPU#0 stuck for {secs}s! [insmod:277]",
            line,
            "watchdog: BUG: soft lockup - CPU#0 stuck for",
            "</TASK>",
        )
        for secs, line in ((3, 505), (6, 550))
    ],
    # 8 s in an RCU read-side section with preemption off, rcu_cpu_stall_timeout=3
    "rcu-stall": [
        (
            "rcu_stall",
            "rcu: INFO: rcu_preempt self-detected stall on CPU",
            500,
            "rcu: INFO: rcu_preempt self-detected stall on CPU",
            "</TASK>",
        )
    ],
    # use-after-free of a KFENCE-sampled kmalloc (sampling enabled late, interval 1 ms)
    "kfence": [
        (
            "kfence",
            "BUG: KFENCE: use-after-free read in splat_init [splatmod]",
            510,
            "==================================================================",
            "==================================================================",
        )
    ],
    # "BUG: kernel NULL pointer dereference" then "Oops: Oops: 0002 [#1]": one oops report
    "oops-null": [
        (
            "oops",
            "BUG: kernel NULL pointer dereference, address: 0000000000000000",
            504,
            "BUG: kernel NULL pointer dereference",
            "---[ end trace 0000000000000000 ]---",
        )
    ],
}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_log(name):
    splats = _scan_log(name)
    got = [
        (s.kind, s.title, s.line, s.excerpt.splitlines()[0], s.excerpt.splitlines()[-1])
        for s in splats
    ]
    expected = RECORDED[name]
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    lines = _lines(name)
    for splat, (_, _, _, first, last) in zip(splats, expected, strict=True):
        excerpt = splat.excerpt.splitlines()
        assert first in excerpt[0] and last in excerpt[-1]
        # the excerpt is exactly the log's lines from `line` on (trailing blanks trimmed)
        expected_lines = lines[splat.line - 1 : splat.line - 1 + len(excerpt)]
        assert excerpt == [line.rstrip() for line in expected_lines]


def test_clean_boot_has_no_splats():
    lines = _lines("clean-boot")
    # the harmless lines that look alarming are really in this log
    text = "\n".join(lines)
    assert "Unknown kernel command line parameters" in text
    assert "virtme initramfs: initramfs does not have module" in text
    assert "panic=-1" in text and "report a bug" in text
    assert scan(lines) == []


def test_harmless_lines_are_not_splats():
    lines = [
        "[    0.000000] Kernel command line: console=ttyS0 panic=-1 oops=panic",
        '[    0.01] Unknown kernel command line parameters "Kernel panic - not syncing: x"',
        "Command line: init=/bin/sh 'BUG: fake'",
        "[    1.0] ACPI: _OSC evaluation for CPUs failed, trying _PDC",
        "[    1.0] ACPI BIOS Error (bug): Could not resolve symbol [\\_SB.PCI0], AE_NOT_FOUND",
        "[    2.0] virtme initramfs: initramfs does not have module crypto-aes",
        "[    3.0] PCI: Using host bridge windows from ACPI; report a bug",
        "[    4.0] usb 1-1: WARNING: device is quirky",
        "[    4.1] loop: module loaded",
        "[    5.0] ==================================================================",
        "[    6.0] ------------[ cut here ]------------",
        '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
    ]
    assert scan(lines) == []


def test_fatal_is_set_when_the_panic_starts():
    scanner = SplatScanner()
    lines = _lines("sysrq-crash")
    for line in lines[:496]:
        scanner.feed(line)
    assert not scanner.fatal
    scanner.feed(lines[496])  # "Kernel panic - not syncing: sysrq triggered crash"
    assert scanner.fatal
    assert scanner.splats == []  # still open: panic=-1 prints no end marker
    for line in lines[497:]:
        scanner.feed(line)
    (panic,) = scanner.finish()
    assert panic.kind == "panic" and panic.line == 497


@pytest.mark.parametrize(
    ("name", "fatal"),
    [
        ("clean-boot", False),
        ("warning", False),
        ("bug", False),
        ("oops-null", False),
        ("hung-task", False),
        ("soft-lockup", False),
        ("rcu-stall", False),
        ("kfence", False),
        ("sysrq-crash", True),
        ("stack-overflow", True),
        ("stack-end", True),
    ],
)
def test_fatal_only_for_machine_stopping_splats(name, fatal):
    scanner = SplatScanner()
    for line in _lines(name):
        scanner.feed(line)
    assert scanner.fatal is fatal


def test_warning_is_not_fatal_and_completes_while_streaming():
    scanner = SplatScanner()
    for line in _lines("warning")[:541]:
        scanner.feed(line)
    assert [s.kind for s in scanner.splats] == ["warning"]  # closed by its end marker
    assert not scanner.fatal


def _noisy(line: str) -> str:
    return f"\x1b[0m{line}\x00\r"


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_crlf_and_control_noise_do_not_change_results(name):
    plain = _scan_log(name)
    noisy = scan(_noisy(line) for line in _lines(name))
    assert [(s.kind, s.title, s.line) for s in noisy] == [(s.kind, s.title, s.line) for s in plain]
    assert [s.excerpt for s in noisy] == [s.excerpt for s in plain]


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_logs_without_timestamps(name):
    stamp = re.compile(r"^\[\s*\d+\.\d+\] ")
    bare = scan(stamp.sub("", line) for line in _lines(name))
    assert [(s.kind, s.title, s.line) for s in bare] == [
        (s.kind, s.title, s.line) for s in _scan_log(name)
    ]


def test_message_of_handles_prefixes_and_glued_lines():
    assert message_of("[   12.345678] WARNING: CPU: 0") == "WARNING: CPU: 0"
    assert message_of("<4>[   12.345678] BUG: x") == "BUG: x"
    assert message_of("[   12.345678][ T123] BUG: x") == "BUG: x"
    assert message_of("after-warn[   36.6] Kernel panic - not syncing: x").startswith("Kernel")
    assert message_of("no timestamp") == "no timestamp"
    assert clean_line("\x1b[1;31mOops: 0002\x1b[0m\r") == "Oops: 0002"


def test_glued_guest_output_still_starts_a_splat():
    title = "Kernel panic - not syncing: Attempted to kill init!"
    (splat,) = scan([f"hello[   29.1] {title}"])
    assert (splat.kind, splat.title, splat.line) == ("panic", title, 1)


@pytest.mark.parametrize(
    "header",
    [
        "WARNING: CPU: 1 PID: 281 at fs/xfs/xfs_aops.c:42 xfs_f+0x1c9/0xff0 [xfs]",
        "WARNING: CPU: 1 UID: 0 PID: 281 at fs/xfs/xfs_aops.c:42 xfs_f+0x1c9/0xff0 [xfs]",
        "WARNING: at fs/xfs/xfs_aops.c:42 xfs_f+0x1c9/0xff0 [xfs]",
    ],
)
def test_warning_header_variants(header):
    lines = ["[ 1.0] ------------[ cut here ]------------", f"[ 1.1] {header}", "[ 1.2] x"]
    (warning,) = scan([*lines, "[ 1.3] ---[ end trace 0000000000000000 ]---", "[ 1.4] y"])
    assert (warning.kind, warning.line) == ("warning", 1)
    assert warning.title == "WARNING: at fs/xfs/xfs_aops.c:42 xfs_f [xfs]"
    assert warning.excerpt.splitlines()[-1].endswith("---[ end trace 0000000000000000 ]---")


def test_report_without_end_is_cut_at_max_lines():
    lines = ["[ 1.0] INFO: task dd:1 blocked for more than 5 seconds."]
    lines += [f"[ 1.1] filler {i}" for i in range(2 * MAX_EXCERPT_LINES)]
    (splat,) = scan(lines)
    assert len(splat.excerpt.splitlines()) == MAX_EXCERPT_LINES


def test_next_splat_closes_an_open_one():
    lines = [
        "[ 1.0] INFO: task dd:1 blocked for more than 5 seconds.",
        "[ 1.1]       Not tainted 6.12.0 #1",
        "[ 2.0] Kernel panic - not syncing: hung_task: blocked tasks",
    ]
    hung, panic = scan(lines)
    assert (hung.kind, hung.line, hung.excerpt.count("\n")) == ("hung_task", 1, 1)
    assert (panic.kind, panic.line) == ("panic", 3)


# --- SAMPLE reports for kinds the recorded Debian kernel cannot produce --------------------

KASAN = """\
[   21.100000] ==================================================================
[   21.101000] BUG: KASAN: slab-use-after-free in lo_rw_aio_complete+0x1a4/0x1f0 [loop]
[   21.102000] Read of size 8 at addr ffff888012345678 by task ksoftirqd/1/22
[   21.103000]
[   21.104000] CPU: 1 UID: 0 PID: 22 Comm: ksoftirqd/1 Not tainted 6.19.0-rc1 #1
[   21.105000] Call Trace:
[   21.106000]  <TASK>
[   21.107000]  dump_stack_lvl+0x5d/0x80
[   21.108000]  kasan_report+0xb3/0xf0
[   21.109000]  lo_rw_aio_complete+0x1a4/0x1f0 [loop]
[   21.110000]  </TASK>
[   21.111000]
[   21.112000] Allocated by task 99:
[   21.113000]  kasan_save_stack+0x33/0x60
[   21.114000] ==================================================================
[   21.115000] Disabling lock debugging due to kernel taint"""

UBSAN_NEW = """\
[    5.000000] ------------[ cut here ]------------
[    5.000100] UBSAN: array-index-out-of-bounds in drivers/block/loop.c:123:9
[    5.000200] index 4 is out of range for type 'int [4]'
[    5.000300] CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.0 #1
[    5.000400] Call Trace:
[    5.000500]  <TASK>
[    5.000600]  __ubsan_handle_out_of_bounds+0xa0/0xd0
[    5.000700]  </TASK>
[    5.000800] ---[ end trace ]---"""

UBSAN_OLD = """\
[    5.000000] ================================================================================
[    5.000100] UBSAN: shift-out-of-bounds in fs/xfs/xfs_bmap.c:10:20
[    5.000200] shift exponent 64 is too large for 64-bit type 'long unsigned int'
[    5.000300] Call Trace:
[    5.000400]  <TASK>
[    5.000500]  </TASK>
[    5.000600] ================================================================================
[    5.000700] after"""

LOCKDEP = """\
[   30.000000]
[   30.100000] ======================================================
[   30.200000] WARNING: possible circular locking dependency detected
[   30.300000] 6.19.0-rc1 #1 Not tainted
[   30.400000] ------------------------------------------------------
[   30.500000] kworker/1:2/77 is trying to acquire lock:
[   30.600000] ffff8880 (&lo->lo_mutex){+.+.}-{4:4}, at: loop_set_status+0x2a/0x3a0 [loop]
[   30.700000]
[   30.800000] -> #1 (&q->q_usage_counter(io)#2){++++}-{0:0}:
[   30.900000]        lock_acquire+0xd2/0x2f0
[   31.000000]  *** DEADLOCK ***
[   31.100000] stack backtrace:
[   31.200000] CPU: 1 UID: 0 PID: 77 Comm: kworker/1:2 Not tainted 6.19.0-rc1 #1
[   31.300000] Call Trace:
[   31.400000]  <TASK>
[   31.500000]  print_circular_bug+0x2ab/0x2c0
[   31.600000]  </TASK>
[   31.700000] loop0: detected capacity change from 0 to 8192"""

RCU_LOCKDEP = """\
[    2.0] =============================
[    2.1] WARNING: suspicious RCU usage
[    2.2] 6.12.0 #1 Not tainted
[    2.3] -----------------------------
[    2.4] block/blk-mq.c:42 suspicious rcu_dereference_check() usage!
[    2.5] stack backtrace:
[    2.6] Call Trace:
[    2.7]  <TASK>
[    2.8]  </TASK>"""

HARD_LOCKUP = """\
[   50.0] watchdog: Watchdog detected hard LOCKUP on cpu 1
[   50.1] Modules linked in: loop
[   50.2] Call Trace:
[   50.3]  <NMI>
[   50.4]  ? watchdog_hardlockup_check+0x1a0/0x1f0
[   50.5]  </NMI>
[   50.6]  <TASK>
[   50.7]  spin+0x10/0x20
[   50.8]  </TASK>
[   50.9] Kernel panic - not syncing: Hard LOCKUP"""

SCHED_ATOMIC = """\
[    9.0] BUG: scheduling while atomic: kworker/0:1/12/0x00000002
[    9.1] Modules linked in: loop
[    9.2] CPU: 0 UID: 0 PID: 12 Comm: kworker/0:1 Not tainted 6.12.0 #1
[    9.3] Call Trace:
[    9.4]  <TASK>
[    9.5]  __schedule_bug+0x5a/0x70
[    9.6]  </TASK>
[    9.7] loop0: detected capacity change from 0 to 8192"""

SAMPLES = [
    (SCHED_ATOMIC, "bug", "BUG: scheduling while atomic: kworker/0:1/12/0x00000002", 1, 7),
    (KASAN, "kasan", "BUG: KASAN: slab-use-after-free in lo_rw_aio_complete [loop]", 1, 15),
    (UBSAN_NEW, "ubsan", "UBSAN: array-index-out-of-bounds in drivers/block/loop.c:123:9", 1, 9),
    (UBSAN_OLD, "ubsan", "UBSAN: shift-out-of-bounds in fs/xfs/xfs_bmap.c:10:20", 1, 7),
    (LOCKDEP, "lockdep", "WARNING: possible circular locking dependency detected", 2, 16),
    (RCU_LOCKDEP, "lockdep", "WARNING: suspicious RCU usage", 1, 9),
    (HARD_LOCKUP, "hard_lockup", "watchdog: Watchdog detected hard LOCKUP on cpu 1", 1, 9),
]


@pytest.mark.parametrize(("text", "kind", "title", "line", "n_lines"), SAMPLES)
def test_sample_reports(text, kind, title, line, n_lines):
    first = scan(text.splitlines())[0]
    assert (first.kind, first.title, first.line) == (kind, title, line)
    assert first.excerpt.splitlines() == text.splitlines()[line - 1 : line - 1 + n_lines]


def test_hard_lockup_then_panic_is_two_splats_and_fatal():
    scanner = SplatScanner()
    for line in HARD_LOCKUP.splitlines():
        scanner.feed(line)
    assert scanner.fatal
    assert [s.kind for s in scanner.finish()] == ["hard_lockup", "panic"]


def test_oops_line_starts_its_own_report_after_a_hung_task():
    lines = [
        "[ 1.0] INFO: task dd:1 blocked for more than 5 seconds.",
        "[ 1.1] Oops: general protection fault, probably for non-canonical address 0x1: 0000 [#1]",
        "[ 1.2] ---[ end trace 0000000000000000 ]---",
    ]
    hung, oops = scan(lines)
    assert (hung.kind, oops.kind, oops.line) == ("hung_task", "oops", 2)
    assert oops.title.startswith("Oops: general protection fault")


def test_parse_log_cli_prints_json_and_exit_codes(capsys, tmp_path):
    from harness.cli.main import main

    assert main(["parse-log", str(CONSOLE / "warning.log")]) == 1
    (splat,) = json.loads(capsys.readouterr().out)
    assert set(splat) == {"kind", "title", "line", "excerpt"}
    assert (splat["kind"], splat["line"]) == ("warning", 499)
    assert main(["parse-log", str(CONSOLE / "clean-boot.log")]) == 0
    assert json.loads(capsys.readouterr().out) == []
    crlf = tmp_path / "crlf.log"
    crlf.write_bytes((CONSOLE / "bug.log").read_bytes().replace(b"\n", b"\r\n") + b"\xff\n")
    assert main(["parse-log", str(crlf)]) == 1
    assert json.loads(capsys.readouterr().out)[0]["line"] == 500
    for missing in (tmp_path / "nope.log", tmp_path):
        assert main(["parse-log", str(missing)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"harness: error: cannot read console log {missing}")
        assert "\n" not in err


# --- blocked-task dumps (sysrq-w) and the TCG int3 oops -----------------------------------
# BLOCKED is a SAMPLE in 6.12's sched_show_task() format (flags column cut for width).

BLOCKED = """\
[   61.200000] sysrq: Show Blocked State
[   61.200100] task:kworker/u8:3    state:D stack:0     pid:61    tgid:61    ppid:2
[   61.200200] Workqueue: loop0 loop_workfn
[   61.200300] Call Trace:
[   61.200400]  <TASK>
[   61.200500]  __schedule+0x3b0/0xbe0
[   61.200600]  schedule+0x27/0xa0
[   61.200700]  loop_harness_maybe_hang+0x8c/0xc0
[   61.200800]  lo_rw_aio+0x2d5/0x360
[   61.200900]  </TASK>
[   61.201000] task:fio             state:D stack:0     pid:301   tgid:301   ppid:280
[   61.201100] Call Trace:
[   61.201200]  <TASK>
[   61.201300]  __schedule+0x3b0/0xbe0
[   61.201400]  io_schedule+0x46/0x70
[   61.201500]  folio_wait_bit_common+0x12d/0x300
[   61.201600]  </TASK>
[   61.201700] @@HARNESS {"event": "blocked-dump", "id": "s", "why": "host"}"""  # SAMPLE


def test_blocked_task_dump_is_one_report_listing_its_tasks():
    from harness.klog.stacks import blocked_summary, tasks

    scanner = SplatScanner()
    for line in BLOCKED.splitlines():
        scanner.feed(line)
    assert scanner.dumps_seen == 1 and scanner.blocked_seen == 2
    (dump,) = scanner.finish()
    assert dump.kind == "blocked_tasks" and dump.line == 1
    assert dump.title == "sysrq: Show Blocked State (2 tasks blocked)"
    assert [t.name for t in tasks(dump.excerpt)] == ["kworker/u8:3", "fio"]
    summary = blocked_summary(tasks(dump.excerpt))
    assert summary == "kworker/u8:3 blocked in loop_harness_maybe_hang <- lo_rw_aio (+1 more task)"


def test_empty_blocked_task_dump_is_no_splat_but_counts_as_an_answer():
    scanner = SplatScanner()
    for line in ("[ 9.1] sysrq: Show Blocked State", "[ 9.2] some later line"):
        scanner.feed(line)
    assert scanner.finish() == [] and scanner.dumps_seen == 1 and scanner.blocked_seen == 0


def test_tcg_int3_oops_is_an_oops_then_its_panic():
    from harness.klog.stacks import rip
    from harness.verdict import tcg_artefact

    oops, panic = _scan_log("tcg-int3")
    assert (oops.kind, oops.title) == ("oops", "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI")
    assert tcg_artefact(oops) == "tcg-int3-text-patching" and tcg_artefact(panic) == ""
    assert rip(oops.excerpt) == "key_set_index_key"  # a jump-label NOP being patched
    assert panic.title == "Kernel panic - not syncing: Fatal exception in interrupt"
