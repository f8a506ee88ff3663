"""Named fio workloads: the seeds' fio lines and short rows for TCG.

Each is a frozen record of fio options; plans override runtime and size. Runtimes here are
the seeds' own (real hardware); the `quick` and `loop` plans shorten them for TCG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_BASE = {"direct": 1, "time_based": 1, "group_reporting": 1}


@dataclass(frozen=True)
class Workload:
    """One fio job. `target_kinds` limits where it makes sense (empty: anywhere)."""

    name: str
    description: str
    fio: dict[str, Any]
    tags: tuple[str, ...] = ()
    target_kinds: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_plan(self, runtime_s: int | None, size_mb: int | None) -> dict[str, Any]:
        """The plan.json `workload` object, with runtime/size overrides applied."""
        params = dict(self.fio)
        if runtime_s is not None:
            params["runtime"] = runtime_s
        if size_mb is not None:
            params["size"] = f"{size_mb}M"
        out: dict[str, Any] = {"name": self.name, "fio": params}
        if self.requires:
            out["requires"] = list(self.requires)
        return out


def _fio(**kw: Any) -> dict[str, Any]:
    return {**_BASE, **kw}


_MIKULAS = "Mikulas Patocka's dm-loop table: --direct=1 --bs=4k --runtime=10 --numjobs=12 --rw=rw"
_MING = "Ming Lei's patch 5 test: loop --direct-io=on over a truncate-created file on XFS"

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "mikulas-rw-psync",
            "4k rw, 12 jobs, psync, iodepth 1",
            _fio(rw="rw", bs="4k", numjobs=12, ioengine="psync", iodepth=1, runtime=10),
            ("seed", "mixed", "psync"),
            source=_MIKULAS,
        ),
        Workload(
            "mikulas-rw-libaio",
            "4k rw, 12 jobs, libaio, iodepth 16",
            _fio(rw="rw", bs="4k", numjobs=12, ioengine="libaio", iodepth=16, runtime=10),
            ("seed", "mixed", "libaio"),
            source=_MIKULAS,
        ),
        Workload(
            "ming-randwrite-sparse",
            "4k randwrite, libaio qd16, 1 job, sparse backing",
            _fio(rw="randwrite", bs="4k", numjobs=1, ioengine="libaio", iodepth=16, runtime=40),
            ("seed", "write", "sparse"),
            target_kinds=("loop",),
            source=_MING,
        ),
        Workload(
            "ming-write-sparse",
            "4k sequential write, libaio qd16, sparse backing",
            _fio(rw="write", bs="4k", numjobs=1, ioengine="libaio", iodepth=16, runtime=40),
            ("seed", "write", "sparse"),
            target_kinds=("loop",),
            source=_MING,
        ),
        Workload(
            "seq-read-1m",
            "1 MiB sequential read, libaio qd16",
            _fio(rw="read", bs="1m", ioengine="libaio", iodepth=16, runtime=30),
            ("seed", "read", "sequential"),
        ),
        Workload(
            "seq-write-1m",
            "1 MiB sequential write, libaio qd16",
            _fio(rw="write", bs="1m", ioengine="libaio", iodepth=16, runtime=30),
            ("seed", "write", "sequential"),
        ),
        Workload(
            "randread-4k",
            "short 4k random read, libaio qd16",
            _fio(rw="randread", bs="4k", ioengine="libaio", iodepth=16, runtime=5),
            ("short", "read"),
        ),
        Workload(
            "randwrite-4k",
            "short 4k random write, libaio qd16",
            _fio(rw="randwrite", bs="4k", ioengine="libaio", iodepth=16, runtime=5),
            ("short", "write"),
        ),
        Workload(
            "uring-randread-4k",
            "4k random read, io_uring qd16",
            _fio(rw="randread", bs="4k", ioengine="io_uring", iodepth=16, runtime=5),
            ("short", "read", "io_uring"),
            requires=("io_uring",),
        ),
        Workload(
            "uring-randwrite-4k",
            "4k random write, io_uring qd16",
            _fio(rw="randwrite", bs="4k", ioengine="io_uring", iodepth=16, runtime=5),
            ("short", "write", "io_uring"),
            requires=("io_uring",),
        ),
        Workload(
            "uring-hipri-randread-4k",
            "4k random read, polled io_uring (hipri); needs nvme.poll_queues",
            _fio(rw="randread", bs="4k", ioengine="io_uring", iodepth=16, hipri=1, runtime=5),
            ("seed", "read", "io_uring", "poll"),
            requires=("io_uring", "poll"),
            source="io_uring IOPOLL article: IORING_SETUP_IOPOLL on NVMe poll queues",
        ),
    )
}


def get(name: str) -> Workload:
    from harness.errors import UserError

    if name not in WORKLOADS:
        raise UserError(f"unknown workload {name!r}: see 'harness list workloads'")
    return WORKLOADS[name]
