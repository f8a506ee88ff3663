"""The path-scoped stack figure: which path the stack tracer's deepest stack took, and
whether loop's submission path was on it. Pure functions over tracefs text (stdlib only).

Booted with `stacktrace_filter=F1,F2,...` the ftrace stack tracer measures the stack only on
entry to those functions (block submission and filesystem I/O): its maximum is then the
deepest stack at which I/O was submitted, not a scheduler wake-up elsewhere.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any

THREAD_SIZE = 16384  # x86_64 without KASAN
BUDGET_SHARE = 0.75
LOOP_FRAMES = (
    "loop_queue_rq", "lo_rw_aio", "lo_submit_rw_aio", "loop_process_work", "loop_workfn",
    "loop_rootcg_workfn", "loop_handle_cmd", "do_req_filebacked",
)  # fmt: skip
# Frames that name the I/O path: block layer, loop, dm, filesystems, disk drivers.
PATH_PREFIXES = ("loop_", "lo_", "do_req_filebacked", "submit_bio", "__submit_bio",
                 "blk_mq_submit_bio", "blk_mq_flush_plug_list", "__blk_flush_plug", "dm_",
                 "crypt_", "stripe_", "linear_", "iomap_dio_rw", "xfs_file_", "ext4_file_",
                 "ext4_dirty_inode", "touch_atime", "nvme_queue_rq", "virtio_queue_rq",
                 "scsi_queue_rq", "wb_writeback", "page_cache_ra", "blkdev_")  # fmt: skip


def parse_filter(text: str) -> list[str]:
    """The functions in tracefs stack_trace_filter; [] when every function is traced."""
    return [ln.split()[0] for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def function(location: str) -> str:
    """'nvme_queue_rq+0x5/0x7c0 [nvme]' -> 'nvme_queue_rq'."""
    return location.split("+", 1)[0].split(" ", 1)[0]


def through_loop(frames: list[dict[str, Any]]) -> bool:
    return any(function(f["location"]) in LOOP_FRAMES for f in frames)


def path_summary(frames: list[dict[str, Any]]) -> str:
    """The I/O frames of a stack, outermost first: 'loop_rootcg_workfn > ... > nvme_queue_rq'."""
    names = [function(f["location"]) for f in frames]
    kept = [n for n in names if n.startswith(PATH_PREFIXES)]
    out: list[str] = []
    for name in reversed(kept):
        if not out or out[-1] != name:
            out.append(name)
    return " > ".join(out)


def budget_bytes(thread_size: int = THREAD_SIZE, share: float = BUDGET_SHARE) -> int:
    return int(thread_size * share)
