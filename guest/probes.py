"""Kernel-side observers around a step: kmsg tail, ftrace stack tracer, loop sysfs counters."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading

from guest import metrics, sh, stackpath

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any

TRACING_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
STACK_SYSCTL = "/proc/sys/kernel/stack_tracer_enabled"
log = logging.getLogger(__name__)


class KmsgTail:
    """Kernel log records written after construction (reads /dev/kmsg from its end)."""

    def __init__(self) -> None:
        self.fd: int | None = None
        with contextlib.suppress(OSError):
            self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)

    def read(self) -> list[str]:
        """New message lines since the last read (continuation lines included)."""
        lines: list[str] = []
        while self.fd is not None:
            try:
                rec = os.read(self.fd, 8192).decode("utf-8", "replace")
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # records overwritten while we slept: go on
                    continue
                break
            head, _, body = rec.partition(";")
            lines.extend(body.rstrip("\n").split("\n"))
        return lines

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def tracing_dir() -> str | None:
    for d in TRACING_DIRS:
        if os.path.exists(f"{d}/stack_max_size"):
            return d
    return None


class StackTracer:
    """The ftrace stack tracer around a step, when the kernel has it (CONFIG_STACK_TRACER).

    `available` is False with `reason` set otherwise. It records the deepest stack seen
    while enabled; enabling it costs a function-trace hook on every call, so plans turn it
    on only for steps that ask (it would distort throughput figures).
    """

    def __init__(self) -> None:
        self.dir = tracing_dir()
        self.reason = ""
        self.was_on = False
        self.scope: list[str] = []
        self.windowed: stackpath.LoopPathMax | None = None
        if not os.path.exists(STACK_SYSCTL):
            self.reason = "kernel has no ftrace stack tracer (CONFIG_STACK_TRACER off)"
        elif self.dir is None:
            self.reason = "tracefs not mounted: no stack_max_size under /sys/kernel/tracing"

    @property
    def available(self) -> bool:
        return not self.reason

    def start(self) -> None:
        assert self.dir
        # Booted with `stacktrace` (the host adds it when a plan traces stacks) the tracer
        # is already on: leave it. Turning it on here live-patches every function entry
        # with int3, which under multi-vCPU TCG can hit a stale int3 and oops the guest.
        self.was_on = (sh.read_text(STACK_SYSCTL, "0") or "0").strip() == "1"
        sh.write_text(f"{self.dir}/stack_max_size", "0")
        if not self.was_on:
            sh.write_text(STACK_SYSCTL, "1")
        self.scope = stackpath.parse_filter(
            sh.read_text(f"{self.dir}/stack_trace_filter", "") or ""
        )
        if self.scope:  # booted with stacktrace_filter=: keep loop's path across windows
            d = self.dir
            self.windowed = stackpath.LoopPathMax(
                lambda: sh.read_text(f"{d}/stack_trace", "") or "",
                lambda: sh.write_text(f"{d}/stack_max_size", "0"),
                lambda text: metrics.parse_stack_trace(text, top=80),
            )
            self.windowed.start()

    def stop(self) -> tuple[dict[str, float], dict[str, Any]]:
        """Read the deepest stack: ({'stack_max_bytes': N}, {'stack_trace': frames}), or,
        when the tracer was booted with a function filter (`stacktrace_filter=`), the
        deepest scoped stack through loop {'stack_path_bytes': N} (none if loop's path was
        never the deepest) with the scope and the path it took (stackpath.LoopPathMax)."""
        assert self.dir
        if not self.was_on:
            sh.write_text(STACK_SYSCTL, "0")
        if self.windowed is not None:
            found, details = self.windowed.stop()
            return found, {**details, "stack_scope": self.scope}
        max_size = int(sh.read_text(f"{self.dir}/stack_max_size", "0") or 0)
        trace = sh.read_text(f"{self.dir}/stack_trace", "") or ""
        return {"stack_max_bytes": float(max_size)}, {
            "stack_trace": metrics.parse_stack_trace(trace)
        }


class GaugeSampler:
    """Samples an integer sysfs gauge in a thread while a step runs; keeps the maximum."""

    def __init__(self, path: str, interval_s: float = 0.25) -> None:
        self.path = path
        self.interval_s = interval_s
        self.max: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            value = sh.read_text(self.path)
            if value not in (None, ""):
                self.max = max(self.max or 0, int(value))
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> GaugeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def nr_blocking_writes_path(device: str | None) -> str | None:
    """/sys/block/loopN/loop/nr_blocking_writes (the NOWAIT series' counter) if it exists."""
    if not device or not os.path.basename(device).startswith("loop"):
        return None
    path = f"/sys/block/{os.path.basename(device)}/loop/nr_blocking_writes"
    return path if os.path.exists(path) else None


def nr_blocking_writes(device: str | None) -> int | None:
    """/sys/block/loopN/loop/nr_blocking_writes (the NOWAIT series' counter) or None."""
    if not device or not os.path.basename(device).startswith("loop"):
        return None
    value = sh.read_text(f"/sys/block/{os.path.basename(device)}/loop/nr_blocking_writes")
    return int(value) if value not in (None, "") else None


def proc_stat() -> dict[str, int]:
    with open("/proc/stat") as fh:
        return metrics.parse_proc_stat(fh.read())


def poll_queues(device: str | None) -> tuple[bool, str]:
    """Whether polled (hipri) I/O can run on `device`, and why not."""
    if not device:
        return False, "no block device"
    name = os.path.basename(os.path.realpath(device))
    if name.startswith(("loop", "dm-")):
        return False, f"{name} does not support polled I/O (loop and dm do not poll)"
    if not name.startswith("nvme"):
        return False, f"{name} is not NVMe: only NVMe has poll queues here"
    pq = sh.read_text("/sys/module/nvme/parameters/poll_queues", "0") or "0"
    if int(pq) == 0:
        return False, "nvme.poll_queues=0: boot with nvme.poll_queues=N for polled I/O"
    if sh.read_text(f"/sys/block/{name}/queue/io_poll", "0") != "1":
        return False, f"{name}: queue/io_poll is 0 (no poll queues were allocated)"
    return True, ""


def io_uring_usable() -> tuple[bool, str]:
    disabled = sh.read_text("/proc/sys/kernel/io_uring_disabled", "0")
    if disabled not in (None, "0"):
        return False, f"io_uring disabled (kernel.io_uring_disabled={disabled})"
    return True, ""


_LOOP_ADDRS: list[int] = []


def loop_work_addresses() -> list[int]:
    """loop_workfn/loop_rootcg_workfn addresses (loop loaded first if it is a module)."""
    if not _LOOP_ADDRS:
        if not os.path.exists("/sys/module/loop"):
            sh.run(["modprobe", "loop"], check=False)
        _LOOP_ADDRS.extend(metrics.kallsyms_addresses(sh.read_text("/proc/kallsyms", "") or ""))
    return list(_LOOP_ADDRS)


def events_dir() -> str | None:
    """The tracefs root with event tracing (mounting tracefs when it is not yet)."""
    for d in TRACING_DIRS:
        if os.path.exists(f"{d}/events/workqueue/workqueue_execute_start"):
            return d
    if os.path.isdir(TRACING_DIRS[0]) and not os.listdir(TRACING_DIRS[0]):
        sh.run(["mount", "-t", "tracefs", "nodev", TRACING_DIRS[0]], check=False)
        if os.path.exists(f"{TRACING_DIRS[0]}/events/workqueue/workqueue_execute_start"):
            return TRACING_DIRS[0]
    return None


class TraceCount:
    """One tracefs instance counting one event (with a filter) while a step runs."""

    def __init__(self, root: str, name: str, event: str, filter_text: str) -> None:
        self.dir = f"{root}/instances/{name}"
        self.event = event
        self.filter_text = filter_text

    def start(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        sh.write_text(f"{self.dir}/buffer_size_kb", "4096")
        sh.write_text(f"{self.dir}/events/{self.event}/filter", self.filter_text)
        sh.write_text(f"{self.dir}/events/{self.event}/enable", "1")

    def stop(self) -> int:
        sh.write_text(f"{self.dir}/events/{self.event}/enable", "0")
        cpus = sorted(os.listdir(f"{self.dir}/per_cpu"))
        texts = [sh.read_text(f"{self.dir}/per_cpu/{c}/stats", "") or "" for c in cpus]
        return metrics.trace_event_count(texts)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            sh.write_text(f"{self.dir}/events/{self.event}/enable", "0")
            os.rmdir(self.dir)


DIO_EVENT = "iomap/iomap_dio_rw_begin"
# The events the per-step counters enable (LoopPathCounter, dio_counters).
COUNTED_EVENTS = ("workqueue/workqueue_execute_start", "block/block_rq_issue", DIO_EVENT)
HOLDERS = ("harness-hold-a", "harness-hold-b")
NEVER = "common_pid < 0"  # a filter no event passes: a holder records nothing


def hold_tracepoints() -> list[str]:
    """Keep the counted events' tracepoints enabled for the whole run, in two tracefs
    instances that record nothing; returns the events held.

    Enabling a tracepoint's first probe flips its static key and points its static call
    at the probe (text_poke_bp on every call site); the second probe repoints the static
    call at the iterator. With two probes held from the start, a step's counter is a third
    one and enabling or disabling it patches no kernel text: live text patching while fio
    runs on the other vCPU is what multi-threaded TCG turns into an "Oops: int3" now and
    then (tests/data/console/tcg-int3.log)."""
    root = events_dir()
    held: set[str] = set()
    if root is None:
        return []
    for name in HOLDERS:
        d = f"{root}/instances/{name}"
        try:
            os.makedirs(d, exist_ok=True)
            sh.write_text(f"{d}/buffer_size_kb", "4")
            for event in COUNTED_EVENTS:
                if os.path.exists(f"{d}/events/{event}/enable"):
                    sh.write_text(f"{d}/events/{event}/filter", NEVER)
                    sh.write_text(f"{d}/events/{event}/enable", "1")
                    held.add(event)
        except OSError as exc:
            log.warning("holding tracepoints in %s failed: %s", d, exc)
    return sorted(held)


def dio_counters(root: str, backing_file: str) -> dict[str, TraceCount]:
    """Direct I/Os loop issues to its backing file (iomap: XFS, ext4), all and those from
    a kworker (loop's worker) rather than the caller's context; {} without the event."""
    if not os.path.exists(f"{root}/events/{DIO_EVENT}"):
        return {}
    st = os.stat(backing_file)
    dev = metrics.kernel_dev(os.major(st.st_dev), os.minor(st.st_dev))
    match = f"ino == {st.st_ino} && dev == {dev}"
    tag = f"harness-{os.getpid()}"
    return {
        "dio_all": TraceCount(root, f"{tag}-dio", DIO_EVENT, match),
        "dio_wq": TraceCount(root, f"{tag}-diowq", DIO_EVENT, f'{match} && comm ~ "kworker*"'),
    }


class LoopPathCounter:
    """Which path loop requests took during a step: executions of loop's work function
    (workqueue:workqueue_execute_start filtered to loop_workfn/loop_rootcg_workfn by
    address) per request issued (block:block_rq_issue on the loop device, else fio's I/O
    count). `reason` says why it is unavailable (no event tracing, symbols hidden)."""

    def __init__(self, loop_dev: str | None, backing_file: str | None = None) -> None:
        self.reason = ""
        self.counters: dict[str, TraceCount] = {}
        root = events_dir()
        if root and loop_dev and backing_file:
            self.counters.update(dio_counters(root, backing_file))
        addrs = loop_work_addresses()
        if root is None:
            self.reason = "no workqueue tracepoints (CONFIG_EVENT_TRACING off or no tracefs)"
            return
        if not addrs:
            self.reason = "loop work functions not in /proc/kallsyms (loop not loaded?)"
            return
        tag = f"harness-{os.getpid()}"
        self.counters["wq"] = TraceCount(
            root, f"{tag}-wq", "workqueue/workqueue_execute_start", metrics.function_filter(addrs)
        )
        if loop_dev and os.path.exists(f"{root}/events/block/block_rq_issue"):
            rdev = os.stat(loop_dev).st_rdev
            dev = metrics.kernel_dev(os.major(rdev), os.minor(rdev))
            self.counters["rq"] = TraceCount(
                root, f"{tag}-rq", "block/block_rq_issue", f"dev == {dev}"
            )

    @property
    def available(self) -> bool:
        return not self.reason

    def start(self) -> None:
        try:
            for c in self.counters.values():
                c.start()
        except OSError as exc:
            self.reason = f"tracefs instance setup failed: {exc}"
            self.remove()

    def stop(self) -> dict[str, Any]:
        """The counts (loop_wq_executions, loop_requests or None) or the reason there are
        none; removes the instances. metrics.loop_path_metrics turns them into the figure."""
        if not self.available:
            return {"unavailable": self.reason}
        try:
            counts = {k: c.stop() for k, c in self.counters.items()}
        except OSError as exc:
            return {"unavailable": f"reading tracefs counts failed: {exc}"}
        finally:
            self.remove()
        out = {"loop_wq_executions": counts["wq"], "loop_requests": counts.get("rq")}
        if "dio_all" in counts:
            out.update(loop_dio=counts["dio_all"], loop_dio_from_worker=counts["dio_wq"])
        return out

    def remove(self) -> None:
        for c in self.counters.values():
            c.remove()
