"""How many objects a config builds, counted from the tree's Kbuild files without make: the
estimate for a cold build when the cache holds no earlier build of the same config.

It follows `obj-y`/`obj-$(CONFIG_X)` (and lib-, core-) assignments from the top-level
Kbuild down the selected directories and counts the objects they name, composite objects
(`foo-y += a.o b.o`) as their parts, plus one archive per directory. Conditionals
(ifeq/ifdef) are read as if true and other make functions are ignored, so it is an
estimate: 2204 where kbuild counted 2224 on the lean 6.12 config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_ASSIGN = re.compile(r"^([\w.-]+?)-(y|objs|\$\((CONFIG_\w+)\))\s*[:+]?=\s*(.*)$")
_KINDS = ("obj", "lib", "core")


def _logical_lines(text: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", text)
    return [line.split("#", 1)[0].strip() for line in joined.splitlines()]


def _assignments(text: str, config: Mapping[str, str]) -> dict[str, list[str]]:
    """name -> the words assigned to name-y / name-objs / name-$(CONFIG_X) with X set."""
    found: dict[str, list[str]] = {}
    for line in _logical_lines(text):
        match = _ASSIGN.match(line)
        if not match:
            continue
        name, _, option, words = match.groups()
        if option and config.get(option) not in ("y", "m"):
            continue
        found.setdefault(name, []).extend(words.split())
    return found


def _objects(word: str, parts: Mapping[str, list[str]], depth: int = 0) -> int:
    members = [w for w in parts.get(word[:-2], []) if w.endswith(".o") and w != word]
    if not members or depth > 3:
        return 1
    return sum(_objects(m, parts, depth + 1) for m in members)


def count_selected(src: Path, config: Mapping[str, str], arch: str = "x86") -> int:
    """The objects (and one archive per directory) `config` selects in the tree at `src`."""
    count, seen = 0, set()
    todo = [src / "Kbuild", src / "lib", src / "arch" / arch / "lib"]
    while todo:
        where = todo.pop()
        makefile = where if where.is_file() else where / "Kbuild"
        if not makefile.is_file():
            makefile = where / "Makefile"
        if makefile in seen or not makefile.is_file():
            continue
        seen.add(makefile)
        text = makefile.read_text(errors="replace").replace("$(SRCARCH)", arch)
        parts = _assignments(text, config)
        count += 1  # its built-in.a
        for kind in _KINDS:
            for word in parts.get(kind, []):
                if word.endswith("/"):
                    todo.append(makefile.parent / word)
                elif word.endswith(".o"):
                    count += _objects(word, parts)
    return count
