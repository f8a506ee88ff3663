"""Backport lint: stable trees want every patch to say where it comes from.

A patch passes when its message carries a `commit <sha> upstream` line (the stable
convention, also `[ Upstream commit <sha> ]`) or a `Fixes:` tag. Others are listed as
warnings: the table still runs, but a stable maintainer will ask.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.kernel.series import Patch

_UPSTREAM = re.compile(
    r"^\s*(?:\[\s*)?(?:upstream\s+)?commit\s+[0-9a-f]{7,40}\s+(?:upstream|\]|\))", re.I | re.M
)
_FIXES = re.compile(r"^Fixes:\s*[0-9a-f]{7,40}\b", re.I | re.M)


@dataclass(frozen=True)
class LintWarning:
    """One patch that names neither an upstream commit nor what it fixes."""

    patch: int  # 1-based
    subject: str
    message: str

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def message_of(patch: Patch) -> str:
    """The commit message: the mail body up to the diffstat/diff."""
    body = patch.text.split("\n\n", 1)[1] if "\n\n" in patch.text else patch.text
    return re.split(r"^---\s*$|^diff --git ", body, maxsplit=1, flags=re.M)[0]


def has_provenance(patch: Patch) -> bool:
    text = message_of(patch)
    return bool(_UPSTREAM.search(text) or _FIXES.search(text))


def lint_series(patches: Sequence[Patch]) -> tuple[LintWarning, ...]:
    """Warnings for the patches without a `commit <sha> upstream` line or a Fixes: tag."""
    return tuple(
        LintWarning(i, p.subject, "no 'commit <sha> upstream' line and no Fixes: tag")
        for i, p in enumerate(patches, start=1)
        if not has_provenance(p)
    )
