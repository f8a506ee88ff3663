"""`debian:VERSION` kernels: fetched with apt into a private state directory, extracted to a cache.

Nothing is installed into the host: apt runs with its own sources list, lists and archive
directories under the cache, `apt-get download` fetches the .deb files and `dpkg-deb -x`
unpacks them. From 7.x Debian splits a kernel into linux-binary(-unsigned) (the image) and
linux-modules packages, and that ABI's linux-image package is an empty meta-package over
them; before that one linux-image package holds both.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from harness import proc, progress
from harness.errors import FetchError, InfraError, UserError
from harness.kernel import cachelock, debian_pool, download_progress
from harness.kernel.apt_sources import (
    EXTRA_SUITES,
    host_codename,
    private_sources_list,
    system_sources,
)
from harness.kernel.model import Kernel
from harness.paths import cache_subdir
from harness.results.files import atomic_write_text

log = logging.getLogger(__name__)

LISTS_MAX_AGE_S = 24 * 3600
FLAVOUR = "amd64"  # generic flavour; -cloud lacks 9p, which virtme-ng needs

# ABIs look like 6.1.0-50, 6.12.117+deb12, 7.3.4+deb13; flavours (-cloud, -rt) never match.
_ABI = r"(?P<abi>\d+\.\d+(?:\.\d+)?(?:-\d+)?(?:\+deb\d+)?)"
_IMAGE_RE = re.compile(rf"^linux-image-{_ABI}-{FLAVOUR}(?P<unsigned>-unsigned)?$")
_BINARY_RE = re.compile(rf"^linux-binary-(?P<unsigned>unsigned-)?{_ABI}-{FLAVOUR}$")
_MODULES_RE = re.compile(rf"^linux-modules-{_ABI}-{FLAVOUR}$")
_BASE_RE = re.compile(rf"^linux-base-{_ABI}-{FLAVOUR}$")
_ROLES = (
    ("image", _IMAGE_RE),
    ("binary", _BINARY_RE),
    ("modules", _MODULES_RE),
    ("base", _BASE_RE),
)


@dataclass(frozen=True)
class DebianKernel:
    """The packages that make up one Debian kernel ABI (e.g. 6.12.111+deb12, 7.3.4+deb13);
    `missing` names the ones its split form needs that the archive's index does not list."""

    abi: str
    packages: tuple[str, ...]
    missing: tuple[str, ...] = ()

    @property
    def release(self) -> str:
        return f"{self.abi}-{FLAVOUR}"


def _version_key(abi: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", abi))


def kernels_from_pkgnames(names: list[str]) -> dict[str, DebianKernel]:
    """Group package names into kernels by ABI, whatever order apt lists them in.

    An ABI with a linux-binary package is split: binary (unsigned preferred) + modules +
    base (config, System.map, modules.builtin), never its linux-image, which is then an
    empty meta-package (a fetch of it found no lib/modules). The halves the index does not
    list are kept in `missing`. Otherwise the one linux-image package, unsigned preferred."""
    roles: dict[str, dict[str, str]] = {}
    for name in names:
        for role, regex in _ROLES:
            found = regex.match(name)
            if found:
                unsigned = "-unsigned" if found.groupdict().get("unsigned") else ""
                roles.setdefault(found["abi"], {})[role + unsigned] = name
    kernels = {abi: _kernel_of(abi, named) for abi, named in roles.items()}
    return {abi: k for abi, k in kernels.items() if k is not None}


def _kernel_of(abi: str, named: dict[str, str]) -> DebianKernel | None:
    binary = named.get("binary-unsigned") or named.get("binary")
    if binary:
        halves = [
            named.get(role) or f"linux-{role}-{abi}-{FLAVOUR}" for role in ("modules", "base")
        ]
        listed = tuple(h for h in halves if h in named.values())
        return DebianKernel(abi, (binary, *listed), tuple(h for h in halves if h not in listed))
    image = named.get("image-unsigned") or named.get("image")
    return DebianKernel(abi, (image,)) if image else None


def pick(version: str, kernels: dict[str, DebianKernel]) -> DebianKernel:
    """The newest kernel whose ABI is `version` or starts with it at a dot/dash/plus boundary;
    a complete one when there is one (the newest of a series may lack its modules)."""
    matches = [
        k
        for abi, k in kernels.items()
        if abi == version or re.match(re.escape(version) + r"[.+-]", abi)
    ]
    matches = [k for k in matches if not k.missing] or matches
    if not matches:
        series = sorted({".".join(abi.split(".")[:2]) for abi in kernels}, key=_version_key)
        raise UserError(
            f"no Debian kernel '{version}' in the configured suites; available: "
            f"{', '.join(series)} (e.g. debian:{series[-1] if series else '6.12'})"
        )
    return max(matches, key=lambda k: _version_key(k.abi))


class PrivateApt:
    """apt-get/apt-cache bound to a state directory under the cache."""

    def __init__(self, root: Path, extra_suites: tuple[str, ...] = EXTRA_SUITES) -> None:
        self.root = root
        self.extra_suites = extra_suites  # beside the host's own (apt_sources)
        for sub in ("lists/partial", "archives/partial", "cache", "etc"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "etc/status").touch()

    def options(self) -> list[str]:
        r = self.root
        opts = {
            "Dir::Etc::SourceList": r / "etc/sources.list",
            "Dir::Etc::SourceParts": "/dev/null",
            "Dir::State::Lists": r / "lists",
            "Dir::State::status": r / "etc/status",  # empty: nothing is installed here
            "Dir::Cache": r / "cache",
            "Dir::Cache::Archives": r / "archives",
            "Debug::NoLocking": "1",
            "APT::Sandbox::User": "root",
        }
        return [w for k, v in opts.items() for w in ("-o", f"{k}={v}")]

    def update_argv(self) -> list[str]:
        return ["apt-get", *self.options(), "-q", "update"]

    def pkgnames_argv(self, prefix: str) -> list[str]:
        return ["apt-cache", *self.options(), "pkgnames", prefix]

    def show_argv(self, package: str) -> list[str]:
        return ["apt-cache", *self.options(), "show", "--no-all-versions", package]

    def show(self, package: str) -> str:
        """The candidate's stanza from the index (FetchError when apt does not know it)."""
        result = proc.run(self.show_argv(package), timeout=120, check=False)
        if result.returncode != 0 or not result.stdout.strip():
            raise FetchError(f"apt-cache show {package} found nothing: {result.stderr.strip()}")
        return result.stdout

    def download_argv(self, packages: tuple[str, ...], release: str = "") -> list[str]:
        """apt-get download of `packages`, from suite `release` when given (a backports
        suite's packages are never apt's candidates otherwise)."""
        target = ["-t", release] if release else []
        return ["apt-get", *self.options(), "-q", *target, "download", *packages]

    def package_size(self, packages: tuple[str, ...]) -> int | None:
        """The download size of `packages` from the lists (None when apt cannot tell)."""
        shown = proc.run(
            ["apt-cache", *self.options(), "show", "--no-all-versions", *packages],
            timeout=120,
            check=False,
        )
        return download_progress.total_size(shown.stdout)

    def refresh(self) -> None:
        """Write the sources list and run `apt-get update` when the lists are stale (one
        process at a time: apt's own locking is off here, and two updates of one lists
        directory break each other)."""
        text = private_sources_list(system_sources(), host_codename(), self.extra_suites)
        if self._fresh(text):
            return
        with cachelock.held(self.root / "update.lock"):
            if not self._fresh(text):  # another process may have updated while we waited
                self._update(text)

    def _fresh(self, text: str) -> bool:
        sources, stamp = self.root / "etc/sources.list", self.root / "updated"
        fresh = stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE_S
        return fresh and sources.exists() and sources.read_text() == text

    def _update(self, text: str) -> None:
        stamp = self.root / "updated"
        atomic_write_text(self.root / "etc/sources.list", text)
        log.info(
            "apt: updating package lists for %s",
            ", ".join(sorted({line.split()[2] for line in text.splitlines()})),
        )
        step = progress.Step("apt update")
        step.update(0, note="updating package lists")
        try:
            with progress.finishing(step):
                proc.run_retrying(self.update_argv(), timeout=600)
        except InfraError as exc:
            raise FetchError(
                f"apt-get update failed: {exc}; check the mirror in /etc/apt/sources.list and retry"
            ) from exc
        stamp.touch()

    def pkgnames(self) -> list[str]:
        """Kernel package names, cached until the next `apt-get update` (apt-cache is slow)."""
        cached = self.root / "kernel-pkgnames-v2.txt"  # v2: with linux-base-*
        stamp = self.root / "updated"
        if cached.exists() and stamp.exists() and cached.stat().st_mtime >= stamp.stat().st_mtime:
            return cached.read_text().split()
        names = [
            n
            for n in proc.run(self.pkgnames_argv("linux-"), timeout=300).stdout.split()
            if n.startswith(("linux-image-", "linux-binary-", "linux-modules-", "linux-base-"))
        ]
        atomic_write_text(cached, "\n".join(names))
        return names


def extract_argv(deb: Path, dest: Path) -> list[str]:
    return ["dpkg-deb", "-x", str(deb), str(dest)]


def depmod_argv(root: Path, release: str) -> list[str]:
    return ["depmod", "-a", "-b", str(root), release]


def find_image(root: Path, release: str) -> Path:
    """The kernel image inside an extracted package tree (6.x: boot/, 7.x: usr/lib/modules/)."""
    candidates = [
        root / "boot" / f"vmlinuz-{release}",
        root / "usr/lib/modules" / release / "vmlinuz",
        root / "usr/lib/modules" / release / "vmlinuz.unsigned",
        root / "lib/modules" / release / "vmlinuz",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise InfraError(f"no kernel image for {release} under {root}: the package layout changed")


def find_modules(root: Path, release: str) -> Path | None:
    for base in (root / "lib/modules", root / "usr/lib/modules"):
        if (base / release / "kernel").is_dir():
            return base / release
    return None


def _cached(meta_path: Path, kernel: DebianKernel) -> bool:
    """True when the cache holds every package of the kernel (an entry made before the
    harness fetched linux-base lacks its config and modules.builtin: fetched again)."""
    if not meta_path.exists():
        return False
    held = json.loads(meta_path.read_text())["packages"]
    return all(
        any(deb.startswith(f"{p}_") for deb in held) for p in kernel.packages + kernel.missing
    )


def _download(apt: PrivateApt, kernel: DebianKernel, root: Path, dest: Path) -> None:
    """apt-get download the kernel's packages, extract them to dest, drop the .debs."""
    log.info("debian: fetching %s", " ".join(kernel.packages))
    archives = root / "apt/archives"
    size = apt.package_size(kernel.packages)
    try:
        with download_progress.watching(archives, kernel.packages, size):
            proc.run_retrying(apt.download_argv(kernel.packages), timeout=1800, cwd=archives)
    except InfraError as exc:
        raise FetchError(
            f"downloading {' '.join(kernel.packages)} failed: {exc}; the mirror may be "
            "mid-sync: run the command again in a minute"
        ) from exc
    debs = [next(archives.glob(f"{p}_*.deb")) for p in kernel.packages]
    urls = [_from_pool(apt, kernel, package, archives) for package in kernel.missing]
    debs += [archives / url.rsplit("/", 1)[1] for url in urls]
    _extract(kernel, debs, dest)
    meta = {"packages": [d.name for d in debs], "abi": kernel.abi, "unindexed": urls}
    atomic_write_text(dest / "harness-kernel.json", json.dumps(meta, indent=2))
    for deb in debs:
        deb.unlink()  # the extracted tree is the cache; the .deb is 100+ MB of duplicate


def _from_pool(apt: PrivateApt, kernel: DebianKernel, package: str, archives: Path) -> str:
    """Fetch a split kernel's half that the index no longer lists (debian_pool); its URL."""
    meta = apt.show(f"linux-image-{kernel.release}")
    binary = apt.show(kernel.packages[0])
    sources = (apt.root / "etc/sources.list").read_text()
    url, version = debian_pool.locate(package, meta, binary, sources, EXTRA_SUITES[0])
    debian_pool.fetch(url, package, version, archives, apt.options())
    return url


def _extract(kernel: DebianKernel, debs: list[Path], dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    proc.run(["rm", "-rf", str(tmp)], timeout=120)
    tmp.mkdir(parents=True)
    for deb in debs:
        proc.run(extract_argv(deb, tmp), timeout=600)
    if (tmp / "usr/lib/modules").is_dir() and not (tmp / "lib").exists():
        (tmp / "lib").symlink_to("usr/lib")  # depmod -b looks in lib/modules
    proc.run(depmod_argv(tmp, kernel.release), timeout=600)
    tmp.rename(dest)


def fetch(version: str, spec: str | None = None) -> Kernel:
    """Return the Debian kernel for `version` (e.g. "6.12", "7.3.4+deb13"), cached."""
    root = cache_subdir("debian")
    apt = PrivateApt(root / "apt")
    apt.refresh()
    kernel = pick(version, kernels_from_pkgnames(apt.pkgnames()))
    dest = root / "kernels" / kernel.abi
    meta_path = dest / "harness-kernel.json"
    if not _cached(meta_path, kernel):
        # One fetch per kernel at a time; whoever waited finds it cached and downloads nothing.
        with cachelock.held(root / "kernels" / f"{kernel.abi}.lock"):
            if not _cached(meta_path, kernel):
                shutil.rmtree(dest, ignore_errors=True)
                _download(apt, kernel, root, dest)
    meta = json.loads(meta_path.read_text())
    config = dest / "boot" / f"config-{kernel.release}"
    return Kernel(
        spec=spec or f"debian:{version}",
        image=find_image(dest, kernel.release),
        release=kernel.release,
        modules_dir=find_modules(dest, kernel.release),
        config=config if config.exists() else None,
        provenance={
            "source": "debian",
            "packages": " ".join(meta["packages"]),
            **({"unindexed": " ".join(meta["unindexed"])} if meta.get("unindexed") else {}),
        },
    )
