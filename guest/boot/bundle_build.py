"""Build the agent bundle VM boots start: the guest package and every standard-library
module it imports, compiled by the guest's own interpreter into one marshal file, and the
launcher that imports from it.

A virtme-ng guest reads its root over 9p, where every stat and open is a round trip to
QEMU, and it cannot write bytecode there (the root is read-only): started from source, the
agent would search sys.path file by file and compile the guest package on every boot. The
bundle is one file read once, already compiled, started with `python3 -S -E LAUNCHER` (no
site scan). A zip is not used because zipimport opens the archive again for every module.
(The figures behind this: docs/performance.md.)

Modules the bundle lacks (C extensions, a lazy import) are still found on the normal path:
the bundle changes how fast, never what runs. Run under the guest's interpreter (the same
/usr/bin/python3 the guest sees), so the bytecode is that interpreter's:

    python3 -S -E guest/boot/bundle_build.py GUEST_DIR DEST_DIR NAME

writes DEST_DIR/NAME.py (the launcher) and DEST_DIR/NAME.bundle. Stdlib only: it runs
outside the harness's environment (harness.vm.agent_bundle calls it).
"""

from __future__ import annotations

import importlib
import importlib.util
import marshal
import os
import sys

PACKAGE = "guest"  # the name the agent imports itself by (guest/ or harness_guest/ on disk)

# The launcher: read the bundle once, serve its modules from a meta-path finder (module
# name -> (is package, source path for tracebacks, marshalled code)), run the agent.
LAUNCHER = '''"""The harness agent, started from its bundle (guest/boot/bundle_build.py)."""
import marshal
import sys

ModuleSpec = type(sys.__spec__)  # importlib.machinery.ModuleSpec, without importing it
with open(__file__[:-3] + ".bundle", "rb") as fh:
    MODULES = marshal.loads(fh.read())


class BundleFinder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        entry = MODULES.get(name)
        if entry is None:
            return None
        spec = ModuleSpec(name, BundleFinder, origin=entry[1], is_package=entry[0])
        spec.has_location = True  # __file__ names the source: tracebacks show its lines
        return spec

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        exec(marshal.loads(MODULES[module.__spec__.name][2]), module.__dict__)


sys.meta_path.insert(0, BundleFinder)
from guest import agent  # noqa: E402

sys.exit(agent.main())
'''


def load_guest_package(guest_dir: str) -> None:
    """Import guest_dir as the package `guest`, whatever its directory is called."""
    spec = importlib.util.spec_from_file_location(
        PACKAGE, os.path.join(guest_dir, "__init__.py"), submodule_search_locations=[guest_dir]
    )
    assert spec is not None and spec.loader is not None
    sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[PACKAGE])


def guest_modules(guest_dir: str) -> list[str]:
    return sorted(f[:-3] for f in os.listdir(guest_dir) if f.endswith(".py") and f != "__init__.py")


def stdlib_sources(names: list[str]) -> dict[str, tuple[bool, str]]:
    """Those of the named modules that live in the standard library as .py files (not
    frozen, not site-packages): module name -> (is package, source path)."""
    import sysconfig  # only now: the builder's own imports are not the agent's

    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep
    found = {}
    for name in names:
        spec = getattr(sys.modules[name], "__spec__", None)
        origin = getattr(spec, "origin", None) or ""
        real = os.path.realpath(origin) if origin.endswith(".py") else ""
        if real.startswith(stdlib) and "-packages" not in real and name != "__main__":
            found[name] = (origin.endswith("__init__.py"), origin)
    return found


def sources(guest_dir: str) -> dict[str, tuple[bool, str]]:
    """Module name -> (is package, source file): the guest package and the stdlib modules
    importing all of it imports."""
    load_guest_package(guest_dir)
    for name in guest_modules(guest_dir):
        importlib.import_module(f"{PACKAGE}.{name}")
    imported = sorted(sys.modules)
    found = {PACKAGE: (True, os.path.join(guest_dir, "__init__.py"))}
    for name in guest_modules(guest_dir):
        found[f"{PACKAGE}.{name}"] = (False, os.path.join(guest_dir, f"{name}.py"))
    for name, entry in stdlib_sources(imported).items():
        found.setdefault(name, entry)
    return found


def compiled(path: str) -> bytes:
    """Marshalled code of one source file, named by its path (tracebacks show the source)."""
    with open(path, "rb") as fh:
        return marshal.dumps(compile(fh.read(), path, "exec", dont_inherit=True))


def write_bundle(guest_dir: str, dest_dir: str, name: str) -> None:
    """Write both files next to their final names, then rename them into place: the
    bundle first, so a launcher that exists always has its bundle."""
    modules = {mod: (pkg, path, compiled(path)) for mod, (pkg, path) in sources(guest_dir).items()}
    for suffix, data in ((".bundle", marshal.dumps(modules)), (".py", LAUNCHER.encode())):
        final = os.path.join(dest_dir, name + suffix)
        tmp = f"{final}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python3 -S -E bundle_build.py GUEST_DIR DEST_DIR NAME")
    write_bundle(*sys.argv[1:])
