"""A kernel ready to boot (or the running host kernel)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.results.model import KernelInfo


@dataclass(frozen=True)
class Kernel:
    """A bootable kernel: image plus the modules tree for its release.

    `modules_dir` is the lib/modules/<release> directory (None for a kernel with no
    modules); `provenance` says where it came from (package version, git commit, series
    hash, config hash) so results can be reproduced.
    """

    spec: str
    image: Path | None  # None only for the host kernel
    release: str
    modules_dir: Path | None = None
    config: Path | None = None
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def is_host(self) -> bool:
        return self.image is None

    def info(self) -> KernelInfo:
        return KernelInfo(
            spec=self.spec,
            release=self.release,
            image=str(self.image or ""),
            provenance=dict(self.provenance),
        )
