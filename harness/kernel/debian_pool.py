"""The half of a split Debian kernel that the archive's index no longer lists, from its pool.

trixie-backports keeps older linux-signed-amd64 builds (linux-binary-ABI, the meta
linux-image-ABI) after the `linux` source's own binaries of that version left the index,
while the pool still holds them: 6.19, 7.0 and 7.1 today. The exact name and version come
from the signed index (the meta-package's `Depends: linux-modules-ABI (= V)`, the binary's
`Built-Using: linux (= V)`); the file is fetched over HTTPS from the configured archive's
host with apt's own downloader, and its control fields must say that name, version and
architecture. What apt would add and this cannot is the index's SHA256: the package is
trusted as far as TLS to the archive is, which provenance records.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from harness import proc
from harness.errors import FetchError, InfraError

log = logging.getLogger(__name__)

APT_HELPER = "/usr/lib/apt/apt-helper"
ARCH = "amd64"


def field(stanza: str, name: str) -> str:
    """One field of an `apt-cache show` / `dpkg-deb -f` stanza ('' when absent)."""
    found = re.search(rf"^{re.escape(name)}:[ \t]*(.*)$", stanza, re.MULTILINE)
    return found[1].strip() if found else ""


def pinned(relations: str, package: str) -> str | None:
    """The version a Depends/Built-Using line pins `package` to with `(= V)`, else None."""
    found = re.search(rf"(?:^|,)\s*{re.escape(package)}\s*\(=\s*([^)\s]+)\s*\)", relations)
    return found[1] if found else None


def archive_uri(sources_list: str, suite: str) -> str:
    """The archive URI a sources.list text uses for `suite`, as https (FetchError if none)."""
    for line in sources_list.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
            return "https://" + re.sub(r"^[a-z]+://", "", words[1]).rstrip("/")
    raise FetchError(f"no '{suite}' archive in the private sources list: cannot reach its pool")


def pool_url(archive: str, source: str, package: str, version: str) -> str:
    """pool/main/<l>/<source>/<package>_<version without epoch>_<arch>.deb under archive."""
    prefix = source[:4] if source.startswith("lib") else source[0]
    bare = version.split(":", 1)[-1]
    return f"{archive}/pool/main/{prefix}/{source}/{package}_{bare}_{ARCH}.deb"


def download_argv(url: str, dest: Path, options: Sequence[str] = ()) -> list[str]:
    return [APT_HELPER, *options, "download-file", url, str(dest)]


def built_from(binary: str) -> tuple[str, str]:
    """(source package, its version) a linux-binary was built from: Built-Using for the
    signed one (linux-signed-amd64 wraps linux's build), else Source and Version."""
    built = field(binary, "Built-Using")
    if built:
        source = built.split()[0]
        return source, pinned(built, source) or ""
    return field(binary, "Source").split(" ")[0], field(binary, "Version")


def locate(package: str, meta: str, binary: str, sources_list: str, suite: str) -> tuple[str, str]:
    """(url, version) of `package` from the meta linux-image's and linux-binary's stanzas."""
    version = pinned(field(meta, "Depends"), package)
    source, built = built_from(binary)
    if not version or not source or built != version:
        raise FetchError(
            f"{package} is not in the archive's index and {field(meta, 'Package')} does not "
            f"pin it (Depends) to the build of {field(binary, 'Package')} ({source} {built})"
        )
    return pool_url(archive_uri(sources_list, suite), source, package, version), version


def check_control(control: str, package: str, version: str) -> None:
    """FetchError unless a downloaded .deb's control names package, version and arch."""
    got = (field(control, "Package"), field(control, "Version"), field(control, "Architecture"))
    if got != (package, version, ARCH):
        raise FetchError(f"the pool's {package} {version} says it is {' '.join(got)}: refused")


def fetch(url: str, package: str, version: str, dest: Path, options: Sequence[str]) -> Path:
    """Download url to dest/<name>.deb with apt-helper and check what it holds."""
    deb = dest / url.rsplit("/", 1)[1]
    log.warning(
        "debian: %s is not in the archive's index: fetching %s (HTTPS, no index hash)", package, url
    )
    try:
        proc.run_retrying(download_argv(url, deb, options), timeout=1800)
    except InfraError as exc:
        raise FetchError(
            f"downloading {url} failed: {exc}; the pool may have dropped "
            f"{package} too: pick another series"
        ) from exc
    control = proc.run(["dpkg-deb", "-f", str(deb)], timeout=60).stdout
    try:
        check_control(control, package, version)
    except FetchError:
        deb.unlink()
        raise
    return deb
