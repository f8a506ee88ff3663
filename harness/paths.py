"""Where the harness finds its own files (the guest agent, kconfig fragments) and keeps
caches and runs — the same from a checkout and from an installed wheel."""

import os
from pathlib import Path

import harness_guest
import harness_kconfigs

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent  # the checkout (editable install) or site-packages
GUEST_DIR = Path(harness_guest.__file__).resolve().parent
KCONFIG_DIR = Path(harness_kconfigs.__file__).resolve().parent


def in_checkout() -> bool:
    """True when running from a source checkout (pyproject.toml beside the package)."""
    return (PROJECT_ROOT / "pyproject.toml").is_file()


def cache_dir() -> Path:
    """The cache root: $HARNESS_CACHE_DIR, else .cache/ in the checkout (git-ignored), else
    ~/.cache/kernel-harness for an installed harness."""
    env = os.environ.get("HARNESS_CACHE_DIR")
    if env:
        root = Path(env)
    elif in_checkout():
        root = PROJECT_ROOT / ".cache"
    else:
        root = Path.home() / ".cache" / "kernel-harness"
    root.mkdir(parents=True, exist_ok=True)
    # Resolved: guests on the host's root read cached files at these paths, and a symlink
    # into a directory the guest does not share would point nowhere there
    return root.resolve()


def cache_subdir(name: str) -> Path:
    """A named directory under the cache root, created on first use."""
    path = cache_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_out_root() -> Path:
    """Where runs go without --out: out/ in the checkout, else out/ in the working directory."""
    return PROJECT_ROOT / "out" if in_checkout() else Path.cwd() / "out"
