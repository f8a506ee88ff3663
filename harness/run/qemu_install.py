"""`harness qemu install`: Debian's newer QEMU for this release (bookworm-backports on
Debian 12) unpacked into the cache, never installed into the host; the harness then boots
every guest with it (harness.vm.qemu). `harness qemu remove` goes back to the system's.

Fetched with the private apt the kernel fetch uses (the mirror the machine's apt already
uses, its own lists and archive directory); it links against the release's own libraries,
and a QEMU that cannot load one says which in the error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness import proc
from harness.errors import InfraError
from harness.kernel import cachelock
from harness.kernel.apt_sources import host_codename
from harness.kernel.debian import PrivateApt, extract_argv
from harness.results.files import atomic_write_text
from harness.vm import qemu

PACKAGES = ("qemu-system-x86", "qemu-system-common", "qemu-system-data", "seabios")


def install() -> str:
    """Fetch and unpack the backports QEMU unless it is there; its version line. (To take a
    newer one: remove, then install.)"""
    root = qemu.installed_dir()
    root.mkdir(parents=True, exist_ok=True)
    with cachelock.held(root / "install.lock"):
        if qemu.installed_launcher().is_file():
            return version_of(str(qemu.installed_launcher()))
        backports = f"{host_codename()}-backports"
        apt = PrivateApt(root / "apt", extra_suites=(backports,))
        apt.refresh()
        archives = root / "apt" / "archives"
        for old in archives.glob("*.deb"):
            old.unlink()
        proc.run_retrying(apt.download_argv(PACKAGES, backports), timeout=1800, cwd=archives)
        tree = _unpack(sorted(archives.glob("*.deb")), root / "tree")
        launcher = qemu.installed_launcher()
        launcher.parent.mkdir(parents=True, exist_ok=True)
        firmware = (tree / "usr/share/seabios", tree / "usr/share/qemu")
        atomic_write_text(
            launcher, qemu.launcher_text(tree / "usr/bin/qemu-system-x86_64", firmware)
        )
        launcher.chmod(0o755)
        for deb in archives.glob("*.deb"):
            deb.unlink()
    return version_of(str(launcher))


def _unpack(debs: list[Path], dest: Path) -> Path:
    if len(debs) != len(PACKAGES):
        raise InfraError(f"apt-get download gave {len(debs)} packages for {len(PACKAGES)}")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for deb in debs:
        proc.run(extract_argv(deb, tmp), timeout=600)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def version_of(binary: str) -> str:
    """`binary --version`'s first line; InfraError naming a library it cannot load."""
    result = proc.run([binary, "--version"], timeout=60, check=False)
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        raise InfraError(
            f"{binary} does not start: {why}: install the library it names with apt-get, "
            "or run `harness qemu remove` to use the system's QEMU"
        )
    return result.stdout.splitlines()[0].strip()


def remove() -> None:
    """Forget the installed QEMU: guests boot with the system's again."""
    root = qemu.installed_dir()
    with cachelock.held(root / "install.lock"):
        qemu.installed_launcher().unlink(missing_ok=True)
        shutil.rmtree(root / "tree", ignore_errors=True)
