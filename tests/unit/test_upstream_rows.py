"""The upstream-failures rows (issue #26 items 1-5): stacked targets as data, the online
resize check, throttled writes and plug re-entry, the path-scoped stack figure, the plan."""

import json
import sys

import pytest

from harness.errors import UserError
from harness.kernel import kconfig
from harness.paths import PROJECT_ROOT
from harness.suite import checks, plans, stack_scope, targets
from harness.suite.plan import Plan

sys.path.insert(0, str(PROJECT_ROOT))  # guest/ is not an installed package

from guest import checks_reentry, checks_resize, fio, metrics, stacked, stackpath  # noqa: E402
from guest.api import Prepared, Skip  # noqa: E402

DATA = PROJECT_ROOT / "tests" / "data"
DISKS = [
    {"name": "nvme0", "bus": "nvme", "serial": "HNVME0"},
    {"name": "scsi0", "bus": "scsi", "serial": "HSCSI0"},
]
UPSTREAM_TARGETS = (
    "nested3-loop-xfs",
    "nested-loop-ext4",
    "stacked-dm-linear-xfs",
    "stacked-dm-stripe-xfs",
    "stacked-dm-crypt-xfs",
)


def _plan(name: str) -> Plan:
    return plans.build_plan(name, disks=DISKS, mode="vm", workdir="/run/harness")


# --- stacked targets -------------------------------------------------------------------


def test_dm_tables_for_linear_crypt_and_stripe():
    assert stacked.dm_table("linear", ["/dev/nvme0n1"], 786432) == (
        "0 786432 linear /dev/nvme0n1 0\n"
    )
    assert stacked.dm_table("crypt", ["/dev/nvme0n1"], 786432) == (
        f"0 786432 crypt aes-xts-plain64 {'0123456789abcdef' * 4} 0 /dev/nvme0n1 0\n"
    )
    # 1000 sectors over two disks: 500 each, rounded down to whole 64 KiB chunks (384)
    assert stacked.dm_table("stripe", ["/dev/nvme0n1", "/dev/sda"], 1000) == (
        "0 768 striped 2 128 /dev/nvme0n1 0 /dev/sda 0\n"
    )
    with pytest.raises(ValueError, match="too few"):
        stacked.dm_table("stripe", ["/dev/a", "/dev/b"], 200)
    with pytest.raises(ValueError, match="unknown dm kind"):
        stacked.dm_table("mirror", ["/dev/a"], 200)


def test_dm_targets_from_recorded_dmsetup_output():
    # recorded in a Debian 6.12 guest before dm-crypt was loaded: the targets built into dm-mod
    text = (DATA / "dm" / "dmsetup-targets-debian-6.12.txt").read_text()
    assert stacked.has_dm_target(text, "stripe") and stacked.has_dm_target(text, "linear")
    assert not stacked.has_dm_target(text, "crypt")


def test_dmsetup_argv():
    assert stacked.dmsetup_create_argv("h-1", "/w/dm/h-1.table") == [
        "dmsetup",
        "create",
        "h-1",
        "/w/dm/h-1.table",
    ]
    assert stacked.dmsetup_remove_argv("h-1") == ["dmsetup", "remove", "--retry", "h-1"]


def test_nested_level_sizes_leave_room_for_the_level_above():
    # bottom first: each filesystem holds the next level's image plus 64 MiB
    assert stacked.level_sizes(128, 3, "xfs") == [448, 384, 320]
    assert stacked.level_sizes(128, 2, "ext4") == [256, 192]
    assert stacked.level_sizes(128, 1, "ext4") == [192]


def test_stacked_targets_are_data_and_listed():
    for name in UPSTREAM_TARGETS:
        assert "upstream" in targets.TARGETS[name].tags
    stripe = targets.TARGETS["stacked-dm-stripe-xfs"].spec
    assert stripe == {
        "kind": "stacked",
        "dm": "stripe",
        "disks": ["nvme0", "scsi0"],
        "fs": "xfs",
        "direct_io": True,
        "alloc": "sparse",
    }
    assert targets.TARGETS["nested3-loop-xfs"].spec["depth"] == 3
    assert targets.TARGETS["nested3-loop-xfs"].description.startswith(
        "loop on xfs on loop on xfs on loop on xfs on nvme0"
    )
    listed = dict(plans.list_targets())
    assert all(name in listed for name in UPSTREAM_TARGETS)


def test_plan_file_accepts_a_stacked_target(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(
        '{"targets": {"mine": {"kind": "stacked", "dm": "linear", "disks": ["nvme0"]}}, '
        '"checks": [{"check": "stack", "targets": ["mine"]}]}'
    )
    plan = plans.build_plan(str(path), disks=DISKS, mode="vm", workdir="/w")
    assert plan.steps[0].target["kind"] == "stacked"


# --- online resize ---------------------------------------------------------------------


def test_online_grow_and_fsck_argv():
    assert checks_resize.grow_argv("ext4", "/dev/loop1", "/m") == ["resize2fs", "/dev/loop1"]
    assert checks_resize.grow_argv("xfs", "/dev/loop1", "/m") == ["xfs_growfs", "/m"]
    assert checks_resize.fsck_argv("ext4", "/dev/loop1") == ["e2fsck", "-f", "-n", "/dev/loop1"]
    assert checks_resize.fsck_argv("xfs", "/dev/loop1") == ["xfs_repair", "-n", "/dev/loop1"]
    with pytest.raises(Skip):
        checks_resize.grow_argv("btrfs", "/dev/loop1", "/m")
    assert checks_resize.remount_argv("/m", "strictatime") == [
        "mount",
        "-o",
        "remount,strictatime",
        "/m",
    ]
    with pytest.raises(ValueError, match="noatime"):
        checks_resize.remount_argv("/m", "noatime")


def test_atime_mode_from_recorded_mountinfo():
    # recorded on this host: one ext4 mounted strictatime, one relatime
    text = (DATA / "mountinfo" / "atime-mounts.txt").read_text()
    strict = checks_resize.mount_options(text, "/tmp/ur/t/lo")
    relat = checks_resize.mount_options(text, "/tmp/ur/t/lo2")
    assert strict == ["rw"] and checks_resize.atime_mode(strict) == "strictatime"
    assert relat == ["rw", "relatime"] and checks_resize.atime_mode(relat) == "relatime"
    assert checks_resize.atime_mode(["rw", "noatime"]) == "noatime"
    assert checks_resize.mount_options(text, "/nowhere") == []


# --- throttled writes, plug re-entry ---------------------------------------------------


def test_wbt_path_and_jobs():
    assert checks_reentry.wbt_path("/dev/loop3") == "/sys/block/loop3/queue/wbt_lat_usec"
    argv = fio.fio_argv("b", "/dev/loop3", checks_reentry.buffered_job(32), "/r/b.json")
    assert argv[5:] == [
        "--rw=write",
        "--bs=64k",
        "--size=32M",
        "--direct=0",
        "--ioengine=psync",
        "--numjobs=2",
        "--offset_increment=32M",
        "--end_fsync=1",
        "--group_reporting=1",
    ]
    direct = checks_reentry.direct_job(32, 5)
    assert direct["direct"] == 1 and direct["iodepth"] == 32 and direct["runtime"] == 5


def test_reentry_checks_skip_targets_without_a_nested_loop():
    flat = Prepared("raw-nvme0", "raw", "/dev/nvme0n1", "/dev/nvme0n1")
    with pytest.raises(Skip, match="loop on a filesystem on loop"):
        checks_reentry.check_plug_reentry(flat, {}, None, None)
    with pytest.raises(Skip, match="loop over a file on a disk"):
        checks_reentry.check_throttled_writes(flat, {}, None, None)


# --- path-scoped stack figure ----------------------------------------------------------


def test_stack_scope_boot_word_and_validation():
    word = stack_scope.boot_word(stack_scope.SUBMISSION)
    assert word.startswith("stacktrace_filter=submit_bio_noacct,blk_mq_submit_bio,")
    assert "loop_queue_rq" in word and " " not in word
    assert stack_scope.resolve("submission", "p") == stack_scope.SUBMISSION
    assert stack_scope.resolve(["nvme_queue_rq"], "p") == ("nvme_queue_rq",)
    with pytest.raises(UserError, match="stack_scope"):
        stack_scope.resolve("everything", "p")
    with pytest.raises(UserError, match="function names"):
        stack_scope.resolve(["a,b"], "p")  # a comma would split the boot word


def test_path_summary_on_the_recorded_global_trace_has_no_loop():
    frames = metrics.parse_stack_trace(
        (DATA / "fio" / "stack_trace-debian-6.12.txt").read_text(), top=80
    )
    assert not stackpath.through_loop(frames)
    assert stackpath.path_summary(frames) == (
        "xfs_file_write_iter > xfs_file_dio_write_aligned > iomap_dio_rw"
    )
    assert stackpath.function("xfs_perag_get+0x23/0x90 [xfs]") == "xfs_perag_get"


def test_path_of_a_recorded_path_scoped_trace_through_loop_on_dm_crypt():
    # recorded: upstream-failures on Debian 6.12.118 under TCG; the tracer booted with the
    # submission scope (module functions unmatched: only the built-in four were traced)
    rec = json.loads((DATA / "stack" / "path-scoped-dm-crypt-debian-6.12.json").read_text())
    assert rec["stack_scope"] == [
        "iomap_dio_rw",
        "submit_bio_noacct",
        "blk_mq_flush_plug_list",
        "blk_mq_submit_bio",
    ]
    frames = rec["stack_trace"]
    assert stackpath.through_loop(frames)
    assert stackpath.path_summary(frames) == (
        "loop_process_work > lo_rw_aio.isra.0 > xfs_file_write_iter > xfs_file_dio_write_aligned"
        " > iomap_dio_rw > submit_bio_noacct_nocheck > __submit_bio > dm_submit_bio > crypt_map"
        " > submit_bio_noacct"
    )
    assert frames[0]["depth"] == rec["metrics"]["stack_path_bytes"] == 3928


def test_windowed_max_keeps_loops_path_when_another_path_is_deeper():
    # a window whose deepest stack is a non-loop path (recorded Debian global trace, 4168
    # bytes) must not hide the loop path seen in other windows (recorded dm-crypt, 3928)
    through = json.loads((DATA / "stack" / "path-scoped-dm-crypt-debian-6.12.json").read_text())
    other = metrics.parse_stack_trace(
        (DATA / "fio" / "stack_trace-debian-6.12.txt").read_text(), top=80
    )
    shallow = through["stack_trace"][5:]  # the same path, entered 5 frames higher
    windows = iter([shallow, other, through["stack_trace"], [], other])
    resets = []
    probe = stackpath.LoopPathMax(lambda: next(windows), lambda: resets.append(1), lambda x: x)
    for _ in range(4):
        probe.sample()
    found, details = probe.stop()  # the final sample reads the last window
    assert found == {"stack_path_bytes": 3928.0} and details["stack_through_loop"]
    assert details["stack_any_path_bytes"] == 4168 and "loop" not in details["stack_any_path"]
    assert details["stack_windows"] == len(resets) == 5
    assert details["stack_path"].endswith("crypt_map > submit_bio_noacct")


def test_windowed_max_reports_nothing_when_loop_was_never_deepest():
    other = metrics.parse_stack_trace(
        (DATA / "fio" / "stack_trace-debian-6.12.txt").read_text(), top=80
    )
    probe = stackpath.LoopPathMax(lambda: other, lambda: None, lambda x: x)
    found, details = probe.stop()
    assert found == {} and not details["stack_through_loop"] and details["stack_trace"] == []


def test_budget_is_three_quarters_of_thread_size():
    assert stackpath.budget_bytes() == 12288
    assert stackpath.parse_filter("#### all functions enabled ####\n") == []
    assert stackpath.parse_filter("submit_bio_noacct\nloop_queue_rq [loop]\n") == [
        "submit_bio_noacct",
        "loop_queue_rq",
    ]


def test_path_verdict_names_the_path_over_budget():
    from guest import checks_load

    prepared = Prepared("stacked-dm-linear-xfs", "stacked", "/dev/loop1", "/dev/loop1")
    details = {"stack_path": "loop_rootcg_workfn > lo_rw_aio > xfs_file_write_iter"}
    over = checks_load._path_verdict(prepared, {}, {"stack_path_bytes": 12800.0}, dict(details))
    assert over.status == "fail"
    assert "12800 bytes, above the 12288-byte budget (75% of THREAD_SIZE)" in over.message
    assert over.message.endswith(details["stack_path"])
    under = checks_load._path_verdict(prepared, {}, {"stack_path_bytes": 9000.0}, dict(details))
    assert under.status == "pass" and under.metrics == {"stack_path_bytes": 9000.0}


# --- the plan --------------------------------------------------------------------------


def test_upstream_failures_plan_rows_and_boot_word():
    plan = _plan("upstream-failures")
    ids = [s.id for s in plan.steps]
    for name in UPSTREAM_TARGETS:
        assert f"check/stack/{name}" in ids
    assert "check/online-resize/loop-dio-on-ext4" in ids
    assert "check/online-resize/loop-dio-on-xfs" in ids
    assert "check/throttled-writes/loop-dio-on-xfs" in ids
    assert "check/plug-reentry/nested-loop-xfs" in ids
    assert plan.boot_append == (stack_scope.boot_word(stack_scope.SUBMISSION),)
    assert Plan.from_dict(plan.to_dict()) == plan
    assert "upstream-failures" in dict(plans.list_plans())


def test_loop_plan_keeps_its_rows_and_global_tracer():
    plan = _plan("loop")
    assert plan.boot_append == ("stacktrace",)
    assert not {s.target_name for s in plan.steps} & set(UPSTREAM_TARGETS)
    assert not {s.check for s in plan.steps} & {"online-resize", "throttled-writes", "plug-reentry"}


def test_upstream_checks_registered_on_both_sides():
    from guest import checks as guest_checks

    for name in ("online-resize", "throttled-writes", "plug-reentry"):
        assert name in checks.CHECKS and name in guest_checks.CHECKS


def test_debug_build_keeps_the_stack_guards():
    # a +config=debug build is base.config then debug.config: the guard page (VMAP_STACK)
    # and the stack tracer come from base, DEBUG_STACK_USAGE from debug
    text = " ".join(f.text for f in kconfig.load_fragments(["debug"])).split()
    for option in ("CONFIG_VMAP_STACK=y", "CONFIG_DEBUG_STACK_USAGE=y", "CONFIG_STACK_TRACER=y"):
        assert option in text
