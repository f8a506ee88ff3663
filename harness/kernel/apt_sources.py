"""Read the machine's apt configuration and derive a private sources list from it.

We never hard-code a mirror: the Debian archive URI is taken from the system's own
sources (one-line .list or deb822 .sources files), and the extra suites that carry newer
kernels (trixie-backports, sid) are added on that same URI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

EXTRA_SUITES = ("trixie-backports", "sid")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str = ""


def parse_one_line(text: str) -> list[AptSource]:
    """Parse one-line style `deb [opts] URI SUITE COMPONENTS...` entries (deb-src ignored)."""
    sources = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        signed_by = ""
        opts = re.match(r"deb\s+\[([^\]]*)\]\s*", line)
        if opts:
            found = re.search(r"signed-by=(\S+)", opts.group(1))
            signed_by = found.group(1) if found else ""
            line = "deb " + line[opts.end() :]
        words = line.split()
        if len(words) >= 4:
            sources.append(AptSource(words[1], (words[2],), tuple(words[3:]), signed_by))
    return sources


def parse_deb822(text: str) -> list[AptSource]:
    """Parse deb822 `.sources` stanzas (Types/URIs/Suites/Components/Signed-By)."""
    sources = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for raw in stanza.splitlines():
            if raw.startswith("#") or ":" not in raw:
                continue
            key, value = raw.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
            continue
        for uri in fields.get("uris", "").split():
            sources.append(
                AptSource(
                    uri,
                    tuple(fields.get("suites", "").split()),
                    tuple(fields.get("components", "").split()),
                    fields.get("signed-by", ""),
                )
            )
    return sources


def system_sources(etc: Path = Path("/etc/apt")) -> list[AptSource]:
    """All `deb` entries configured on this machine."""
    sources = []
    main = etc / "sources.list"
    if main.is_file():
        sources += parse_one_line(main.read_text())
    parts = etc / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                sources += parse_one_line(path.read_text())
            elif path.suffix == ".sources":
                sources += parse_deb822(path.read_text())
    return sources


def debian_sources(sources: list[AptSource], codename: str) -> list[AptSource]:
    """The Debian archive entries: those whose suites are the release or its -updates/-security."""
    keep = []
    for src in sources:
        suites = tuple(s for s in src.suites if s == codename or s.startswith(codename + "-"))
        if suites and "main" in src.components:
            keep.append(AptSource(src.uri, suites, ("main",), src.signed_by))
    return keep


def archive_uri(sources: list[AptSource], codename: str) -> str | None:
    """The URI of the Debian archive these sources use for `codename`, or None."""
    found = next((s for s in debian_sources(sources, codename) if codename in s.suites), None)
    return found.uri if found else None


def private_sources_list(
    sources: list[AptSource], codename: str, extra: tuple[str, ...] = EXTRA_SUITES
) -> str:
    """sources.list text: the machine's Debian entries plus `extra` suites on its main
    archive."""
    debian = debian_sources(sources, codename)
    archive = next((s for s in debian if codename in s.suites), None)
    if archive is None:
        raise UserError(
            f"no Debian '{codename}' archive in /etc/apt sources: configure apt for Debian "
            "(the harness reuses the mirror apt already uses)"
        )
    lines = []
    for src in debian:
        for suite in src.suites:
            lines.append(f"deb {src.uri} {suite} main")
    for suite in extra:
        lines.append(f"deb {archive.uri} {suite} main")
    return "\n".join(dict.fromkeys(lines)) + "\n"


def host_codename(os_release: Path = Path("/etc/os-release")) -> str:
    """VERSION_CODENAME of the host (bookworm here)."""
    for line in os_release.read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    raise UserError(f"{os_release} has no VERSION_CODENAME: debian:VERSION needs a Debian host")
