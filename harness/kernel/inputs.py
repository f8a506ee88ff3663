"""Everything that decides a build's output; its hash is the cache key."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from harness.kernel.buildspec import BuildSpec
from harness.kernel.kconfig import Fragment, config_hash
from harness.kernel.series import Series

# How builds are made, bumped when a change makes earlier artifacts untrustworthy.
# 2: ccache out of depend mode (harness.kernel.make.make_env): recipe-1 images could carry
# an earlier variant's kernel.
BUILD_RECIPE = 2


@dataclass(frozen=True)
class Inputs:
    """Everything that decides a build's output; its hash is the cache key."""

    spec: BuildSpec
    repo: Path
    commit: str
    origin: str
    series: Series | None
    reverts: tuple[str, ...]
    fragments: tuple[Fragment, ...]
    arch: str
    image_rel: str
    compiler: str

    @property
    def config_hash(self) -> str:
        return config_hash(self.fragments, self.arch)

    @property
    def config_label(self) -> str:
        """Object-dir name per fragment set: tweaking a fragment stays incremental."""
        names = [re.sub(r"[^A-Za-z0-9_.-]", "_", f.name)[-40:] for f in self.fragments]
        return "+".join(names)

    @property
    def key(self) -> str:
        data = {
            "commit": self.commit,
            "series": self.series.sha256 if self.series else None,
            "reverts": list(self.reverts),
            "config": self.config_hash,
            "compiler": self.compiler,
            "arch": self.arch,
            "recipe": BUILD_RECIPE,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:20]
