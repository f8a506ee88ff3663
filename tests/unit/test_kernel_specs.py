"""Kernel spec parsing and Debian package resolution, over real recorded apt data."""

from pathlib import Path

import pytest

from harness.errors import UserError
from harness.kernel import apt_sources, debian, image, spec

DATA = Path(__file__).parents[1] / "data" / "apt"


def pkgnames() -> list[str]:
    return (DATA / "kernel-pkgnames.txt").read_text().split()


def test_deb822_sources_from_this_machine() -> None:
    sources = apt_sources.parse_deb822((DATA / "debian.sources").read_text())
    suites = {s for src in sources for s in src.suites}
    assert {"bookworm", "bookworm-updates", "bookworm-security"} <= suites


def test_private_list_adds_backports_and_sid_on_the_same_mirror() -> None:
    sources = apt_sources.parse_deb822((DATA / "debian.sources").read_text())
    text = apt_sources.private_sources_list(sources, "bookworm")
    lines = text.splitlines()
    archive = next(s.uri for s in sources if "bookworm" in s.suites)
    assert f"deb {archive} trixie-backports main" in lines
    assert f"deb {archive} sid main" in lines
    assert any(line.endswith("bookworm-security main") for line in lines)


def test_one_line_sources_with_options() -> None:
    text = "# c\ndeb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main contrib\n"
    (src,) = apt_sources.parse_one_line(text)
    assert (src.uri, src.suites, src.signed_by) == ("http://m/debian", ("bookworm",), "/k.gpg")


def test_no_debian_archive_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no Debian 'bookworm' archive"):
        apt_sources.private_sources_list([], "bookworm")


def test_kernels_group_split_packages_and_skip_flavours() -> None:
    kernels = debian.kernels_from_pkgnames(pkgnames())
    assert all("rt" not in abi and "cloud" not in abi for abi in kernels)
    split = kernels["7.3.4+deb13"]
    assert split.packages == (
        "linux-binary-unsigned-7.3.4+deb13-amd64",
        "linux-modules-7.3.4+deb13-amd64",
        "linux-base-7.3.4+deb13-amd64",
    )
    assert kernels["6.1.0-50"].packages == ("linux-image-6.1.0-50-amd64-unsigned",)


@pytest.mark.parametrize(
    ("version", "abi_prefix"),
    [("6.12", "6.12."), ("6.1", "6.1.0-"), ("7.3", "7.3."), ("7.2.12", "7.2.12+")],
)
def test_resolve_picks_newest_matching(version: str, abi_prefix: str) -> None:
    kernels = debian.kernels_from_pkgnames(pkgnames())
    chosen = debian.pick(version, kernels)
    assert chosen.abi.startswith(abi_prefix)
    same_series = [k for k in kernels if k.startswith(abi_prefix)]
    assert chosen.abi == max(same_series, key=debian._version_key)


def test_unknown_version_lists_available() -> None:
    kernels = debian.kernels_from_pkgnames(pkgnames())
    with pytest.raises(UserError, match=r"no Debian kernel '5\.10'.*available: .*6\.12.*7\.3"):
        debian.pick("5.10", kernels)


def test_6_1_does_not_match_6_12() -> None:
    kernels = debian.kernels_from_pkgnames(pkgnames())
    assert not debian.pick("6.1", kernels).abi.startswith("6.12")


def test_image_spec_grammar(tmp_path: Path) -> None:
    assert image.parse_image_spec("image:/a/bzImage") == (Path("/a/bzImage"), None)
    assert image.parse_image_spec("image:/a/b,modules=/m") == (Path("/a/b"), Path("/m"))
    with pytest.raises(UserError, match="bad option"):
        image.parse_image_spec("image:/a/b,mods=/m")


def test_missing_image_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        spec.kernel_for_spec(f"image:{tmp_path}/nope/bzImage")


def test_not_a_kernel_image(tmp_path: Path) -> None:
    bogus = tmp_path / "bzImage"
    bogus.write_bytes(b"\0" * 4096)
    with pytest.raises(UserError, match="does not look like a Linux kernel image"):
        spec.kernel_for_spec(f"image:{bogus}")


@pytest.mark.parametrize("text", ["ubuntu:24.04", "debian:", "/boot/vmlinuz", ""])
def test_bad_specs(text: str) -> None:
    with pytest.raises(UserError):
        spec.kernel_for_spec(text)


def test_host_spec_is_the_running_kernel() -> None:
    import os

    kernel = spec.kernel_for_spec("host")
    assert kernel.is_host and kernel.release == os.uname().release


def test_the_qemu_fetch_lists_this_releases_backports_and_asks_apt_for_that_suite(tmp_path):
    sources = apt_sources.parse_deb822((DATA / "debian.sources").read_text())
    text = apt_sources.private_sources_list(sources, "bookworm", ("bookworm-backports",))
    archive = next(s.uri for s in sources if "bookworm" in s.suites)
    assert f"deb {archive} bookworm-backports main" in text.splitlines()
    assert "sid" not in text and "trixie" not in text
    argv = debian.PrivateApt(tmp_path).download_argv(("qemu-system-x86",), "bookworm-backports")
    assert argv[-4:] == ["-t", "bookworm-backports", "download", "qemu-system-x86"]
