"""Debian's split kernels (linux-binary + linux-modules, the linux-image an empty
meta-package over them), over the real package list and `apt-cache show` stanzas recorded
in tests/data/apt from the harness's private apt (bookworm + trixie-backports + sid)."""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import FetchError
from harness.kernel import apt_sources, debian, debian_pool

DATA = Path(__file__).parents[1] / "data" / "apt"


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
    kernel = debian.pick(series, debian.kernels_from_pkgnames(pkgnames()))
    abi = kernel.abi
    assert kernel.packages == (f"linux-binary-{abi}-amd64",)
    assert kernel.missing == (f"linux-modules-{abi}-amd64", f"linux-base-{abi}-amd64")


def test_a_complete_split_kernel_prefers_the_unsigned_binary() -> None:
    kernel = debian.pick("7.3", debian.kernels_from_pkgnames(pkgnames()))
    assert kernel.packages == (
        "linux-binary-unsigned-7.3.4+deb13-amd64",
        "linux-modules-7.3.4+deb13-amd64",
        "linux-base-7.3.4+deb13-amd64",
    )
    assert kernel.missing == ()


def test_a_complete_kernel_of_a_series_wins_over_a_newer_incomplete_one() -> None:
    names = [
        "linux-binary-7.9.2+deb13-amd64",
        "linux-image-7.9.2+deb13-amd64",
        "linux-binary-7.9.1+deb13-amd64",
        "linux-modules-7.9.1+deb13-amd64",
        "linux-base-7.9.1+deb13-amd64",
    ]
    kernel = debian.pick("7.9", debian.kernels_from_pkgnames(names))
    assert (kernel.abi, kernel.missing) == ("7.9.1+deb13", ())


def test_the_pre_split_series_keep_their_one_image() -> None:
    kernels = debian.kernels_from_pkgnames(pkgnames())
    assert debian.pick("6.18", kernels).packages == ("linux-image-6.18.15+deb13-amd64",)
    assert debian.pick("6.12", kernels).packages == ("linux-image-6.12.118+deb12-amd64-unsigned",)


# --- the missing half, from the pool ------------------------------------------------------


def private_sources() -> str:
    sources = apt_sources.parse_deb822((DATA / "debian.sources").read_text())
    return apt_sources.private_sources_list(sources, "bookworm")


def test_the_missing_modules_are_located_from_the_signed_stanzas() -> None:
    url, version = debian_pool.locate(
        "linux-modules-7.0.13+deb13-amd64",
        show("linux-image-7.0.13+deb13-amd64"),
        show("linux-binary-7.0.13+deb13-amd64"),
        private_sources(),
        "trixie-backports",
    )
    assert version == "7.0.13-1~bpo13+1"
    archive = debian_pool.archive_uri(private_sources(), "trixie-backports")
    assert archive.startswith("https://") and "://" not in archive[8:]
    assert url == (
        f"{archive}/pool/main/l/linux/linux-modules-7.0.13+deb13-amd64_7.0.13-1~bpo13+1_amd64.deb"
    )


def test_the_base_of_an_unsigned_binary_is_located_from_its_source_field() -> None:
    """An unsigned linux-binary is linux's own (no Built-Using): Source and Version say it."""
    url, version = debian_pool.locate(
        "linux-base-7.3.4+deb13-amd64",
        show("linux-image-7.3.4+deb13-amd64"),
        show("linux-binary-unsigned-7.3.4+deb13-amd64"),
        private_sources(),
        "trixie-backports",
    )
    assert version == "7.3.4-1~bpo13+1"
    assert url.endswith("/pool/main/l/linux/linux-base-7.3.4+deb13-amd64_7.3.4-1~bpo13+1_amd64.deb")


def test_a_meta_package_that_pins_another_build_is_refused() -> None:
    meta = show("linux-image-7.0.13+deb13-amd64").replace("(= 7.0.13-1~bpo13+1)", "(= 7.0.12-1)")
    with pytest.raises(FetchError, match="does not pin it"):
        debian_pool.locate(
            "linux-modules-7.0.13+deb13-amd64",
            meta,
            show("linux-binary-7.0.13+deb13-amd64"),
            private_sources(),
            "trixie-backports",
        )


def test_pool_paths_and_epochs() -> None:
    assert (
        debian_pool.pool_url("https://m/debian", "libfoo", "libfoo1", "2:1.0-1")
        == "https://m/debian/pool/main/libf/libfoo/libfoo1_1.0-1_amd64.deb"
    )
    assert debian_pool.archive_uri("deb http://m/debian/ sid main\n", "sid") == "https://m/debian"
    with pytest.raises(FetchError):
        debian_pool.archive_uri("deb http://m/debian sid main\n", "trixie-backports")


def build_deb(tmp: Path, package: str, version: str) -> Path:
    root = tmp / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: amd64\n"
        "Maintainer: t <t@localhost>\nDescription: pool probe\n"
    )
    deb = tmp / "pool" / f"{package}_{version}_amd64.deb"
    deb.parent.mkdir()
    subprocess.run(
        ["dpkg-deb", "--build", "-Zgzip", str(root), str(deb)], check=True, capture_output=True
    )
    return deb


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real .deb of linux-modules-7.0.13 version 7.0.13-1 served over HTTP on 127.0.0.1."""
    deb = build_deb(tmp_path, "linux-modules-7.0.13+deb13-amd64", "7.0.13-1")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(deb.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{deb.name}", tmp_path
    finally:
        server.shutdown()


@pytest.mark.skipif(not Path(debian_pool.APT_HELPER).exists(), reason="needs apt (Debian)")
def test_a_pool_package_is_kept_only_when_it_is_what_the_index_named(pool) -> None:
    url, tmp = pool
    dest = tmp / "archives"
    dest.mkdir()
    apt = debian.PrivateApt(tmp / "apt")
    name = "linux-modules-7.0.13+deb13-amd64"
    with pytest.raises(FetchError, match="refused"):
        debian_pool.fetch(url, name, "7.0.13-2", dest, apt.options())
    assert list(dest.iterdir()) == []
    deb = debian_pool.fetch(url, name, "7.0.13-1", dest, apt.options())
    assert deb.parent == dest and deb.stat().st_size > 0


def test_a_cached_split_kernel_without_its_base_is_fetched_again(tmp_path: Path) -> None:
    kernel = debian.pick("7.3", debian.kernels_from_pkgnames(pkgnames()))
    meta = tmp_path / "harness-kernel.json"
    debs = [f"{p}_7.3.4-1~bpo13+1_amd64.deb" for p in kernel.packages]
    meta.write_text(json.dumps({"packages": debs[:2], "abi": kernel.abi}))
    assert not debian._cached(meta, kernel)
    meta.write_text(json.dumps({"packages": debs, "abi": kernel.abi}))
    assert debian._cached(meta, kernel)
