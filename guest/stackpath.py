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
    "loop_queue_rq",
    "lo_rw_aio",
    "lo_submit_rw_aio",
    "loop_process_work",
    "loop_workfn",
    "loop_rootcg_workfn",
    "loop_handle_cmd",
    "do_req_filebacked",
)
# Frames that name the I/O path: block layer, loop, dm, filesystems, disk drivers.
PATH_PREFIXES = (
    "loop_",
    "lo_",
    "do_req_filebacked",
    "submit_bio",
    "__submit_bio",
    "blk_mq_submit_bio",
    "blk_mq_flush_plug_list",
    "__blk_flush_plug",
    "dm_",
    "crypt_",
    "stripe_",
    "linear_",
    "iomap_dio_rw",
    "xfs_file_",
    "ext4_file_",
    "ext4_dirty_inode",
    "touch_atime",
    "nvme_queue_rq",
    "virtio_queue_rq",
    "scsi_queue_rq",
    "wb_writeback",
    "page_cache_ra",
    "blkdev_",
)


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


class LoopPathMax:
    """The deepest scoped stack that went through loop, kept across windows.

    The stack tracer keeps one maximum, whatever path reached it: a journal commit or the
    flusher submitting I/O can be deepest in a window and hide loop's path. So the tracer's
    maximum is read and reset every `interval_s`, and only windows whose deepest stack ran
    through loop count; the deepest of any path is kept beside it for reference.
    """

    def __init__(self, read: Any, reset: Any, parse: Any, interval_s: float = 0.05) -> None:
        import threading  # only a scoped stack check pays for the thread

        self.read, self.reset, self.parse = read, reset, parse
        self.interval_s = interval_s
        self.best: list[dict[str, Any]] = []
        self.any_best: list[dict[str, Any]] = []
        self.windows = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        frames = self.parse(self.read())
        self.reset()
        self.windows += 1
        if not frames:
            return
        depth = frames[0]["depth"]
        if depth > (self.any_best[0]["depth"] if self.any_best else 0):
            self.any_best = frames
        if through_loop(frames) and depth > (self.best[0]["depth"] if self.best else 0):
            self.best = frames

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> tuple[dict[str, float], dict[str, Any]]:
        """({'stack_path_bytes': N} or {} when loop was never deepest, details)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.sample()
        details: dict[str, Any] = {
            "stack_trace": self.best,
            "stack_path": path_summary(self.best),
            "stack_through_loop": bool(self.best),
            "stack_windows": self.windows,
            "stack_any_path_bytes": self.any_best[0]["depth"] if self.any_best else 0,
            "stack_any_path": path_summary(self.any_best),
            "stack_any_trace": self.any_best[:24],
        }
        return ({"stack_path_bytes": float(self.best[0]["depth"])} if self.best else {}), details
