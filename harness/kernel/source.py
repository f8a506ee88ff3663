"""Source trees without git: Debian's linux-source packages and plain directories.

Both are snapshotted into a local git repository (one root commit with fixed identity and
dates, so equal content gives an equal commit id) and then built by the same worktree
machinery as a real kernel git tree. Debian packages are downloaded with `apt-get
download` and unpacked under the cache; nothing is installed on the host.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import FetchError, InfraError, UserError
from harness.kernel import cachelock
from harness.kernel.tree import snapshot
from harness.paths import cache_subdir
from harness.results.files import atomic_write_text

log = logging.getLogger(__name__)

_PKG_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")


@dataclass(frozen=True)
class SnapshotRepo:
    """A git repository holding a snapshot of a source tree, and its one commit."""

    repo: Path  # what `git -C` takes (a worktree or a bare git dir)
    commit: str
    origin: str  # human description: package_version or the directory


def apt_show_argv(package: str, options: Sequence[str] = ()) -> list[str]:
    return ["apt-cache", *options, "show", "--no-all-versions", package]


def apt_download_argv(package: str, version: str, options: Sequence[str] = ()) -> list[str]:
    return ["apt-get", *options, "download", f"{package}={version}"]


def candidate_version(apt_show_output: str) -> str | None:
    """The Version: field of `apt-cache show --no-all-versions` output."""
    match = re.search(r"^Version:\s*(\S+)", apt_show_output, re.MULTILINE)
    return match.group(1) if match else None


def _find_version(package: str) -> tuple[str, list[str]]:
    """The candidate version and the apt options that reach it: the system's apt first,
    else the harness's private apt (the same one debian:VERSION uses, with trixie-backports
    and sid added), which is where newer linux-source packages such as 7.2 live."""
    shown = proc.run(apt_show_argv(package), timeout=120, check=False)
    version = candidate_version(shown.stdout)
    if shown.returncode == 0 and version:
        return version, []
    from harness.kernel.debian import PrivateApt

    apt = PrivateApt(cache_subdir("debian") / "apt")
    apt.refresh()
    options = apt.options()
    shown = proc.run(apt_show_argv(package, options), timeout=120, check=False)
    version = candidate_version(shown.stdout)
    if shown.returncode != 0 or not version:
        raise UserError(
            f"Debian package {package} not known to apt (system or trixie-backports/sid): "
            "see `apt-cache search linux-source` (run apt-get update if the lists are stale)"
        )
    return version, options


def debian_source(package: str) -> SnapshotRepo:
    """Download, unpack and snapshot Debian's `package` (e.g. linux-source-6.12) once."""
    if not _PKG_RE.match(package):
        raise UserError(f"bad Debian package name {package!r}: e.g. src:debian:linux-source-6.12")
    proc.require_tool("apt-cache", "apt")
    version, apt_options = _find_version(package)
    root = cache_subdir("kbuild/debian") / f"{package}_{version}"
    marker = root / "snapshot.json"
    if not marker.is_file():
        # one unpack per package at a time; whoever waited finds the snapshot made
        with cachelock.held(root.with_name(root.name + ".lock")):
            if not marker.is_file():
                tree = _unpack(package, version, root, apt_options)
                commit = snapshot(tree, tree / ".git", f"snapshot of {root.name}", True)
                # the tree is stored relative so a moved cache stays valid
                data = {"tree": tree.name, "commit": commit}
                atomic_write_text(marker, json.dumps(data, indent=1) + "\n")
    data = json.loads(marker.read_text())
    return SnapshotRepo(root / data["tree"], data["commit"], root.name)


def _unpack(package: str, version: str, root: Path, apt_options: Sequence[str] = ()) -> Path:
    """apt-get download + dpkg-deb -x + tar -x of the inner tarball; return the tree."""
    downloads = cache_subdir("kbuild/downloads")
    log.info("downloading %s %s", package, version)
    try:
        proc.run_retrying(
            apt_download_argv(package, version, apt_options), timeout=1800, cwd=downloads
        )
    except InfraError as exc:
        raise FetchError(
            f"downloading {package} {version} failed: {exc}; the mirror may be mid-sync: "
            "run the command again in a minute"
        ) from exc
    debs = sorted(downloads.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not debs:
        raise InfraError(f"apt-get download {package} left no .deb in {downloads}")
    pkg_dir = root / "pkg"
    shutil.rmtree(pkg_dir, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    proc.run(["dpkg-deb", "-x", str(debs[-1]), str(pkg_dir)], timeout=1800)
    tarballs = sorted((pkg_dir / "usr/src").glob(f"{package}.tar.*"))
    if not tarballs:
        raise UserError(f"{debs[-1].name} holds no usr/src/{package}.tar.*: not a linux-source")
    log.info("unpacking %s", tarballs[0].name)
    proc.run(["tar", "-xf", str(tarballs[0]), "-C", str(root)], timeout=1800)
    shutil.rmtree(pkg_dir)
    debs[-1].unlink()  # the unpacked tree and its snapshot are what we keep
    trees = [d for d in root.iterdir() if d.is_dir() and (d / "Makefile").is_file()]
    if len(trees) != 1:
        raise InfraError(f"expected one kernel tree in {root}, found {[t.name for t in trees]}")
    return trees[0]


def directory_source(path: Path) -> SnapshotRepo:
    """Snapshot a plain source directory into a git dir under the cache (tree untouched)."""
    tree = path.expanduser().resolve()
    if not (tree / "Makefile").is_file() or not (tree / "Kconfig").is_file():
        raise UserError(f"{tree} is not a kernel source tree (no Makefile/Kconfig): check the path")
    key = hashlib.sha256(str(tree).encode()).hexdigest()[:10]
    git_dir = cache_subdir("kbuild/snapshots") / f"{tree.name}-{key}.git"
    # .gitignore is honoured so a tree with in-tree build output does not drag it in.
    commit = snapshot(tree, git_dir, f"snapshot of {tree}", force_add=False)
    return SnapshotRepo(git_dir, commit, str(tree))
