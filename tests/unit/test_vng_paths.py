"""Paths handed to virtme-ng and QEMU (issue #24 items 1, 2): virtme-ng pastes --kimg,
--rwdir and --cwd unquoted into a `shell=True` command, and QEMU splits option values at
commas. Unsafe paths are refused with one line; commas in a -drive file are doubled."""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import UserError
from harness.paths import cache_dir
from harness.run.request import RunRequest
from harness.run.vm import check_out_dir
from harness.vm import topology as topo
from harness.vm.launch import BootSpec, cmdline_estimate, vng_argv, vng_env
from harness.vm.pathsafe import SHELL_SAFE_CHARS, check_vng_path, hidden_from_guest, qemu_path

HOSTILE = (
    "/o;touch${IFS}/tmp/x;#/k",
    "/o$(id)/k",
    "/o`id`/k",
    "/o'q/k",
    '/o"q/k',
    "/o\nid/k",
    "/o|id/k",
    "/o&id/k",
    "/o*/k",
    "/o>x/k",
    "/o\\x/k",
    "/o{a,b}/k",
    "/o!x/k",
)


def _spec(**changes) -> BootSpec:
    base = BootSpec(
        image=Path("/k/bzImage"),
        exec_argv=("/usr/bin/python3", "/h/agent.py"),
        rw_dirs=(Path("/o/shared"),),
        initrd=Path("/c/boot.cpio"),
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("bad", HOSTILE)
@pytest.mark.parametrize("field", ["image", "rw_dirs", "initrd", "cwd"])
def test_every_path_virtme_ng_pastes_into_its_shell_is_checked(field: str, bad: str) -> None:
    value = (Path(bad),) if field == "rw_dirs" else Path(bad)
    with pytest.raises(UserError) as info:
        vng_argv(_spec(**{field: value}))
    assert "\n" not in str(info.value).replace(repr(bad), "") and "rename or symlink" in str(
        info.value
    )


@pytest.mark.parametrize("bad", ["/o,x/shared", "/o=x/shared", "/o:x/shared", "/o~x/shared"])
def test_shared_directory_takes_only_what_virtme_run_accepts(bad: str) -> None:
    with pytest.raises(UserError, match="shared directory"):
        vng_argv(_spec(rw_dirs=(Path(bad),)))


def test_a_word_starting_like_an_option_or_a_tilde_is_refused() -> None:
    for bad in ("-x", "--root=/", "~root/k"):
        with pytest.raises(UserError):
            check_vng_path(bad, "kernel image")


def test_allowed_paths_pass_and_survive_the_shell_as_one_word() -> None:
    path = "/c/kbuild/linux_6.12.1+deb12~bpo:x@y%z,w=v-u/bzImage"
    check_vng_path(path, "kernel image")
    # the way virtme-ng builds its line: "--kimg " + path, run by /bin/sh
    done = subprocess.run(
        ["/bin/sh", "-c", "printf '%s\\n' --kimg " + path], capture_output=True, text=True
    )
    assert done.stdout.splitlines() == ["--kimg", path]
    assert set(SHELL_SAFE_CHARS) >= set("_./+:@%,=~-")


def _virtme_run_command(argv: list[str], cwd: Path) -> list[str]:
    env = vng_env(argv[0], dict(os.environ))
    done = subprocess.run(
        [*argv, "--dry-run"], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return shlex.split(done.stdout.strip().splitlines()[-1])


def test_real_vng_passes_odd_but_safe_paths_and_doubled_commas_to_qemu(tmp_path: Path) -> None:
    """Real virtme-ng (dry run: virtme-run prints the QEMU command instead of running it)."""
    images = sorted((cache_dir() / "debian" / "kernels").glob("*/boot/vmlinuz-*"))
    vng = shutil.which("vng") or str(Path(sys.executable).parent / "vng")
    if not images or not Path(vng).exists():
        pytest.skip("needs a cached Debian kernel (harness run --kernel debian:6.12) and vng")
    odd = tmp_path / "k,1+2:3@4%5~6=7"
    odd.mkdir()
    image = odd / "bzImage"
    shutil.copy(images[-1], image)
    shared = tmp_path / "o_1+2.x" / "shared"
    shared.mkdir(parents=True)
    disk = topo.Disk("nvme0", "nvme")
    drive = topo.drive_argv(disk, tmp_path / "victim.img,throttling.group=g")
    spec = _spec(image=image, rw_dirs=(shared,), initrd=None, vng=vng, qemu_args=tuple(drive))
    qemu = _virtme_run_command(vng_argv(spec), tmp_path)
    assert qemu[qemu.index("-kernel") + 1] == str(image)
    assert any(a.startswith("local,id=") and f"path={shared}," in a for a in qemu)
    drive_file = f"file={tmp_path}/victim.img,,throttling.group=g,if=none,"
    assert any(a.startswith(drive_file) for a in qemu), qemu


def test_drive_file_commas_are_doubled_and_the_path_made_absolute() -> None:
    disk = topo.Disk("nvme0", "nvme")
    argv = topo.drive_argv(disk, Path("/o/victim.img,throttling.group=g/nvme0.raw"))
    assert argv[1].startswith("file=/o/victim.img,,throttling.group=g/nvme0.raw,if=none,")
    assert qemu_path(Path("nbd:h:1/x.raw")) == str(Path.cwd() / "nbd:h:1/x.raw")


def test_qemu_opens_the_whole_path_with_a_comma(tmp_path: Path) -> None:
    """Real QEMU: the victim beside the comma'd name is not what it opens."""
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        pytest.skip("qemu-system-x86_64 not installed")
    (tmp_path / "victim.img").write_bytes(b"\0" * 4096)
    target = tmp_path / "victim.img,readonly=on"  # not created: QEMU must say so
    drive = topo.drive_argv(topo.Disk("nvme0", "nvme"), target)
    done = subprocess.run(
        [qemu, "-machine", "none", "-nodefaults", "-display", "none", "-S", *drive],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode != 0
    assert f"Could not open '{target}'" in done.stderr, done.stderr


@pytest.mark.parametrize("suffix", ["o;touch${IFS}MARK;#", "o$(touch${IFS}MARK)", "o,x"])
def test_harness_run_refuses_such_an_out_before_anything_runs(tmp_path: Path, suffix: str):
    images = sorted((cache_dir() / "debian" / "kernels").glob("*/boot/vmlinuz-*"))
    if not images:
        pytest.skip("needs a cached Debian kernel (harness run --kernel debian:6.12)")
    mark = tmp_path / "ran"
    out = tmp_path / suffix.replace("MARK", str(mark))
    argv = ["run", "--kernel", f"image:{images[-1]}", "--plan", "quick", "--out", str(out)]
    assert main(argv) == 2
    assert not mark.exists() and not list(out.rglob("*.raw"))


# --- paths a guest on the host's root cannot see (virtme-ng mounts tmpfs over /var/cache ...)


def test_a_symlinked_cache_resolves_to_where_the_guest_finds_it(tmp_path, monkeypatch) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "link"))
    assert cache_dir() == tmp_path / "real"
    assert hidden_from_guest(tmp_path / "link") is None


def test_paths_under_what_virtme_ng_hides_are_named(tmp_path: Path) -> None:
    assert hidden_from_guest(Path("/var/cache/no-such-harness-dir")) == "/var/cache"
    assert hidden_from_guest(Path("/var/cache")) == "/var/cache"
    assert hidden_from_guest(Path("/var/cached")) is None
    assert hidden_from_guest(Path("/var/lib/kernel-harness")) is None
    (tmp_path / "into-run").symlink_to("/run")
    assert hidden_from_guest(tmp_path / "into-run" / "x") == "/run"


def test_a_cache_under_var_tmp_is_refused_before_any_kernel_is_resolved(tmp_path, monkeypatch):
    hidden = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="harness-test-"))
    try:
        monkeypatch.setenv("HARNESS_CACHE_DIR", str(hidden))
        with pytest.raises(UserError, match="under /var/tmp.*HARNESS_CACHE_DIR"):
            check_out_dir(RunRequest(kernel="debian:6.12", out_dir=tmp_path / "o"))
        # a kernel that would fail differently (exit 2 too, but later) if it were looked at
        argv = ["run", "--kernel", "image:/nonexistent/vmlinuz", "--out", str(tmp_path / "o")]
        assert main(argv) == 2
        assert not list(hidden.iterdir())  # nothing was fetched, built or cached
    finally:
        shutil.rmtree(hidden, ignore_errors=True)


# --- the kernel command line: Linux cuts it at 2048 bytes, and with it virtme-ng's init=


@pytest.mark.parametrize("with_modules", [True, False])
def test_the_command_line_estimate_bounds_what_real_vng_builds(tmp_path, with_modules) -> None:
    images = sorted((cache_dir() / "debian" / "kernels").glob("*/boot/vmlinuz-*"))
    vng = shutil.which("vng") or str(Path(sys.executable).parent / "vng")
    if not images or not Path(vng).exists():
        pytest.skip("needs a cached Debian kernel (harness run --kernel debian:6.12) and vng")
    image = images[-1]
    if not with_modules:
        image = tmp_path / "bzImage"
        shutil.copy(images[-1], image)
    shared = tmp_path / ("o" * 10) / "0-src_debian_linux-source-6.12+series_x.mbox" / "shared"
    shared.mkdir(parents=True)
    agent = ("/usr/bin/python3", "-S", "-E", f"{cache_dir()}/agent-bundle/agent-0123456789.py")
    exec_argv = (*agent, "--plan", f"{shared}/plan.json", "--results", str(shared))
    spec = _spec(image=image, rw_dirs=(shared,), initrd=None, vng=vng, exec_argv=exec_argv)
    spec = dataclasses.replace(
        spec, append=("loop.harness_hang_after=50", "harness.warm=" + ",".join(agent))
    )
    qemu = _virtme_run_command(vng_argv(spec), tmp_path)
    actual = len(qemu[qemu.index("-append") + 1])
    assert actual <= cmdline_estimate(spec) <= actual + 150, (actual, cmdline_estimate(spec))


def test_an_out_path_that_would_cut_the_command_line_is_refused() -> None:
    shared = Path("/o" + "/deep" * 120) / "shared"
    spec = _spec(rw_dirs=(shared,), exec_argv=("/usr/bin/python3", "--plan", f"{shared}/p.json"))
    with pytest.raises(UserError, match=r"command line would be about \d+ bytes.*shorter --out"):
        vng_argv(spec)
