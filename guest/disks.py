"""Finding the plan's disks by serial, never by probe order.

Verified in a virtme-ng guest (Debian 6.12, QEMU nvme serial=HNVME0, scsi-hd serial=HSCSI0):
`lsblk -J -o NAME,SERIAL,MODEL` reports both serials; in sysfs the NVMe serial is in
/sys/block/nvme0n1/device/serial (space padded) while the SCSI one is only in the VPD page
/sys/block/sda/device/vpd_pg80, so lsblk is the primary source and sysfs the fallback.
"""

from __future__ import annotations

import json
import os
from typing import Any

from guest import sh


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


def serials_from_sysfs(root: str = "/sys/block") -> dict[str, str]:
    """Map serial -> /dev path from sysfs (NVMe device/serial, SCSI device/vpd_pg80)."""
    found: dict[str, str] = {}
    for name in sorted(os.listdir(root)):
        serial = sh.read_text(f"{root}/{name}/device/serial", "") or ""
        if not serial:
            try:
                with open(f"{root}/{name}/device/vpd_pg80", "rb") as fh:
                    serial = vpd_serial(fh.read())
            except OSError:
                serial = ""
        if serial.strip():
            found.setdefault(serial.strip(), "/dev/" + name)
    return found


def find_disks(wanted: list[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    """Resolve the plan's disks to /dev paths: (name -> path, problems).

    A disk with "path" (host mode: a device the user named) is used as given after checking
    it is a block device; the others are looked up by serial.
    """
    by_serial: dict[str, str] = {}
    if any(not d.get("path") for d in wanted):
        by_serial = serials_from_sysfs()
        if sh.which("lsblk"):
            rc, out = sh.run(["lsblk", "-J", "-d", "-o", "NAME,SERIAL,MODEL"], check=False)
            if rc == 0:
                by_serial.update(serials_from_lsblk(out))
    found: dict[str, str] = {}
    problems: list[str] = []
    for disk in wanted:
        path = disk.get("path") or by_serial.get(str(disk.get("serial", "")))
        if not path:
            problems.append(f"disk {disk['name']} (serial {disk.get('serial')}) not found")
        elif not os.path.exists(path):
            problems.append(f"disk {disk['name']}: {path} does not exist")
        else:
            found[disk["name"]] = path
    return found, problems


def hw_queues(dev_path: str) -> int | None:
    """Number of blk-mq hardware queues of a whole disk (/sys/block/X/mq/N), None if unknown."""
    mq = os.path.join("/sys/block", os.path.basename(os.path.realpath(dev_path)), "mq")
    try:
        return sum(1 for entry in os.listdir(mq) if entry.isdigit())
    except OSError:
        return None
