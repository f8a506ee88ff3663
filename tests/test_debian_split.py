"""Debian's split kernels (linux-binary + linux-modules, the linux-image an empty
meta-package over them), over the real package list and `apt-cache show` stanzas recorded
in tests/data/apt from the harness's private apt (bookworm + trixie-backports + sid)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.kernel import debian

DATA = Path(__file__).parent / "data" / "apt"


def pkgnames() -> list[str]:
    return (DATA / "kernel-pkgnames.txt").read_text().split()


def show(package: str) -> str:
    return (DATA / f"show-{package}.txt").read_text()


def installed_kib(stanza: str) -> int:
    return int(re.search(r"^Installed-Size: (\d+)", stanza, re.MULTILINE)[1])  # type: ignore[index]


def test_the_recorded_7_0_image_is_an_empty_meta_package_over_the_split_ones() -> None:
    """What the fix rests on, read from the archive: 15 KiB and a Depends on both halves;
    a 6.18 linux-image still holds the kernel (160 MiB)."""
    meta = show("linux-image-7.0.13+deb13-amd64")
    assert installed_kib(meta) < 100
    assert "linux-binary-7.0.13+deb13-amd64 (=" in meta
    assert "linux-modules-7.0.13+deb13-amd64 (=" in meta
    assert installed_kib(show("linux-binary-7.0.13+deb13-amd64")) > 10_000
    assert installed_kib(show("linux-image-6.18.15+deb13-amd64")) > 100_000


@pytest.mark.parametrize("order", ["listed", "reversed", "sorted"])
def test_a_split_abi_never_resolves_to_its_meta_image(order: str) -> None:
    names = {"listed": pkgnames(), "reversed": pkgnames()[::-1], "sorted": sorted(pkgnames())}
    kernels = debian.kernels_from_pkgnames(names[order])
    split = {m["abi"] for n in pkgnames() if (m := debian._BINARY_RE.match(n))}
    assert {"6.19.14+deb13", "7.0.13+deb13", "7.1.13+deb13", "7.3.4+deb13"} <= split
    for abi in split:
        assert kernels[abi].packages[0].startswith("linux-binary-"), abi
        assert not any(p.startswith("linux-image-") for p in kernels[abi].packages)


@pytest.mark.parametrize("series", ["7.0", "7.1", "6.19"])
def test_7_0_is_its_binary_and_modules(series: str) -> None:
    """debian:7.0 picked linux-image-7.0.13+deb13-amd64 (the meta-package): the fetch ended
    in depmod finding no lib/modules. The index lists the signed binary, not the modules."""
    kernel = debian.resolve(series, debian.kernels_from_pkgnames(pkgnames()))
    abi = kernel.abi
    assert kernel.packages == (f"linux-binary-{abi}-amd64",)
    assert kernel.missing == (f"linux-modules-{abi}-amd64",)


def test_a_complete_split_kernel_prefers_the_unsigned_binary() -> None:
    kernel = debian.resolve("7.3", debian.kernels_from_pkgnames(pkgnames()))
    assert kernel.packages == ("linux-binary-unsigned-7.3.4+deb13-amd64",
                               "linux-modules-7.3.4+deb13-amd64")  # fmt: skip
    assert kernel.missing == ()


def test_a_complete_kernel_of_a_series_wins_over_a_newer_incomplete_one() -> None:
    names = ["linux-binary-7.9.2+deb13-amd64", "linux-image-7.9.2+deb13-amd64",
             "linux-binary-7.9.1+deb13-amd64", "linux-modules-7.9.1+deb13-amd64"]  # fmt: skip
    kernel = debian.resolve("7.9", debian.kernels_from_pkgnames(names))
    assert (kernel.abi, kernel.missing) == ("7.9.1+deb13", ())


def test_the_pre_split_series_keep_their_one_image() -> None:
    kernels = debian.kernels_from_pkgnames(pkgnames())
    assert debian.resolve("6.18", kernels).packages == ("linux-image-6.18.15+deb13-amd64",)
    assert debian.resolve("6.12", kernels).packages == (
        "linux-image-6.12.117+deb12-amd64-unsigned",
    )
