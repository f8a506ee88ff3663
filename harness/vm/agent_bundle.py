"""The bundled agent a VM boot starts (guest/boot/bundle_build.py says why and what is in it):
built by the guest's interpreter, cached by what it depends on, started with -S -E."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from harness import proc
from harness.errors import InfraError
from harness.paths import GUEST_DIR, cache_subdir

BUILDER = GUEST_DIR / "boot" / "bundle_build.py"
# -S: no site (its .pth scan of dist-packages is dozens of 9p round trips, and the agent is
# stdlib only); -E: no PYTHON* variables from the host (the agent flushes its markers itself).
PYTHON_FLAGS = ("-S", "-E")


def digest(python: str, guest_dir: Path) -> str:
    """The interpreter (resolved path, size, mtime), the guest directory (tracebacks name
    its files), the builder and every guest source."""
    real = os.path.realpath(python)
    st = os.stat(real)
    h = hashlib.sha256(f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0{guest_dir}\0".encode())
    for path in (BUILDER, *sorted(guest_dir.glob("*.py"))):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def ensure(python: str, guest_dir: Path, cache: Path | None = None) -> Path:
    """The launcher of the cached bundle for this interpreter and these guest sources,
    built when missing."""
    cache = cache or cache_subdir("agent-bundle")
    cache.mkdir(parents=True, exist_ok=True)
    name = f"agent-{digest(python, guest_dir)}"
    launcher = cache / f"{name}.py"
    if launcher.is_file() and launcher.with_suffix(".bundle").is_file():
        return launcher
    argv = [python, *PYTHON_FLAGS, str(BUILDER), str(guest_dir), str(cache), name]
    out = proc.run(argv, timeout=120, check=False)
    if out.returncode != 0 or not launcher.is_file():
        tail = " | ".join((out.stderr or out.stdout).strip().splitlines()[-3:])
        raise InfraError(f"could not bundle the guest agent with {python}: {tail}")
    return launcher


def bundle_agent_argv(python: str, launcher: Path, plan: Path, results: Path) -> tuple[str, ...]:
    """How a VM guest starts the bundled agent."""
    return (python, *PYTHON_FLAGS, str(launcher), "--plan", str(plan), "--results", str(results))
