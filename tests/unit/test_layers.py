"""The house's layers: every import in harness/ points down (or stays inside its own layer),
and no modules import each other in a circle, function-level imports included."""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"

# Top to bottom (docs/layout.md). A module may import its own layer and any layer below it.
LAYERS = (
    ("cli",),
    ("workflows",),
    ("run",),
    ("kernel", "vm"),
    ("suite",),
    ("report",),
    ("verdict",),
    ("klog",),
    ("results",),
    ("signals",),
    ("proc",),
    ("errors", "paths"),
)


def layer_of(module: str) -> tuple[int, str]:
    """(depth, top-level part) of a dotted harness module: 'harness.run.vm' -> (2, 'run')."""
    part = module.split(".")[1] if module.count(".") else ""
    for depth, names in enumerate(LAYERS):
        if part in names:
            return depth, part
    raise AssertionError(f"{module}: not in any layer of tests/unit/test_layers.py")


def module_name(path: Path) -> str:
    rel = path.relative_to(HARNESS.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every harness module `path` imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("harness."))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "harness":
            for alias in node.names:  # `from harness.x import mod` names a module or a symbol
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if _exists(candidate) else node.module)
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split("."))
    return (HARNESS.parent / rel).with_suffix(".py").is_file() or (
        HARNESS.parent / rel / "__init__.py"
    ).is_file()


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in HARNESS.rglob("*.py") if p.name != "__main__.py"}
    return {name: imports_of(path) - {name, "harness"} for name, path in modules.items()}


def test_every_import_points_down_or_stays_in_its_layer():
    up = []
    for module, imported in graph().items():
        if module == "harness":
            continue
        depth = layer_of(module)[0]
        for target in imported:
            if layer_of(target)[0] < depth:
                up.append(f"{module} -> {target}")
            elif layer_of(target)[0] == depth and layer_of(target)[1] != layer_of(module)[1]:
                up.append(f"{module} -> {target} (across one layer)")
    assert not up, "imports that run back up a layer:\n" + "\n".join(sorted(up))


def test_no_circles():
    edges = graph()
    seen: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        seen[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if seen.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
            if nxt not in seen and (found := visit(nxt, path + [nxt])):
                return found
        seen[node] = 2
        return None

    for start in sorted(edges):
        if start not in seen and (circle := visit(start, [start])):
            raise AssertionError("import circle: " + " -> ".join(circle))


def test_a_known_upward_import_is_caught(tmp_path):
    """The checker itself: verdict importing the run engine is an upward import."""
    assert layer_of("harness.verdict")[0] > layer_of("harness.run.assemble")[0]
    assert layer_of("harness.klog.splats")[0] > layer_of("harness.verdict")[0]


def test_every_module_opens_with_a_line_saying_what_it_holds():
    bare = []
    for path in [*HARNESS.rglob("*.py"), *(HARNESS.parent / "guest").rglob("*.py")]:
        doc = ast.get_docstring(ast.parse(path.read_text()))
        if path.stat().st_size and not (doc and doc.strip()):
            bare.append(str(path.relative_to(HARNESS.parent)))
    assert not bare, "modules without a first line saying what they hold: " + ", ".join(bare)
