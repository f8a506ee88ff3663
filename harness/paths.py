"""Where the harness keeps caches and runs."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
GUEST_DIR = PROJECT_ROOT / "guest"
KCONFIG_DIR = PROJECT_ROOT / "kconfigs"


def cache_dir() -> Path:
    """The cache root: $HARNESS_CACHE_DIR, else .cache/ in the checkout (git-ignored)."""
    env = os.environ.get("HARNESS_CACHE_DIR")
    root = Path(env) if env else PROJECT_ROOT / ".cache"
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_subdir(name: str) -> Path:
    """A named directory under the cache root, created on first use."""
    path = cache_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
