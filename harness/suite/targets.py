"""Named targets as plan.json target objects (docs/CONTRACT.md).

Disks are named after the default topology (nvme0, scsi0). In host mode a filesystem
target whose disk was not named gets a scratch image under workdir instead (plans.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    spec: dict[str, Any]
    tags: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)

    def to_plan(self, size_mb: int | None) -> dict[str, Any]:
        out = {"name": self.name, **self.spec}
        if size_mb is not None and out["kind"] != "raw":
            out["size_mb"] = size_mb
        return out


def _loop(name: str, fs: str, dio: bool, bs: int = 512, **kw: Any) -> Target:
    disk = "nvme0" if fs == "xfs" else "scsi0"
    desc = f"loop (dio {'on' if dio else 'off'}, bs {bs}) over a sparse file on {fs} on {disk}"
    if kw.get("base_block_size"):
        desc += f" seen through {kw['base_block_size']}-byte sectors"
    spec = {
        "kind": "loop",
        "fs": fs,
        "disk": disk,
        "direct_io": dio,
        "block_size": bs,
        "alloc": "sparse",
        **kw,
    }
    return Target(name, desc, spec, ("loop", fs, "dio-on" if dio else "dio-off"))


def _stacked(name: str, dm: str, disks: tuple[str, ...], what: str) -> Target:
    """loop (dio on) over a sparse file on XFS on a dm device: the revert's configuration."""
    spec = {
        "kind": "stacked",
        "dm": dm,
        "disks": list(disks),
        "fs": "xfs",
        "direct_io": True,
        "alloc": "sparse",
    }
    desc = f"loop (dio on) over a sparse file on XFS on {what} ({'+'.join(disks)})"
    return Target(name, desc, spec, ("stacked", "loop", "xfs", f"dm-{dm}", "upstream"))


def _nested(name: str, fs: str, depth: int) -> Target:
    spec = {
        "kind": "nested-loop",
        "fs": fs,
        "disk": "nvme0" if fs == "xfs" else "scsi0",
        "depth": depth,
        "direct_io": True,
        "alloc": "sparse",
    }
    chain = " on ".join(["loop"] + [f"{fs} on loop"] * (depth - 1) + [f"{fs} on {spec['disk']}"])
    return Target(name, f"{chain} (dio on)", spec, ("nested", "loop", fs, "upstream"))


STATIC_MAP_NOTE = (
    "static extent map (dm-loop/Android dm-linear over FIEMAP extents): writes bypass the "
    "filesystem, so they land in reflink-shared extents and never punch holes"
)

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "raw-nvme0", "the NVMe disk itself", {"kind": "raw", "disk": "nvme0"}, ("raw", "nvme")
        ),
        Target(
            "raw-scsi0",
            "the virtio-scsi disk itself",
            {"kind": "raw", "disk": "scsi0"},
            ("raw", "scsi"),
        ),
        Target(
            "file-xfs",
            "a file on XFS (reflink=1) on nvme0",
            {"kind": "file", "fs": "xfs", "disk": "nvme0"},
            ("file", "xfs"),
        ),
        Target(
            "file-ext4",
            "a file on ext4 on scsi0",
            {"kind": "file", "fs": "ext4", "disk": "scsi0"},
            ("file", "ext4"),
        ),
        _loop("loop-dio-on-xfs", "xfs", True),
        _loop("loop-dio-off-xfs", "xfs", False),
        _loop("loop-dio-on-xfs-bs4096", "xfs", True, 4096),
        _loop("loop-dio-off-xfs-bs4096", "xfs", False, 4096),
        _loop("loop-dio-on-ext4", "ext4", True),
        _loop("loop-dio-off-ext4", "ext4", False),
        _loop(
            "loop-dio-on-xfs4k-bs512", "xfs", True, 512, fs_sector_size=4096, base_block_size=4096
        ),
        Target(
            "nested-loop-xfs",
            "loop on XFS on loop on XFS on nvme0 (dio on)",
            {
                "kind": "nested-loop",
                "fs": "xfs",
                "disk": "nvme0",
                "direct_io": True,
                "alloc": "sparse",
            },
            ("nested", "loop", "xfs"),
        ),
        _nested("nested3-loop-xfs", "xfs", 3),
        _nested("nested-loop-ext4", "ext4", 2),
        _stacked("stacked-dm-linear-xfs", "linear", ("nvme0",), "dm-linear"),
        _stacked("stacked-dm-stripe-xfs", "stripe", ("nvme0", "scsi0"), "dm-stripe"),
        _stacked(
            "stacked-dm-crypt-xfs",
            "crypt",
            ("nvme0",),
            "dm-crypt (aes-xts-plain64, a fixed test key)",
        ),
        Target(
            "dm-linear-xfs",
            "dm-linear over a written file's extents on XFS on nvme0",
            {"kind": "dm-linear", "fs": "xfs", "disk": "nvme0"},
            ("static-map", "xfs"),
            notes={"reflink": STATIC_MAP_NOTE, "sparse": STATIC_MAP_NOTE},
        ),
    )
}


def raw_device_of(name: str) -> str | None:
    """The raw target of the disk under target `name` (loop-dio-on-xfs -> raw-nvme0, and
    raw-nvme0 -> itself); None for an unknown name or one on no disk of the default topology."""
    known = TARGETS.get(name)
    if known is None:
        return None
    if known.spec["kind"] == "raw":
        return name
    raw = f"raw-{known.spec.get('disk', '')}"
    return raw if raw in TARGETS else None


def raw_devices(names: Iterable[str]) -> dict[str, str]:
    """{target: the raw target under it} for those of `names` that have one."""
    return {n: raw for n in names if (raw := raw_device_of(n)) is not None}
