"""The initramfs a modular kernel (a Debian one) boots through: busybox, the modules the
host's root needs (9p over virtio, overlayfs for virtme-ng's writable overlays) and the
drivers the topology's disks need, and an /init that loads them and mounts the root.

Why not virtme-ng's own: its /init mounts the host's root with fixed 9p options, without
`cache=loose` (harness.vm.launch.ROOT_9P_FLAGS, which a kernel without initramfs honours),
so every stat, open and page of Python, fio and modprobe went to QEMU again. Measured
(Debian 6.12, TCG, 3 boots): agent start 1.9 -> 1.2 s, agent prep 2.2 -> 1.6 s from that
alone. It also ships a modprobe that answers every request_module() of the kernel's
crypto initialisation with a shell exec (~25 of them, ~0.35 s of the boot); this one has no
modprobe, so those fail at once as on a bare boot, and the real modprobe serves after the
switch to the host's root. Modules are stored decompressed (no xz in the guest) and the
disks' drivers are loaded here with busybox insmod, not by the agent's modprobe (kmod's
cold start over 9p). Everything else stays virtme-ng's: it still builds its command line,
its init (virtme-ng-init) runs after the switch, and QEMU takes the last -initrd it is
given, which is this one.

Built once per kernel and module set into the cache; where it cannot be built (no busybox,
a module compressed in a way the host cannot undo) the boot uses virtme-ng's own.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import lzma
import shutil
from collections.abc import Sequence
from pathlib import Path

from harness import proc
from harness.errors import HarnessError
from harness.paths import GUEST_DIR, cache_subdir
from harness.vm.initramfs import cpio_tree, packed, takes_initramfs

log = logging.getLogger(__name__)

# What virtme-ng's initramfs loads for a 9p root (virtme.virtmods), minus what q35 does not
# use (virtio_mmio) and what --force-9p does not (virtiofs). Aliases, as modprobe takes them.
ROOT_MODULES = ("fs-9p", "9pnet_virtio", "virtio_pci", "virtio_console", "overlay")
BUSYBOX_TOOLS = ("sh", "mount", "umount", "switch_root", "insmod", "mknod", "chroot")
# harness.warm=ARG,ARG,...: a command /init starts in the host's root, in the background,
# before the switch (warm_param()).
WARM_PARAM = "harness.warm"

# The initramfs's /init (a busybox shell script).
INIT_SCRIPT = GUEST_DIR / "boot" / "init.sh"


class InitramfsError(HarnessError):
    """The harness's initramfs cannot be built for this kernel (virtme-ng's serves)."""


def show_depends_argv(root: Path, release: str, modules: Sequence[str]) -> list[str]:
    """modprobe's load order for `modules` in a kernel's module tree (nothing is loaded)."""
    return [
        "modprobe",
        "--show-depends",
        "--ignore-install",
        "-d",
        str(root),
        "-S",
        release,
        "-a",
        *modules,
    ]


def parse_show_depends(text: str) -> list[Path]:
    """The module files of `modprobe --show-depends` output, in load order ("builtin X"
    lines name what needs no file)."""
    files = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "insmod":
            files.append(Path(words[1]))
    return files


def module_name(path: Path) -> str:
    """The kernel's name for a module file: nvme-core.ko.xz -> nvme_core."""
    return path.name.split(".ko")[0].replace("-", "_")


def module_chain(
    modules_dir: Path, release: str, wanted: Sequence[str], required: bool
) -> list[Path]:
    """The files to load, dependencies first, deduplicated: one modprobe for all, and only
    when one is missing one each. A module the tree lacks is an InitramfsError when
    `required`, else left out (the agent's modprobe then names it)."""
    root = modules_dir.parents[2]  # ROOT/lib/modules/RELEASE
    done = proc.run(show_depends_argv(root, release, wanted), timeout=30, check=False)
    if done.returncode == 0:
        return list(dict.fromkeys(parse_show_depends(done.stdout)))
    files: list[Path] = []
    for module in wanted:
        one = proc.run(show_depends_argv(root, release, [module]), timeout=30, check=False)
        if one.returncode == 0:
            files += parse_show_depends(one.stdout)
        elif required:
            raise InitramfsError(f"kernel {release} has no module {module}: {one.stderr}")
        else:
            log.info("initramfs: %s has no module %s (left to the agent)", release, module)
    return list(dict.fromkeys(files))


def unpack_module(src: Path, dest: Path) -> None:
    """Write a module file's ELF bytes to dest, whatever src was compressed with."""
    if src.suffix == ".zst":
        if shutil.which("zstd") is None:
            raise InitramfsError(f"{src.name} is zstd-compressed: apt-get install zstd")
        proc.run(["zstd", "-d", "-q", "-f", "-o", str(dest), str(src)], timeout=60)
        return
    data = src.read_bytes()
    if src.suffix == ".xz":
        data = lzma.decompress(data)
    elif src.suffix == ".gz":
        data = gzip.decompress(data)
    dest.write_bytes(data)


def load_script(root: Sequence[Path], drivers: Sequence[Path]) -> str:
    """The /init fragment loading each module (stored as /modules/NAME.ko): the disks'
    drivers in a background job beside the root's modules and its mount (two chains on two
    vCPUs), which /init waits for before the switch (that empties the initramfs). A driver
    chain needing one of the root's modules loads after them instead."""

    def lines(files: Sequence[Path]) -> str:
        return "".join(f"load /modules/{module_name(f)}.ko {module_name(f)}\n" for f in files)

    if not drivers:
        return lines(root)
    if set(drivers) & set(root):
        return lines([*root, *(f for f in drivers if f not in root)])
    return f"(\n{lines(drivers)}) &\ndrivers=$!\n{lines(root)}"


def _key(release: str, files: Sequence[Path], script: str, busybox: Path) -> str:
    """By content: the module files (name, size, mtime: a symlinked copy of a tree shares
    its initramfs), the scripts and busybox."""
    stats = [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files]
    text = "|".join((release, *stats, INIT_SCRIPT.read_text(), script, str(busybox.stat().st_size)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stage(stage: Path, busybox: Path, files: Sequence[Path], script: str) -> None:
    for sub in ("bin", "proc", "dev", "newroot", "modules"):
        (stage / sub).mkdir(parents=True)
    shutil.copy2(busybox, stage / "bin/busybox")
    for tool in BUSYBOX_TOOLS:
        (stage / "bin" / tool).symlink_to("busybox")
    for f in files:
        unpack_module(f, stage / "modules" / f"{module_name(f)}.ko")
    (stage / "modules/load.sh").write_text(script)
    (stage / "init").write_text(INIT_SCRIPT.read_text())
    (stage / "init").chmod(0o755)


def build(modules_dir: Path, release: str, drivers: Sequence[str]) -> Path:
    """The cached initramfs for a kernel's modules tree and the disk drivers to preload."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise InitramfsError("busybox not found: apt-get install busybox-static")
    root = module_chain(modules_dir, release, ROOT_MODULES, required=True)
    chain = module_chain(modules_dir, release, drivers, required=False)
    files = [*root, *(f for f in chain if f not in root)]
    script = load_script(root, chain)
    key = _key(release, files, script, Path(busybox))
    out = cache_subdir("initramfs") / f"boot-{release}-{key}.cpio"
    if not out.exists():
        log.info(
            "initramfs for %s: %d modules (%s)",
            release,
            len(files),
            ", ".join(module_name(f) for f in files),
        )
    return packed(out, lambda stage: _stage(stage, Path(busybox), files, script), cpio_tree)


def for_boot(modules_dir: Path | None, config: Path | None, drivers: Sequence[str]) -> Path | None:
    """The initramfs a boot of this kernel should use, or None: no modules tree (a kernel
    with its drivers built in boots without one, as lean builds do), or it cannot be built
    (virtme-ng's own serves). `modules_dir` is lib/modules/RELEASE; `config` its .config."""
    if modules_dir is None or not modules_dir.is_dir() or not takes_initramfs(config):
        return None
    try:
        return build(modules_dir, modules_dir.name, drivers)
    except (HarnessError, OSError, lzma.LZMAError) as exc:
        log.warning("virtme-ng's own initramfs serves this boot (slower: no 9p caching): %s", exc)
        return None


def warm_param(argv: Sequence[str]) -> str | None:
    """The kernel parameter that has /init run argv (the agent's launcher with --help: its
    interpreter and imports, nothing else) in the background as soon as the host's root is
    mounted, while virtme-ng-init sets the guest up. Under TCG the first run of Python in a
    boot translates the interpreter's code; a second one reuses that (cold 1.2 s, warm
    0.5 s for the agent's start). None when a word cannot travel as one (comma, space,
    quote)."""
    if any(c in word for word in argv for c in ', \t\n"') or not argv:
        return None
    return f"{WARM_PARAM}={','.join(argv)}"
