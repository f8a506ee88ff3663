"""Paths the harness hands to virtme-ng and QEMU, made safe for each one's syntax.

virtme-ng pastes --kimg, --rwdir and --cwd unquoted into the virtme-run command line it runs
with `shell=True` (virtme_ng/run.py): a path holding `;`, `$(...)` or a backtick would run as
root. So such paths are refused, by an allow-list of characters no shell treats specially.
QEMU splits option values (`-drive file=...,...`) at commas and reads a doubled comma as a
literal one, so a path in an option value has its commas doubled.

A guest booted on the host's root sees the host's files at their own paths, except where
virtme-ng's init mounts an empty tmpfs (virtme-init's mount_sys_filesystems; /run, /dev,
/proc and /sys are the guest's own): a file there is missing in the guest, and the agent
"cannot be opened" with nothing on the host side to say why. Such paths are refused too.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.errors import UserError

# Characters a POSIX shell passes through unquoted in the middle of a word. `~` is literal
# there (tilde expansion only starts a word); a word starting with `-` or `~` is refused.
SHELL_SAFE_CHARS = "A-Za-z0-9_./+:@%,=~-"
# virtme-run's own pattern for --rwdir paths (_SAFE_PATH_PATTERN, which also allows the
# space virtme-ng's shell would split at): it refuses anything else after the disks exist.
RWDIR_CHARS = "A-Za-z0-9_./+-"


def check_vng_path(path: Path | str, role: str, allowed: str = SHELL_SAFE_CHARS) -> None:
    """Raise UserError unless `path` can be pasted into virtme-ng's shell line as one word
    made only of `allowed` characters (a regex class body)."""
    text = str(path)
    bad = sorted(set(re.findall(f"[^{allowed}]", text)))
    if text and not bad and text[0] not in "-~":
        return
    shown = "".join(bad) if bad else text[:1]
    raise UserError(
        f"{role} {text!r} has characters virtme-ng cannot pass safely ({shown!r}): "
        f"use a path made only of [{allowed}] not starting with '-' or '~' (rename or symlink it)"
    )


def qemu_value(text: str) -> str:
    """`text` as the value of a QEMU option (`file=VALUE,...`): commas doubled."""
    return text.replace(",", ",,")


def qemu_path(path: Path) -> str:
    """A file path as a QEMU option value: absolute (a relative `nbd:...` or `json:...`
    would name a protocol, not a file) with its commas doubled."""
    return qemu_value(str(path.absolute()))


# Directories the guest does not share with the host under virtme-ng (virtme-init mounts a
# tmpfs over each /var one that exists; the rest are the guest's own).
GUEST_HIDDEN = (
    "/var/cache",
    "/var/log",
    "/var/tmp",
    "/var/spool/rsyslog",
    "/var/lib/portables",
    "/var/lib/machines",
    "/var/lib/private",
    "/var/lib/apt",
    "/var/lib/snapd/cookie",
    "/var/lib/sudo",
    "/run",
    "/dev",
    "/proc",
    "/sys",
)


def hidden_from_guest(path: Path) -> str | None:
    """The directory that hides `path` (symlinks resolved) from a guest on the host's root,
    or None when the guest sees it."""
    real = path.resolve()
    for top in GUEST_HIDDEN:
        if real == Path(top) or Path(top) in real.parents:
            return top
    return None


def check_guest_visible(path: Path, role: str, fix: str) -> None:
    """Raise UserError when a guest on the host's root cannot see `path`; `fix` names what
    to change."""
    top = hidden_from_guest(path)
    if top is not None:
        raise UserError(
            f"{role} {str(path)!r} is under {top}, which the guest does not share with the "
            f"host (virtme-ng mounts its own there): {fix}"
        )
