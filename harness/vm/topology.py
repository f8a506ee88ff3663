"""Guest disk topology as data, and the QEMU argv fragments that realise it.

Disks get ids prefixed `h` (hd-*, hc-*) because virtme-ng already uses some ids (sd0, ...).
Each disk carries a serial (H + NAME) so the guest agent finds it by serial, never by
probe order.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.vm.pathsafe import qemu_path

BUSES = ("nvme", "scsi", "virtio-blk")
CACHE_MODES = ("none", "writeback", "writethrough", "directsync", "unsafe")
AIO_MODES = ("threads", "native", "io_uring")
# The drivers each bus needs: the agent loads what is missing (guest/disks.py DRIVERS, the
# same table: a test holds them equal), a modular kernel's initramfs preloads them.
BUS_DRIVERS = {"nvme": ("nvme",), "scsi": ("virtio_scsi", "sd_mod"), "virtio-blk": ("virtio_blk",)}
_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,15}$")


@dataclass(frozen=True)
class Disk:
    """One emulated disk with its own controller and a sparse raw backing image."""

    name: str
    bus: str
    size_mb: int = 2048
    queues: int = 4  # nvme max_ioqpairs, virtio-scsi num_queues, virtio-blk num-queues
    poll_queues: int = 0  # nvme only: the guest gets nvme.poll_queues=N on its cmdline
    cache: str = "none"
    aio: str = "threads"
    discard: bool = True
    iops_limit: int = 0  # QEMU throttling, 0 = unlimited (used to plant a known slowdown)
    bps_limit: int = 0

    @property
    def serial(self) -> str:
        return "H" + self.name.upper()

    def validate(self) -> None:
        problems = []
        if not _NAME_RE.match(self.name):
            problems.append(f"name '{self.name}' must match {_NAME_RE.pattern}")
        if self.bus not in BUSES:
            problems.append(f"bus '{self.bus}' must be one of {', '.join(BUSES)}")
        if self.cache not in CACHE_MODES:
            problems.append(f"cache '{self.cache}' must be one of {', '.join(CACHE_MODES)}")
        if self.aio not in AIO_MODES:
            problems.append(f"aio '{self.aio}' must be one of {', '.join(AIO_MODES)}")
        if self.aio == "native" and self.cache not in ("none", "directsync"):
            problems.append("aio 'native' needs cache 'none' or 'directsync' (O_DIRECT)")
        if not 64 <= self.size_mb <= 1 << 20:
            problems.append(f"size_mb {self.size_mb} must be within 64..1048576")
        if not 1 <= self.queues <= 64:
            problems.append(f"queues {self.queues} must be within 1..64")
        if self.poll_queues and (self.bus != "nvme" or self.poll_queues >= self.queues):
            problems.append("poll_queues needs bus 'nvme' and fewer poll queues than queues")
        if min(self.iops_limit, self.bps_limit) < 0:
            problems.append("iops_limit/bps_limit must be >= 0")
        if problems:
            raise UserError(f"disk '{self.name}': " + "; ".join(problems))


NO_NVME_MULTIPATH = "nvme_core.multipath=N"


@dataclass(frozen=True)
class Topology:
    name: str
    disks: tuple[Disk, ...]
    cpus: int = 2
    memory_mb: int = 2048

    def validate(self) -> None:
        if not self.disks:
            raise UserError(f"topology '{self.name}' has no disks: add at least one")
        names = [d.name for d in self.disks]
        if len(set(names)) != len(names):
            raise UserError(f"topology '{self.name}' repeats a disk name: {names}")
        if not 1 <= self.cpus <= 64 or not 256 <= self.memory_mb <= 65536:
            raise UserError(f"topology '{self.name}': cpus 1..64 and memory_mb 256..65536")
        if sum(1 for d in self.disks if d.poll_queues) > 1:
            raise UserError(f"topology '{self.name}': poll_queues on more than one NVMe disk")
        for disk in self.disks:
            disk.validate()

    def plan_disks(self) -> list[dict[str, str]]:
        """The disk list the guest plan gets (docs/CONTRACT.md)."""
        return [{"name": d.name, "bus": d.bus, "serial": d.serial} for d in self.disks]

    def kernel_append(self) -> list[str]:
        """Kernel command-line words this topology needs: NVMe poll queues, and no NVMe
        multipath. QEMU 10's NVMe controller always sits in a subsystem, so a kernel with
        NVME_MULTIPATH puts a bio-based head disk (no blk-mq queues of its own) in front of
        the namespace, and "raw NVMe" would measure one more layer than under QEMU 7.2. A
        kernel without multipath ignores the word (modules log an unknown parameter)."""
        polls = [d.poll_queues for d in self.disks if d.poll_queues]
        words = [f"nvme.poll_queues={polls[0]}"] if polls else []
        if any(d.bus == "nvme" for d in self.disks):
            words.append(NO_NVME_MULTIPATH)
        return words

    def drivers(self) -> tuple[str, ...]:
        """The kernel modules the disks need, in first-use order (as the agent loads them)."""
        wanted = [m for d in self.disks for m in BUS_DRIVERS.get(d.bus, ())]
        return tuple(dict.fromkeys(wanted))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


BUILTIN = {
    # One poll queue on the NVMe so the polled io_uring rows run on raw NVMe by default.
    "default": Topology("default", (Disk("nvme0", "nvme", poll_queues=1), Disk("scsi0", "scsi"))),
    "nvme-poll": Topology("nvme-poll", (Disk("nvme0", "nvme", queues=4, poll_queues=1),)),
    "all-buses": Topology(
        "all-buses", (Disk("nvme0", "nvme"), Disk("scsi0", "scsi"), Disk("vblk0", "virtio-blk"))
    ),
}


def from_dict(data: Any, name: str) -> Topology:
    """Validate a topology given as data ({"disks": [...], "cpus", "memory_mb"})."""
    if not isinstance(data, dict) or not isinstance(data.get("disks"), list):
        raise UserError(f"topology {name}: expected an object with a 'disks' list")
    disk_fields = {f.name for f in dataclasses.fields(Disk)}
    disks = []
    for i, item in enumerate(data["disks"]):
        if not isinstance(item, dict):
            raise UserError(f"topology {name}: disks[{i}] must be an object")
        unknown = set(item) - disk_fields
        if unknown:
            raise UserError(
                f"topology {name}: disks[{i}] has unknown keys {sorted(unknown)}; "
                f"known: {sorted(disk_fields)}"
            )
        try:
            disks.append(Disk(**item))
        except TypeError as exc:
            raise UserError(f"topology {name}: disks[{i}]: {exc}") from exc
    extra = set(data) - {"name", "disks", "cpus", "memory_mb"}
    if extra:
        raise UserError(f"topology {name}: unknown keys {sorted(extra)}")
    topo = Topology(
        name=str(data.get("name", name)),
        disks=tuple(disks),
        cpus=int(data.get("cpus", 2)),
        memory_mb=int(data.get("memory_mb", 2048)),
    )
    topo.validate()
    return topo


def load(name_or_path: str) -> Topology:
    """A built-in topology by name, or a JSON file."""
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise UserError(
            f"unknown topology '{name_or_path}': use one of {', '.join(BUILTIN)} or a JSON file"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"topology file {path} is not valid JSON: {exc}") from exc
    return from_dict(data, path.stem)


def drive_argv(disk: Disk, image: Path) -> list[str]:
    opts = [
        f"file={qemu_path(image)}",
        "if=none",
        f"id=hd-{disk.name}",
        "format=raw",
        f"cache={disk.cache}",
        f"aio={disk.aio}",
        f"discard={'unmap' if disk.discard else 'ignore'}",
    ]
    if disk.iops_limit:
        opts.append(f"throttling.iops-total={disk.iops_limit}")
    if disk.bps_limit:
        opts.append(f"throttling.bps-total={disk.bps_limit}")
    return ["-drive", ",".join(opts)]


def device_argv(disk: Disk) -> list[str]:
    drive, serial = f"hd-{disk.name}", disk.serial
    if disk.bus == "nvme":
        return [
            "-device",
            f"nvme,id=hc-{disk.name},drive={drive},serial={serial},max_ioqpairs={disk.queues}",
        ]
    if disk.bus == "scsi":
        return [
            "-device",
            f"virtio-scsi-pci,id=hc-{disk.name},num_queues={disk.queues}",
            "-device",
            f"scsi-hd,drive={drive},bus=hc-{disk.name}.0,serial={serial}",
        ]
    return ["-device", f"virtio-blk-pci,drive={drive},serial={serial},num-queues={disk.queues}"]


def qemu_argv(topology: Topology, images: dict[str, Path]) -> list[str]:
    """QEMU arguments for every disk of the topology, given each disk's backing image."""
    argv: list[str] = []
    for disk in topology.disks:
        argv += drive_argv(disk, images[disk.name]) + device_argv(disk)
    return argv


def create_images(topology: Topology, directory: Path) -> dict[str, Path]:
    """Sparse raw backing images (truncate-created: no blocks allocated until written)."""
    directory.mkdir(parents=True, exist_ok=True)
    images = {}
    for disk in topology.disks:
        path = directory / f"{disk.name}.raw"
        with path.open("wb") as fh:
            fh.truncate(disk.size_mb << 20)
        images[disk.name] = path
    return images
