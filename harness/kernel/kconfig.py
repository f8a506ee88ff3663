"""Kernel config fragments: parse them, hash them, merge them, and check what survived.

A build's config is `make tinyconfig`, then the fragments (kconfigs/base.config first, then
any named ones such as debug or perf) merged with the kernel's own
scripts/kconfig/merge_config.sh, then `make olddefconfig`. Kconfig silently drops a request
whose dependencies are not met, so every requested line is checked against the final
.config and a dropped one fails the build (UserError listing them).

Parsers here are pure functions over text; the make/merge argv builders are pure too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.paths import KCONFIG_DIR

BASE_FRAGMENT = "base"
_SET_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET_RE = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

# ARCH= value for make, the image it produces, per host machine (uname -m).
ARCH_TABLE: Mapping[str, tuple[str, str]] = {
    "x86_64": ("x86_64", "arch/x86/boot/bzImage"),
    "aarch64": ("arm64", "arch/arm64/boot/Image"),
}


@dataclass(frozen=True)
class Fragment:
    """One config fragment: its name (for humans and the cache key) and its text."""

    name: str
    text: str

    def options(self) -> dict[str, str]:
        return parse_config(self.text)


@dataclass(frozen=True)
class Dropped:
    """A requested option whose final value differs from the request."""

    option: str
    wanted: str
    got: str

    def __str__(self) -> str:
        return f"{self.option}={self.wanted} (got {self.got})"


def parse_config(text: str) -> dict[str, str]:
    """Map CONFIG_X -> value ('y', 'm', '"str"', '0x10', or 'n' for '# ... is not set').

    Works for both fragments and full .config files; later lines win, as in Kconfig.
    """
    options: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        match = _SET_RE.match(line)
        if match:
            options[match.group(1)] = match.group(2)
            continue
        match = _UNSET_RE.match(line)
        if match:
            options[match.group(1)] = "n"
    return options


def requested_options(fragments: Iterable[Fragment]) -> dict[str, str]:
    """The merged request of all fragments, later fragments overriding earlier ones."""
    merged: dict[str, str] = {}
    for frag in fragments:
        merged.update(frag.options())
    return merged


def dropped_options(requested: Mapping[str, str], final: Mapping[str, str]) -> list[Dropped]:
    """Requested options that did not survive olddefconfig, in request order.

    A missing symbol counts as 'n' (Kconfig omits symbols whose menu is disabled).
    """
    dropped = []
    for option, wanted in requested.items():
        got = final.get(option, "n")
        if got != wanted:
            dropped.append(Dropped(option, wanted, got if option in final else "unset"))
    return dropped


def fragment_path(name: str, kconfig_dir: Path = KCONFIG_DIR) -> Path:
    """Resolve a fragment name ('debug') or a path ('/x/y.config') to an existing file."""
    if "/" in name or name.endswith(".config"):
        path = Path(name).expanduser()
    elif _NAME_RE.match(name):
        path = kconfig_dir / f"{name}.config"
    else:
        raise UserError(f"bad config fragment name {name!r}: use a name from kconfigs/ or a path")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in kconfig_dir.glob("*.config")))
        raise UserError(f"config fragment {name!r} not found ({path}); known: {known}")
    return path


def load_fragments(names: Sequence[str], kconfig_dir: Path = KCONFIG_DIR) -> tuple[Fragment, ...]:
    """base.config first, then each named fragment once, in the order given."""
    ordered = [BASE_FRAGMENT] + [n for n in names if n != BASE_FRAGMENT]
    seen: set[str] = set()
    frags = []
    for name in ordered:
        if name in seen:
            continue
        seen.add(name)
        path = fragment_path(name, kconfig_dir)
        frags.append(
            Fragment(
                name=path.stem if path.parent == kconfig_dir else str(path), text=path.read_text()
            )
        )
    return tuple(frags)


def config_hash(fragments: Sequence[Fragment], arch: str) -> str:
    """Hash of everything that decides the config before the tree is looked at."""
    digest = hashlib.sha256(f"tinyconfig\0{arch}\0".encode())
    for frag in fragments:
        digest.update(f"{frag.name}\0{frag.text}\0".encode())
    return digest.hexdigest()


def host_arch(machine: str) -> tuple[str, str]:
    """(make ARCH=, image path relative to the object dir) for a `uname -m` value."""
    try:
        return ARCH_TABLE[machine]
    except KeyError:
        raise UserError(
            f"building kernels on {machine} is not supported; supported: {', '.join(ARCH_TABLE)}"
        ) from None


def make_config_argv(src: Path, obj: Path, arch: str, target: str) -> list[str]:
    """`make` for a config target (tinyconfig, olddefconfig) into object dir `obj`."""
    return ["make", "-C", str(src), f"O={obj}", f"ARCH={arch}", target]


def merge_argv(src: Path, obj: Path, fragment_files: Sequence[Path]) -> list[str]:
    """merge_config.sh -m: merge fragments onto obj/.config without running make."""
    return [
        str(src / "scripts/kconfig/merge_config.sh"),
        "-m",
        "-O",
        str(obj),
        str(obj / ".config"),
        *[str(f) for f in fragment_files],
    ]
