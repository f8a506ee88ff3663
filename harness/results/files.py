"""Every file the harness writes goes through here: atomically (a temporary file in the same
directory, then rename), so a crash or a full disk leaves the previous file or none, never a
truncated one; and into a directory checked up front, so a bad --out is a one-line error."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from harness.errors import InfraError, UserError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically; InfraError naming the path on a host failure."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _error(path, exc) from exc
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 hid results from the group
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _error(path, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process's umask, read without changing it (Linux >= 4.7 shows it in
    /proc/self/status; elsewhere set-and-restore)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _error(path: Path, exc: OSError) -> InfraError:
    if exc.errno == errno.ENOSPC:
        return InfraError(f"no space left on the device holding {path}: free space or use --out")
    return InfraError(f"cannot write {path}: {exc.strerror or exc}")


def describe_os_error(exc: OSError) -> str:
    """One line for a host I/O failure that escaped as a bare OSError (e.g. console.log
    filling the disk), naming the file and the fix where it can."""
    where = exc.filename or "a file the harness writes"
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device holding {where}: free space or use --out"
    return f"host I/O error on {where}: {exc.strerror or exc}"


def ensure_writable_dir(path: Path) -> Path:
    """Create `path` if needed and prove it takes files; UserError naming the fix if not."""
    try:
        if path.exists() and not path.is_dir():
            raise UserError(f"--out {path} exists and is not a directory: pick another path")
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".harness-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(
            f"output directory {path} is not writable ({exc.strerror or exc}): pass --out DIR "
            "on a writable filesystem"
        ) from exc
    return path
