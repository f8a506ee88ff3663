"""Rows for the loop NOWAIT series' unmerged follow-up fixes (V3 3/4 and 4/4).

throttled-writes: writeback throttling (wbt, a low queue/wbt_lat_usec) on the disk below and
on loop itself, buffered and direct writes through loop with dio on: loop submitting inside
an rq-qos throttle deadlocked (a hang is judged by the step timeout and the watchdog).

plug-reentry: plugged batches of requests reach loop while loop itself submits into another
block device: buffered writeback of a filesystem on loop on a filesystem on loop, then cold
readahead through the nested loops, repeated; a `->queue_rq` that adds to the plug list
being flushed corrupted it. Data is checksummed after every round.
The *_job and sysfs-path functions are pure and unit-tested.
"""

from __future__ import annotations

import contextlib
import os

from guest import blockio, fio, metrics, sh, targets
from guest.api import Context, Outcome, Prepared, Skip
from guest.blockio import MIB

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any


def wbt_path(device: str) -> str:
    """queue/wbt_lat_usec of a whole block device (/dev/nvme0n1, /dev/loop3, /dev/sda)."""
    return f"/sys/block/{os.path.basename(os.path.realpath(device))}/queue/wbt_lat_usec"


def buffered_job(size_mb: int) -> dict[str, Any]:
    """Buffered sequential writes, flushed at the end: writeback goes through wbt."""
    return {
        "rw": "write",
        "bs": "64k",
        "size": f"{size_mb}M",
        "direct": 0,
        "ioengine": "psync",
        "numjobs": 2,
        "offset_increment": f"{size_mb}M",
        "end_fsync": 1,
        "group_reporting": 1,
    }


def direct_job(size_mb: int, runtime_s: int) -> dict[str, Any]:
    """Queue-depth direct random writes: loop's dio path under the throttle."""
    return {
        "rw": "randwrite",
        "bs": "4k",
        "size": f"{size_mb}M",
        "direct": 1,
        "ioengine": "libaio",
        "iodepth": 32,
        "numjobs": 2,
        "runtime": runtime_s,
        "time_based": 1,
        "group_reporting": 1,
    }


def _set_wbt(device: str, lat_us: int, stack: contextlib.ExitStack) -> dict[str, Any]:
    path = wbt_path(device)
    old = sh.read_text(path)
    if old is None:
        raise Skip(f"no writeback throttling on {device} (CONFIG_BLK_WBT off: {path} absent)")
    stack.callback(sh.write_text, path, old)
    sh.write_text(path, str(lat_us))
    return {"device": device, "was_us": int(old), "set_us": int(sh.read_text(path, "0") or 0)}


def _fio(name: str, path: str, job: dict[str, Any], out_dir: str, timeout: float) -> dict:
    output = os.path.join(out_dir, f"{name}.json")
    argv = fio.fio_argv(name, path, job, output)
    rc, out = sh.run(argv, timeout=timeout, check=False)
    try:
        with open(output) as fh:
            data = metrics.load_fio_json(fh.read())
    except (OSError, ValueError):
        data = {}
    errors = metrics.fio_errors(data)
    written = sum(int(j.get("write", {}).get("io_bytes", 0)) for j in data.get("jobs", []))
    return {"rc": rc, "errors": errors, "written_bytes": written, "tail": out.strip()[-200:]}


def check_throttled_writes(
    prepared: Prepared, params: dict[str, Any], ctx: Context, stack: contextlib.ExitStack
) -> Outcome:
    """wbt at a low latency target on the disk below and on loop; buffered then direct
    writes through loop (dio on) complete, with no error and no hang."""
    dev, below = prepared.loop_dev, prepared.extra.get("base_device")
    if not dev or not below or not str(below).startswith("/dev/"):
        raise Skip(f"throttled-writes needs loop over a file on a disk; {prepared.kind} is not")
    lat = int(params.get("wbt_lat_usec", 1000))
    wbt = [_set_wbt(below, lat, stack), _set_wbt(dev, lat, stack)]
    details: dict[str, Any] = {"loop_dio": prepared.extra.get("loop_dio"), "wbt": wbt}
    out_dir = os.path.join(ctx.results or ctx.workdir, "fio")
    os.makedirs(out_dir, exist_ok=True)
    size_mb = int(params.get("size_mb", 32))
    tag = f"throttled-{prepared.name}"
    timeout = float(params.get("fio_timeout_s", 240))
    details["buffered"] = _fio(f"{tag}-buffered", dev, buffered_job(size_mb), out_dir, timeout)
    runtime = int(params.get("runtime_s", 5))
    details["direct"] = _fio(f"{tag}-direct", dev, direct_job(size_mb, runtime), out_dir, timeout)
    problems = [
        f"{kind} writes through {dev} under wbt_lat_usec={lat} on {below} and {dev} failed: "
        f"rc {r['rc']} {'; '.join(r['errors'][:2]) or r['tail']}"
        for kind in ("buffered", "direct")
        for r in [details[kind]]
        if r["rc"] != 0 or r["errors"] or r["written_bytes"] == 0
    ]
    return Outcome("fail" if problems else "pass", "; ".join(problems), {}, details)


def _round(mnt: str, rnd: int, files: int, file_mb: int) -> list[str]:
    """Buffered writes left to writeback (one sync), then cold buffered reads with
    readahead; names of files that read back wrong."""
    import hashlib  # OpenSSL's libcrypto: loaded when a check first needs it

    sums = {}
    for i in range(files):
        data = blockio.pattern(rnd * 100 + i, file_mb * MIB)
        path = os.path.join(mnt, f"r{rnd}-{i}")
        with open(path, "wb") as fh:
            for off in range(0, len(data), 64 * 1024):  # many small dirty ranges to merge
                fh.write(data[off : off + 64 * 1024])
        sums[path] = hashlib.sha256(data).hexdigest()
    os.sync()  # writeback of every file at once: plugged batches into loop
    with contextlib.suppress(OSError):
        sh.write_text("/proc/sys/vm/drop_caches", "3")
    bad = []
    for path, want in sums.items():
        fd = os.open(path, os.O_RDONLY)
        try:
            with contextlib.suppress(OSError):  # ENOSYS without CONFIG_ADVISE_SYSCALLS
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            h = hashlib.sha256()
            while chunk := os.read(fd, MIB):
                h.update(chunk)
        finally:
            os.close(fd)
        if h.hexdigest() != want:
            bad.append(os.path.basename(path))
        os.unlink(path)
    return bad


def check_plug_reentry(
    prepared: Prepared, params: dict[str, Any], ctx: Context, stack: contextlib.ExitStack
) -> Outcome:
    """A filesystem on the target's top loop (itself on a filesystem on loop): rounds of
    buffered writeback and cold readahead through the nested loops, data checksummed."""
    dev = prepared.loop_dev
    if not dev or prepared.kind not in ("nested-loop", "stacked"):
        raise Skip(f"plug-reentry needs loop on a filesystem on loop; {prepared.kind} is not")
    fs = str(params.get("fs", "ext4"))
    targets.mkfs(fs, dev)
    mnt = os.path.join(ctx.workdir, "mnt", f"reentry-{os.getpid()}")
    rounds, files = int(params.get("rounds", 4)), int(params.get("files", 16))
    file_mb = int(params.get("file_mb", 2))
    details: dict[str, Any] = {
        "fs": fs,
        "rounds": rounds,
        "files": files,
        "file_mb": file_mb,
        "layers": prepared.extra.get("layers"),
    }
    problems: list[str] = []
    with contextlib.ExitStack() as inner:
        targets.mount(dev, mnt, fs, inner)
        for rnd in range(rounds):
            bad = _round(mnt, rnd, files, file_mb)
            if bad:
                problems.append(
                    f"round {rnd + 1}: {len(bad)} file(s) on {fs} on {dev} read "
                    f"back wrong after writeback: {', '.join(bad[:3])}"
                )
                break
        details["rounds_done"] = rnd + 1
    return Outcome("fail" if problems else "pass", "; ".join(problems), {}, details)
