#!/usr/bin/env python3
"""Re-record the real console logs in tests/data/console/ (run as root from the checkout).

Each scenario boots a real kernel under TCG with virtme-ng (`vng --verbose` puts the kernel
console on stdout), runs a guest shell snippet that provokes one kind of splat, and saves
the console. QEMU gets -no-reboot so that a panic (vng passes panic=-1) ends the VM.

    .venv/bin/python tests/data/capture_logs.py [--kernel VMLINUZ] [SCENARIO ...]

Scenarios that need a splat from kernel code (WARNING, BUG, Oops, soft lockup, RCU stall,
KFENCE, stack overflow) load the tiny out-of-tree module in tests/data/splatmod/, built
against the Debian headers of the same release (fetched with `apt-get download` into the
cache, never installed). The Debian 6.12 kernel has no KASAN, UBSAN, lockdep or LKDTM, so
those kinds are not recorded here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.paths import cache_subdir  # noqa: E402
from harness.proc import run  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "console"
RELEASE = "6.12.111+deb12-amd64"  # the release the logs were recorded with
HEADER_PKGS = (
    f"linux-headers-{RELEASE}",
    "linux-headers-6.12.111+deb12-common",
    "linux-kbuild-6.12.111+deb12",
)

# The guest command's own output does not reach the captured console, so each step of a
# snippet reports itself through /dev/kmsg (one record per step) into the log.
STEP = r"""
step() { out=$("$@" 2>&1); rc=$?; echo "capture: $* -> rc=$rc $out" > /dev/kmsg; }
"""

HUNG_TASK = (
    STEP
    + """
step modprobe loop
step modprobe xfs
step truncate -s 320M /tmp/ht.img
step mkfs.xfs -q /tmp/ht.img
dev=$(losetup -f --show /tmp/ht.img)
step echo "loop device: $dev"
step mkdir -p /tmp/htmnt
step mount $dev /tmp/htmnt
step sh -c 'echo 5 > /proc/sys/kernel/hung_task_timeout_secs'
step fsfreeze -f /tmp/htmnt
dd if=/dev/zero of=/tmp/htmnt/f bs=4k count=1 conv=fsync 2>/dev/null &
step sleep 25
step fsfreeze -u /tmp/htmnt
wait
step umount /tmp/htmnt
step losetup -d $dev
"""
)

# name -> (guest shell snippet, extra kernel command line, needs the module)
SCENARIOS: dict[str, tuple[str, str, bool]] = {
    "clean-boot": ("uname -r", "", False),
    "sysrq-crash": ("echo c > /proc/sysrq-trigger", "", False),
    "hung-task": (HUNG_TASK, "", False),
    "warning": ("insmod {mod} action=warn; echo after-warn", "", True),
    "bug": ("insmod {mod} action=bug; echo after-bug", "", True),
    "oops-null": ("insmod {mod} action=null; echo after-null", "", True),
    "soft-lockup": (
        "echo 1 > /proc/sys/kernel/watchdog_thresh; insmod {mod} action=spin secs=8; echo done",
        "",
        True,
    ),
    "rcu-stall": (
        "echo 3 > /sys/module/rcupdate/parameters/rcu_cpu_stall_timeout;"
        " insmod {mod} action=rcu secs=8; echo done",
        "",
        True,
    ),
    # Enabled late so that the pool is fresh: sampling every 1 ms from boot on fills all
    # 255 KFENCE objects with long-lived allocations before the module can get one.
    "kfence": (
        "echo 1 > /sys/module/kfence/parameters/sample_interval; insmod {mod} action=kfence",
        "",
        True,
    ),
    "stack-overflow": ("insmod {mod} action=stack", "", True),
    "stack-end": ("insmod {mod} action=stackend", "", True),
}


def vng_argv(kernel: str, script: str, append: str) -> list[str]:
    argv = [str(Path(sys.executable).parent / "vng"), "--run", kernel, "--disable-kvm"]
    argv += ["--verbose", "--memory", "1G", "--qemu-opts=-no-reboot"]
    if append:
        argv += ["--append", append]
    return argv + ["--exec", script]


def build_module() -> Path:
    """Build tests/data/splatmod against extracted Debian headers; return the .ko path."""
    root = cache_subdir("splatmod")
    tree = root / "root"
    headers = tree / "usr/src" / f"linux-headers-{RELEASE}"
    if not headers.is_dir():
        debs = root / "debs"
        debs.mkdir(exist_ok=True)
        run(["apt-get", "download", *HEADER_PKGS], cwd=debs, timeout=600)
        for deb in sorted(debs.glob("*.deb")):
            run(["dpkg-deb", "-x", str(deb), str(tree)], timeout=300)
        _relink_absolute(tree)
        # The arch Makefile includes the common one by its absolute /usr/src path.
        makefile = headers / "Makefile"
        makefile.write_text(makefile.read_text().replace("/usr/src/", f"{tree}/usr/src/"))
    build = root / "build"
    build.mkdir(exist_ok=True)
    for src in ("splatmod.c", "Makefile"):
        (build / src).write_text((HERE / "splatmod" / src).read_text())
    run(["make", "-C", str(headers), f"M={build}", "modules"], timeout=600)
    return build / "splatmod.ko"


def _relink_absolute(tree: Path) -> None:
    # The header packages link into /usr/... absolutely; point those links into `tree`.
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink() and os.readlink(path).startswith("/"):
                target = tree / os.readlink(path).lstrip("/")
                path.unlink()
                path.symlink_to(target)


def boot_console(kernel: str, script: str, append: str = "") -> tuple[int, str]:
    """Boot `kernel` under TCG running `script`; return vng's exit code and the console."""
    # vng runs virtme-run through PATH, so the venv's bin must be on it.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    # The console arrives on vng's stderr and the guest command's output on its stdout;
    # log_path interleaves both in arrival order, as the harness's console.log does.
    with tempfile.TemporaryDirectory(prefix="capture-") as tmp:
        raw = Path(tmp) / "console.log"
        argv = vng_argv(kernel, script, append)
        proc = run(argv, timeout=900, cwd="/tmp", env=env, check=False, log_path=raw)
        return proc.returncode, raw.read_text(errors="replace").replace("\r\n", "\n")


def capture(name: str, kernel: str, module: Path | None) -> None:
    script, append, _ = SCENARIOS[name]
    rc, text = boot_console(kernel, script.replace("{mod}", str(module)), append)
    (OUT / f"{name}.log").write_text(text)
    print(f"{name}: rc={rc} {len(text.splitlines())} lines", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", help=f"a vmlinuz (default: Debian's {RELEASE}, fetched)")
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args()
    if args.kernel is None:
        from harness.kernel import debian

        args.kernel = str(debian.fetch(RELEASE.removesuffix("-amd64")).image)
    OUT.mkdir(exist_ok=True)
    needs_module = any(SCENARIOS[n][2] for n in args.scenarios)
    module = build_module() if needs_module else None
    for name in args.scenarios:
        capture(name, args.kernel, module)
    return 0


if __name__ == "__main__":
    sys.exit(main())
