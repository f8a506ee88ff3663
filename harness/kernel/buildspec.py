"""The kernel-spec grammar for kernels built from source (pure parsing, no I/O).

    SPEC    := ORIGIN OPTION*
    ORIGIN  := "git:" REPO ["@" REF]        a kernel git tree; REF defaults to HEAD
             | "src:debian:" PACKAGE        Debian's linux-source-X.Y, unpacked + snapshotted
             | "src:" DIR                   a source tree without git, snapshotted
    OPTION  := "+series=" (MBOX | PATCH-DIR | MESSAGE-ID)   applied with git am -3
             | "+revert=" COMMIT[,COMMIT...]                 reverted before the series
             | "+config=" NAME[,NAME...]                     kconfigs/NAME.config or a path

Examples:
    git:/srv/linux@v6.18
    git:/srv/linux@96f03c8cb29f
    git:/srv/linux@v6.18+series=/path/loop-nowait.mbox
    git:/srv/linux@v6.18+series=20251015110735.1361261-1-ming.lei@redhat.com
    git:/srv/linux@HEAD+revert=abc123+config=debug
    src:debian:linux-source-6.12+series=tests/data/series/harness-probe.mbox
    src:/path/to/extracted/tree+series=/path/to/patches/
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import UserError

PREFIXES = ("git:", "src:")
_OPTION_SPLIT = re.compile(r"\+(series|revert|config)=")


@dataclass(frozen=True)
class BuildSpec:
    """A parsed build spec: where the source comes from and what goes on top of it."""

    text: str
    kind: str  # "git", "debian" or "dir"
    location: str  # repository path, Debian package name, or directory
    ref: str = "HEAD"  # only for kind == "git"
    series: str | None = None
    reverts: tuple[str, ...] = ()
    configs: tuple[str, ...] = ()

    def with_configs(self, extra: tuple[str, ...]) -> BuildSpec:
        """The same spec with more config fragments (from --config on the command line)."""
        configs = self.configs + tuple(c for c in extra if c not in self.configs)
        return BuildSpec(
            self.text, self.kind, self.location, self.ref, self.series, self.reverts, configs
        )


def is_build_spec(text: str) -> bool:
    """True for specs of this grammar (they start with git: or src:)."""
    return text.startswith(PREFIXES)


def _split_list(value: str, what: str, text: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise UserError(f"empty +{what}= in {text!r}: e.g. +{what}=NAME")
    return items


def parse_build_spec(text: str) -> BuildSpec:
    """Parse a spec string; UserError with the grammar's shape on anything malformed."""
    if not is_build_spec(text):
        raise UserError(f"{text!r} is not a build spec: use git:REPO@REF or src:debian:PKG")
    pieces = _OPTION_SPLIT.split(text)
    origin, options = pieces[0], list(zip(pieces[1::2], pieces[2::2], strict=True))
    series: str | None = None
    reverts: tuple[str, ...] = ()
    configs: tuple[str, ...] = ()
    for name, value in options:
        if name == "series":
            if series is not None:
                raise UserError(f"two +series= in {text!r}: put all patches in one mbox or dir")
            if not value:
                raise UserError(f"empty +series= in {text!r}: give an mbox, dir or message-id")
            series = value
        elif name == "revert":
            reverts += _split_list(value, name, text)
        else:
            configs += _split_list(value, name, text)
    kind, location, ref = _parse_origin(origin, text)
    return BuildSpec(text, kind, location, ref, series, reverts, configs)


def _parse_origin(origin: str, text: str) -> tuple[str, str, str]:
    if origin.startswith("git:"):
        body = origin[4:]
        repo, at, ref = body.rpartition("@")
        if not at:
            repo, ref = body, "HEAD"
        if not repo or not ref:
            raise UserError(f"malformed {text!r}: use git:/path/to/linux@REF (REF: tag or commit)")
        return "git", repo, ref
    body = origin[4:]
    if body.startswith("debian:"):
        package = body[len("debian:") :]
        if not package:
            raise UserError(f"malformed {text!r}: use src:debian:linux-source-6.12")
        return "debian", package, "HEAD"
    if not body:
        raise UserError(f"malformed {text!r}: use src:/path/to/tree or src:debian:PACKAGE")
    return "dir", body, "HEAD"
