"""Build kernels from source, with and without a patch series, into a keyed cache.

Spec grammar (see harness/kernel/buildspec.py for the full form):

    git:REPO[@REF][+series=MBOX|DIR|MSG-ID][+revert=C1,C2][+config=debug,perf]
    src:debian:PACKAGE[+...]          e.g. src:debian:linux-source-6.12
    src:DIR[+...]                     a source tree without git

Flow: resolve the inputs (tree commit, series, reverts, fragments, compiler) -> cache key.
A hit returns the stored artifacts without running make. A miss checks the variant out
into the repository's private worktree, makes the config (tinyconfig + fragments, verified),
runs make -jN in the object dir shared by all variants of that config (so base+series
rebuilds only what the series touches), then copies bzImage, .config, System.map,
staged modules, build.log and metadata.json into artifacts/<key>/.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from harness import proc
from harness.kernel import tree
from harness.kernel.artifacts import (
    BuildResult,
    artifacts_root,
    load_cached,
    remove_artifacts,
)
from harness.kernel.buildspec import BuildSpec, is_build_spec, parse_build_spec
from harness.kernel.inputs import Inputs
from harness.kernel.kconfig import (
    host_arch,
    load_fragments,
)
from harness.kernel.make import build_variant
from harness.kernel.model import Kernel
from harness.kernel.series import load_series
from harness.kernel.source import debian_source, directory_source

__all__ = [
    "BuildResult",
    "build",
    "is_build_spec",
    "kernel_from_spec",
    "parse_build_spec",
    "remove_artifacts",
    "build_inputs",
]

log = logging.getLogger(__name__)


def compiler_version(cc: str = "gcc") -> str:
    """First line of `gcc --version` (part of the cache key)."""
    return proc.run([cc, "--version"], timeout=60).stdout.splitlines()[0].strip()


def build_inputs(spec: BuildSpec) -> Inputs:
    """Turn a spec into concrete inputs (commits resolved, series loaded, fragments read)."""
    if spec.kind == "git":
        repo = tree.check_repo(Path(spec.location))
        commit, origin = tree.resolve_commit(repo, spec.ref), f"{repo}@{spec.ref}"
    else:
        snap = (
            debian_source(spec.location)
            if spec.kind == "debian"
            else directory_source(Path(spec.location))
        )
        repo, commit, origin = snap.repo, snap.commit, snap.origin
    reverts = tuple(tree.resolve_commit(repo, r) for r in spec.reverts)
    series = load_series(spec.series) if spec.series else None
    arch, image_rel = host_arch(os.uname().machine)
    return Inputs(
        spec=spec,
        repo=repo,
        commit=commit,
        origin=origin,
        series=series,
        reverts=reverts,
        fragments=load_fragments(spec.configs),
        arch=arch,
        image_rel=image_rel,
        compiler=compiler_version(),
    )


def build(spec: BuildSpec, jobs: int | None = None) -> BuildResult:
    """Build (or find in the cache) the kernel a spec describes."""
    inputs = build_inputs(spec)
    final = artifacts_root() / inputs.key
    cached = load_cached(final)
    if cached is not None:
        log.info("cache hit %s for %s", inputs.key, spec.text)
        return cached

    return build_variant(inputs, final, jobs or os.cpu_count() or 1)


def provenance(result: BuildResult) -> dict[str, str]:
    """Flat string provenance for Kernel/KernelInfo from a build's metadata."""
    meta = result.metadata
    keys = (
        "origin",
        "tree_commit",
        "variant_commit",
        "series",
        "series_sha256",
        "series_patchset_hash",
        "config_hash",
        "compiler",
        "arch",
    )
    prov = {k: str(meta[k]) for k in keys if meta.get(k) not in (None, "")}
    prov["source"] = "build"
    prov["cache_key"] = result.key
    prov["reverts"] = ",".join(meta.get("reverts") or [])  # type: ignore[arg-type]
    prov["fragments"] = ",".join(meta.get("fragments") or [])  # type: ignore[arg-type]
    return prov


def kernel_from_spec(text: str, jobs: int | None = None) -> Kernel:
    """Parse a build spec, build it (or hit the cache) and return a bootable Kernel."""
    result = build(parse_build_spec(text), jobs)
    return Kernel(
        spec=text,
        image=result.image,
        release=result.release,
        modules_dir=result.modules_dir,
        config=result.config,
        provenance=provenance(result),
    )
