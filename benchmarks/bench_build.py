"""Print build figures: full lean build, second-variant rebuild (and its ratio), cache hit.

    .venv/bin/python benchmarks/bench_build.py [--spec SPEC] [--series MBOX] [--full]
                                               [--vng-config] [--jobs N]

Default: the lean full-build time recorded when the base was first built (its
metadata.json), then a fresh incremental rebuild of base+series right after base (both
variants' cached artifacts are dropped first, the shared object dir is kept), then a cache
hit. --full times a from-scratch lean build in a throw-away cache (no ccache, ~10+ min).
--vng-config also times `vng --kconfig` + build of the same tree in its own object dir
(over 15 minutes here), so it is off by default.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from harness import proc
from harness.kernel import build as kbuild
from harness.kernel import tree
from harness.kernel.buildspec import parse_build_spec
from harness.kernel.make import compiler_argv_value, make_argv, make_env

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERIES = ROOT / "tests/data/series/harness-probe.mbox"


def timed(spec_text: str, jobs: int) -> tuple[float, kbuild.BuildResult]:
    start = time.monotonic()
    result = kbuild.build(parse_build_spec(spec_text), jobs)
    return time.monotonic() - start, result


def full_record(result: kbuild.BuildResult) -> float:
    """The base's first (full) make time, kept aside: the rebuild below overwrites metadata."""
    record = result.directory.parent.parent / "bench" / f"full-{result.key}.json"
    if not record.is_file():
        record.parent.mkdir(parents=True, exist_ok=True)
        make_s = result.metadata["durations"]["make_s"]  # type: ignore[index]
        record.write_text(json.dumps({"make_s": make_s}) + "\n")
    return float(json.loads(record.read_text())["make_s"])


def full_build(spec_text: str, jobs: int) -> float:
    """A from-scratch build in a temporary cache (fresh worktree, object dir and ccache)."""
    with tempfile.TemporaryDirectory(prefix="bench-build-", dir=ROOT / ".cache") as tmp:
        os.environ["HARNESS_CACHE_DIR"] = tmp
        try:
            seconds, result = timed(spec_text, jobs)
            print(
                f"full lean build (fresh cache):  {seconds:8.1f} s  make "
                f"{result.metadata['durations']}"
            )  # type: ignore[index]
            return seconds
        finally:
            del os.environ["HARNESS_CACHE_DIR"]


def vng_config_build(spec_text: str, jobs: int) -> None:
    """virtme-ng's default config (vng --kconfig) built in its own object dir."""
    inputs = kbuild.resolve(parse_build_spec(spec_text))
    work = tree.workdir_for(inputs.repo)
    obj = work.root / "obj-vng-default"
    shutil.rmtree(obj, ignore_errors=True)
    obj.mkdir(parents=True)
    start = time.monotonic()
    with tree.locked(work):
        tree.checkout_variant(work, inputs.commit, (), None)
        # what `vng --kconfig` runs, pointed at a separate object dir
        argv = ["virtme-configkernel", "--defconfig", f"O={obj}"]
        proc.run(
            argv,
            timeout=1800,
            cwd=work.src,
            env={**make_env(), "PATH": f"{ROOT / '.venv/bin'}:{os.environ['PATH']}"},
        )
        configured = time.monotonic() - start
        proc.run(
            make_argv(work.src, obj, inputs.arch, compiler_argv_value(), [], jobs),
            timeout=4 * 3600,
            env=make_env(),
            log_path=obj / "build.log",
        )
    total = time.monotonic() - start
    print(f"vng default config:             {total:8.1f} s  (config {configured:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="src:debian:linux-source-6.12")
    parser.add_argument("--series", default=str(DEFAULT_SERIES))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--full", action="store_true", help="also time a from-scratch build")
    parser.add_argument("--vng-config", action="store_true", help="also time vng --kconfig")
    ns = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    base, variant = ns.spec, f"{ns.spec}+series={ns.series}"
    print(f"host: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, jobs {ns.jobs}")
    full = full_build(base, ns.jobs) if ns.full else None
    _, result = timed(base, ns.jobs)  # make sure the base exists (first run: full build)
    recorded = full_record(result)
    full = full or recorded
    print(f"full lean build (recorded make): {recorded:8.1f} s")
    for spec in (base, variant):  # drop both so the rebuild below is real
        kbuild.remove_artifacts(kbuild.resolve(parse_build_spec(spec)).key)
    back, _ = timed(base, ns.jobs)
    print(f"back to base (incremental):     {back:8.1f} s")
    second, result = timed(variant, ns.jobs)
    print(f"second variant (base+series):   {second:8.1f} s  {result.metadata['durations']}")
    print(f"ratio second/full:              {100 * second / full:8.1f} %  (goal <= 10 %)")
    hit, result = timed(variant, ns.jobs)
    print(f"cache hit:                      {hit:8.2f} s  (hit={result.cache_hit})")
    if ns.vng_config:
        vng_config_build(base, ns.jobs)


if __name__ == "__main__":
    main()
