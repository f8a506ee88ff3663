"""The build cache: artifacts/<key>/ holds one finished build, published atomically.

A build is staged in artifacts/<key>.partial/ and renamed into place only when complete,
so a present metadata.json always means a usable build (a failed one keeps its
build.log in the .partial directory, where the BuildError points).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from harness.paths import cache_subdir


@dataclass(frozen=True)
class BuildResult:
    """Where the artifacts of one build are, and whether they came from the cache."""

    key: str
    directory: Path
    image: Path
    config: Path
    release: str
    modules_dir: Path | None
    cache_hit: bool
    metadata: dict[str, object] = field(default_factory=dict)

    @property
    def build_log(self) -> Path:
        return self.directory / "build.log"


def artifacts_root() -> Path:
    return cache_subdir("kbuild/artifacts")


def load_cached(directory: Path) -> BuildResult | None:
    """The stored result in `directory`, or None when it is absent or incomplete."""
    meta_path = directory / "metadata.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    image = directory / str(meta["image"])
    if not image.is_file():
        return None
    modules = meta.get("modules_dir")
    return BuildResult(
        key=str(meta["key"]),
        directory=directory,
        image=image,
        config=directory / "config",
        release=str(meta["release"]),
        modules_dir=directory / str(modules) if modules else None,
        cache_hit=True,
        metadata=meta,
    )


def remove_artifacts(key: str) -> None:
    """Drop one cached build (used by tests and `harness build --rebuild`)."""
    shutil.rmtree(artifacts_root() / key, ignore_errors=True)
