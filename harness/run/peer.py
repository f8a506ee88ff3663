"""The host side of peer suites: build the user's checkout once into the cache (a copy, the
checkout is never written) and add one plan step per selected suite test.

The build is keyed by what the checkout holds (every file's path, size and mtime), so an
edited checkout is built again and an unchanged one never is. The guest sees the cache
read-only through the host's root and copies the build into its writable workdir.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.paths import cache_subdir
from harness.proc import require_tool, run
from harness.suite import peer
from harness.suite.plan import Plan, Step

log = logging.getLogger(__name__)

BUILT_STAMP = ".harness-built"
BUILD_TIMEOUT_S = 3600


def fingerprint(checkout: Path) -> str:
    """A hash of the checkout's files (relative path, size, mtime); .git is left out."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(checkout):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            path = Path(folder, name)
            st = path.lstat()
            rel = path.relative_to(checkout)
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def rsync_argv(src: Path, dst: Path) -> list[str]:
    """Copy the checkout (not its .git) into the build directory, links kept as links,
    writable by us (a read-only checkout stays read-only, its copy is built in)."""
    return ["rsync", "-a", "--delete", "--chmod=u+w", "--exclude=.git", f"{src}/", f"{dst}/"]


def make_argv(jobs: int) -> list[str]:
    return ["make", f"-j{max(1, jobs)}"]


def tar_argv(built: Path, tarball: Path) -> list[str]:
    """The built suite as one tar file for the guest: fstests is ~8000 small files, which
    the guest copied one 9p round trip at a time (over 4 minutes under TCG for 34 MB);
    one sequential read of a tar is a few seconds. Objects and autotools caches are left
    out: nothing runs them."""
    excluded = ("*.o", ".git", "autom4te.cache", BUILT_STAMP)
    return [
        "tar",
        "-cf",
        str(tarball),
        *(f"--exclude={x}" for x in excluded),
        "-C",
        str(built),
        ".",
    ]


def tarball_of(built: Path) -> Path:
    return built.with_suffix(".tar")


def build(spec: peer.SuiteSpec) -> Path:
    """The built copy of the suite (cache/peer/SUITE-HASH), built now if it is not yet."""
    if not (spec.path / "check").is_file():
        raise UserError(f"{spec.suite}: {spec.path} is not a {spec.suite} checkout (no ./check)")
    dst = cache_subdir("peer") / f"{spec.suite}-{fingerprint(spec.path)}"
    if (dst / BUILT_STAMP).is_file() and tarball_of(dst).is_file():
        return dst
    if (dst / BUILT_STAMP).is_file():  # built before the tar existed: pack it only
        run(tar_argv(dst, tarball_of(dst)), timeout=600)
        return dst
    require_tool("rsync", "rsync")
    require_tool("make", "build-essential")
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    build_log = dst.with_suffix(".build.log")
    log.info("building %s from %s in %s (log: %s)", spec.suite, spec.path, dst, build_log)
    run(rsync_argv(spec.path, dst), timeout=600)
    build_log.write_text("")
    run(make_argv(os.cpu_count() or 1), timeout=BUILD_TIMEOUT_S, cwd=dst, log_path=build_log)
    partial = tarball_of(dst).with_suffix(".tar.partial")
    run(tar_argv(dst, partial), timeout=600)
    partial.replace(tarball_of(dst))
    (dst / BUILT_STAMP).write_text(str(spec.path) + "\n")
    return dst


def with_suites(
    plan: Plan, specs: tuple[peer.SuiteSpec, ...], release: str, build_suite=build
) -> Plan:
    """The plan with each suite's tests appended as steps after the harness's own."""
    added: list[dict[str, Any]] = []
    for spec in specs:
        built = build_suite(spec)
        tests = peer.expand(spec, built)
        added += peer.suite_steps(spec, built, tests, list(plan.disks), release)
    ids = [s.id for s in plan.steps] + [s["id"] for s in added]
    if len(ids) != len(set(ids)):
        raise UserError("a suite test is selected twice: give each --suite different tests")
    steps = plan.steps + tuple(Step.from_dict(s) for s in added)
    name = "+".join([plan.name] * bool(plan.steps) + [str(s.suite) for s in specs])
    return replace(plan, steps=steps, name=name)
