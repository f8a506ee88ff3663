"""Finding the plan's disks by serial, never by probe order.

Verified in a virtme-ng guest (Debian 6.12, QEMU nvme serial=HNVME0, scsi-hd serial=HSCSI0):
`lsblk -J -o NAME,SERIAL,MODEL` reports both serials; in sysfs the NVMe serial is in
/sys/block/nvme0n1/device/serial (space padded) while the SCSI one is only in the VPD page
/sys/block/sda/device/vpd_pg80. sysfs is read first (no exec); lsblk only for a serial
sysfs does not show.
"""

from __future__ import annotations

import json
import os
import time

from guest import sh

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any


def serials_from_lsblk(text: str) -> dict[str, str]:
    """Map serial -> /dev path from `lsblk -J -o NAME,SERIAL,MODEL` output (whole disks)."""
    found: dict[str, str] = {}
    for dev in json.loads(text).get("blockdevices", []):
        serial = (dev.get("serial") or "").strip()
        if serial:
            found.setdefault(serial, "/dev/" + dev["name"])
    return found


def vpd_serial(raw: bytes) -> str:
    """The serial in a SCSI VPD page 0x80 (4-byte header, then the ASCII serial)."""
    if len(raw) < 4:
        return ""
    length = int.from_bytes(raw[2:4], "big")
    return raw[4 : 4 + length].decode("ascii", "replace").strip(" \x00")


def serials_from_sysfs(root: str = "/sys/block", dev: str = "/dev") -> dict[str, str]:
    """Map serial -> /dev path from sysfs (NVMe device/serial, SCSI device/vpd_pg80), for
    disks with a device node (a multipath NVMe's hidden per-path disk has none)."""
    found: dict[str, str] = {}
    for name in sorted(os.listdir(root)):
        if not os.path.exists(f"{dev}/{name}"):
            continue
        serial = sh.read_text(f"{root}/{name}/device/serial", "") or ""
        if not serial:
            try:
                with open(f"{root}/{name}/device/vpd_pg80", "rb") as fh:
                    serial = vpd_serial(fh.read())
            except OSError:
                serial = ""
        if serial.strip():
            found.setdefault(serial.strip(), f"{dev}/{name}")
    return found


# The drivers each bus needs. udev used to load them from modalias; the harness boots
# without udev where it can (it was most of a TCG boot), so the agent loads them itself.
DRIVERS = {"nvme": ("nvme",), "scsi": ("virtio_scsi", "sd_mod"), "virtio-blk": ("virtio_blk",)}
DISK_WAIT_S = 30.0  # probing after modprobe is asynchronous
# Where each driver shows once registered, built in or loaded: a built-in driver without
# parameters has no /sys/module entry, and a lean kernel has no modules.builtin to say so.
DRIVER_SYSFS = {
    "nvme": "/sys/bus/pci/drivers/nvme",
    "virtio_scsi": "/sys/bus/virtio/drivers/virtio_scsi",
    "sd_mod": "/sys/bus/scsi/drivers/sd",
    "virtio_blk": "/sys/bus/virtio/drivers/virtio_blk",
}


def _builtin_modules(release: str) -> set[str]:
    text = sh.read_text(f"/lib/modules/{release}/modules.builtin", "") or ""
    return {os.path.basename(line).removesuffix(".ko").replace("-", "_") for line in text.split()}


def _registered(module: str) -> bool:
    return os.path.isdir(f"/sys/module/{module}") or os.path.isdir(DRIVER_SYSFS[module])


def load_drivers(wanted: list[dict[str, Any]]) -> dict[str, str]:
    """modprobe the drivers the plan's disks need; disk name -> problem for those whose driver
    is neither loaded, built in nor loadable (the message names the module). One modprobe
    for all of them (each exec of modprobe is a cold start over 9p under TCG); only when it
    fails is each module tried alone, to name the one that is missing."""
    release = os.uname().release
    buses = {d["name"]: str(d.get("bus", "")) for d in wanted if not d.get("path")}
    needs = {
        name: [m for m in DRIVERS.get(bus, ()) if not _registered(m)] for name, bus in buses.items()
    }
    if any(needs.values()):  # modules.builtin only when sysfs does not already say
        builtin = _builtin_modules(release)
        needs = {name: [m for m in ms if m not in builtin] for name, ms in needs.items()}
    modules = sorted({m for ms in needs.values() for m in ms})
    if not modules or sh.run(["modprobe", "-a", *modules], check=False)[0] == 0:
        return {}
    failed = {}
    for module in modules:
        rc, out = sh.run(["modprobe", module], check=False)
        if rc != 0:
            failed[module] = out.strip()[-120:]
    problems: dict[str, str] = {}
    for name, ms in needs.items():
        for module in (m for m in ms if m in failed):
            problems[name] = (
                f"disk {name} ({buses[name]}) needs driver {module}, which kernel {release} lacks "
                f"(not built in, modprobe: {failed[module]}): enable CONFIG for {module} or "
                "use another topology"
            )
    return problems


def _lookup(serials: set[str]) -> dict[str, str]:
    """serial -> /dev path for the wanted serials: sysfs first, lsblk only for those sysfs
    does not show (each exec of lsblk is a cold start over 9p under TCG)."""
    if not serials:
        return {}
    by_serial = serials_from_sysfs()
    if not serials <= by_serial.keys() and sh.which("lsblk"):
        rc, out = sh.run(["lsblk", "-J", "-d", "-o", "NAME,SERIAL,MODEL"], check=False)
        if rc == 0:
            by_serial.update(serials_from_lsblk(out))
    return by_serial


def find_disks(
    wanted: list[dict[str, Any]], wait_s: float = DISK_WAIT_S
) -> tuple[dict[str, str], dict[str, str]]:
    """Resolve the plan's disks to /dev paths: (name -> path, name -> problem).

    A disk with "path" (host mode: a device the user named) is used as given after checking
    it is a block device; the others are looked up by serial, waiting up to wait_s for
    drivers loaded just now to finish probing.
    """
    problems = load_drivers(wanted)
    serials = {str(d.get("serial", "")) for d in wanted if not d.get("path")}
    deadline = time.monotonic() + wait_s
    while True:
        by_serial = _lookup(serials)
        missing = [
            d
            for d in wanted
            if d["name"] not in problems
            and not d.get("path")
            and str(d.get("serial", "")) not in by_serial
        ]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    found: dict[str, str] = {}
    for disk in wanted:
        name = disk["name"]
        path = disk.get("path") or by_serial.get(str(disk.get("serial", "")))
        if name in problems:
            continue
        if not path:
            problems[name] = f"disk {name} (serial {disk.get('serial')}) not found"
        elif not os.path.exists(path):
            problems[name] = f"disk {name}: {path} does not exist"
        else:
            found[name] = path
    return found, problems


def hw_queues(dev_path: str) -> int | None:
    """Number of blk-mq hardware queues of a whole disk (/sys/block/X/mq/N), None if unknown."""
    mq = os.path.join("/sys/block", os.path.basename(os.path.realpath(dev_path)), "mq")
    try:
        return sum(1 for entry in os.listdir(mq) if entry.isdigit())
    except OSError:
        return None
