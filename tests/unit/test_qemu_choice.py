"""Which QEMU boots the guests (harness.vm.qemu): $HARNESS_QEMU, else the one `harness qemu
install` unpacked into the cache, else the system's; the launcher that finds its firmware;
virtme-ng and the bare floor boot both get it. The launcher runs for real here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.vm import qemu
from harness.vm.initramfs import qemu_floor_argv
from harness.vm.launch import BootSpec, vng_argv


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(qemu.QEMU_ENV, raising=False)
    return tmp_path / "cache"


def _install_launcher(text: str) -> Path:
    launcher = qemu.installed_launcher()
    launcher.parent.mkdir(parents=True)
    launcher.write_text(text)
    launcher.chmod(0o755)
    return launcher


def test_without_an_installed_qemu_the_systems_boots(cache) -> None:
    assert qemu.binary() == "qemu-system-x86_64" and qemu.for_vng() == ""
    assert qemu_floor_argv(Path("/k"), None, "tcg")[0] == "qemu-system-x86_64"


def test_an_installed_qemu_boots_every_guest_unless_told_system(cache, monkeypatch) -> None:
    launcher = _install_launcher("#!/bin/sh\n")
    assert qemu.binary() == str(launcher) == qemu.for_vng()
    assert qemu_floor_argv(Path("/k"), None, "tcg")[0] == str(launcher)
    monkeypatch.setenv(qemu.QEMU_ENV, "system")
    assert qemu.binary() == "qemu-system-x86_64" and qemu.for_vng() == ""


def test_harness_qemu_must_name_an_executable(cache, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(qemu.QEMU_ENV, str(tmp_path / "nope"))
    with pytest.raises(UserError, match="not an executable file: point it at"):
        qemu.binary()
    odd = tmp_path / "q;rm"
    odd.write_text("#!/bin/sh\n")
    odd.chmod(0o755)
    monkeypatch.setenv(qemu.QEMU_ENV, str(odd))
    with pytest.raises(UserError, match="cannot pass safely"):
        qemu.binary()  # virtme-ng pastes it into a shell line


def test_vng_gets_the_chosen_qemu_and_refuses_an_unsafe_path() -> None:
    base = dict(image=Path("/k"), exec_argv=("a",), rw_dirs=(), vng="vng")
    argv = vng_argv(BootSpec(**base, qemu="/c/qemu/bin/qemu-system-x86_64"))  # type: ignore[arg-type]
    assert argv[argv.index("--qemu") + 1] == "/c/qemu/bin/qemu-system-x86_64"
    assert "--qemu" not in vng_argv(BootSpec(**base))  # type: ignore[arg-type]
    with pytest.raises(UserError, match="QEMU binary"):
        vng_argv(BootSpec(**base, qemu="/c/$(id)/qemu"))  # type: ignore[arg-type]


def test_the_launcher_puts_its_firmware_first_and_passes_every_word(tmp_path) -> None:
    fake = tmp_path / "bin" / "qemu"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done\n')
    fake.chmod(0o755)
    script = tmp_path / "qemu-system-x86_64"
    script.write_text(qemu.launcher_text(fake, (tmp_path / "sea bios", tmp_path / "data")))
    script.chmod(0o755)
    out = subprocess.run(
        [str(script), "-append", "a b", "--version"], capture_output=True, text=True
    )
    assert out.stdout.split("\n")[:6] == [
        "[-L]",
        f"[{tmp_path}/sea bios]",
        "[-L]",
        f"[{tmp_path}/data]",
        "[-append]",
        "[a b]",
    ]
