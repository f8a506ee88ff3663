"""The slow path of a build: check the variant out, configure, make, stage artifacts.

One object directory per (repository, fragment set) is shared by all variants, so
switching from base to base+series rebuilds only the files the series changed. The
config is regenerated only when the checked-out commit changed Kconfig inputs; otherwise
the previous final .config is reused (tinyconfig + merge + olddefconfig costs ~20 s, a
large share of an incremental rebuild).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from harness import proc
from harness.errors import BuildError, InfraError, UserError
from harness.kernel import kbuild_count, kconfig, make_progress, tree
from harness.kernel.artifacts import BuildResult, artifacts_root, load_cached
from harness.kernel.image import gzip_payload
from harness.kernel.inputs import Inputs
from harness.paths import cache_subdir

log = logging.getLogger(__name__)

MAKE_TIMEOUT_S = 4 * 3600.0
CONFIG_TIMEOUT_S = 900.0
_KCONFIG_INPUT = re.compile(r"(^|/)Kconfig[^/]*$|^scripts/|^arch/[^/]+/configs/|^kernel/configs/")


def compiler_argv_value() -> str:
    """CC= for make: ccache in front of gcc when ccache is installed."""
    return "ccache gcc" if shutil.which("ccache") else "gcc"


def make_env() -> dict[str, str]:
    """Environment for make: ccache under the harness cache, reproducible build identity."""
    return {
        **os.environ,
        # Not depend mode (CCACHE_DEPEND): it never sees an `.incbin`, so piggy.S, whose text
        # only holds the compressed kernel's sizes, came back from the cache with an earlier
        # variant's kernel inside whenever the sizes matched (seen: a loop.c variant booted
        # as the build before it). Default mode finds the directive and does not cache it.
        # "ccache-v2": the depend-mode cache holds such entries, and direct mode would hit them.
        "CCACHE_DIR": str(cache_subdir("ccache-v2")),
        "KBUILD_BUILD_USER": "harness",
        "KBUILD_BUILD_HOST": "harness",
    }


def make_argv(
    src: Path, obj: Path, arch: str, cc: str, targets: Sequence[str], jobs: int | None = None
) -> list[str]:
    """make -C SRC O=OBJ ARCH= CC= [-jN] TARGETS... (CC with a space stays one argument)."""
    argv = ["make", "-C", str(src), f"O={obj}", f"ARCH={arch}", f"CC={cc}"]
    if jobs:
        argv.append(f"-j{jobs}")
    return [*argv, *targets]


def kconfig_inputs_changed(paths: Sequence[str]) -> bool:
    """Whether any changed path can alter what olddefconfig produces."""
    return any(_KCONFIG_INPUT.search(p) for p in paths)


def first_errors(log_text: str, limit: int = 2) -> list[str]:
    """The first compiler/linker/make error lines of a build log (for the one-line message)."""
    pattern = re.compile(r"(error:|Error \d+|undefined reference|\*\*\*)")
    hits = [line.strip() for line in log_text.splitlines() if pattern.search(line)]
    return hits[:limit]


def _same_kconfig_inputs(src: Path, old: str, new: str) -> bool:
    if old == new:
        return True
    try:
        return not kconfig_inputs_changed(tree.changed_paths(src, old, new))
    except InfraError:  # the old commit is gone (gc): just regenerate
        return False


def configure(inputs: Inputs, work: tree.WorkDir, head: str, cc: str) -> str:
    """The final .config text for the checked-out variant; UserError on dropped options."""
    cfg = work.cfg
    cfg.mkdir(parents=True, exist_ok=True)
    tag = inputs.config_hash[:12]
    state_path, final_path = cfg / f"state-{tag}.json", cfg / f"final-{tag}.config"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    reusable = (
        final_path.is_file()
        and state.get("config_hash") == inputs.config_hash
        and state.get("compiler") == inputs.compiler
        and _same_kconfig_inputs(work.src, str(state.get("head", "")), head)
    )
    if reusable:
        log.info("config unchanged since %s: reusing it", str(state["head"])[:12])
        return final_path.read_text()
    text = generate_config(work.src, cfg, inputs.fragments, inputs.arch, cc)
    final_path.write_text(text)
    state = {"config_hash": inputs.config_hash, "compiler": inputs.compiler, "head": head}
    state_path.write_text(json.dumps(state) + "\n")
    return text


def generate_config(
    src: Path, cfg: Path, fragments: Sequence[kconfig.Fragment], arch: str, cc: str
) -> str:
    """tinyconfig + merge_config.sh + olddefconfig in `cfg`; UserError on dropped options."""
    log.info("configuring %s (tinyconfig + %s)", cfg, ", ".join(f.name for f in fragments))
    frag_dir = cfg / "fragments"
    shutil.rmtree(frag_dir, ignore_errors=True)
    frag_dir.mkdir(parents=True)
    files = []
    for i, frag in enumerate(fragments):
        files.append(frag_dir / f"{i:02d}-{Path(frag.name).stem}.config")
        files[-1].write_text(frag.text)
    (cfg / ".config").unlink(missing_ok=True)
    env = make_env()
    for argv in (
        make_argv(src, cfg, arch, cc, ["tinyconfig"]),
        kconfig.merge_argv(src, cfg, files),
        make_argv(src, cfg, arch, cc, ["olddefconfig"]),
    ):
        proc.run(argv, timeout=CONFIG_TIMEOUT_S, env=env)
    text = (cfg / ".config").read_text()
    dropped = kconfig.dropped_options(
        kconfig.requested_options(fragments), kconfig.parse_config(text)
    )
    if dropped:
        raise UserError(
            "config options dropped by olddefconfig (unmet dependencies or wrong arch): "
            + ", ".join(str(d) for d in dropped)
            + " - fix the fragment(s) "
            + ", ".join(f.name for f in fragments)
        )
    return text


def install_config(obj: Path, text: str) -> None:
    """Write obj/.config only when it changed: a fresh mtime alone triggers syncconfig."""
    obj.mkdir(parents=True, exist_ok=True)
    path = obj / ".config"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def run_make(argv: list[str], log_path: Path, what: str) -> None:
    """Run one make step into log_path; BuildError with the first error and the log path."""
    try:
        proc.run(argv, timeout=MAKE_TIMEOUT_S, env=make_env(), log_path=log_path)
    except InfraError as exc:
        errors = first_errors(log_path.read_text(errors="replace")) if log_path.exists() else []
        detail = "; ".join(errors) or str(exc)
        raise BuildError(f"{what} failed: {detail}", str(log_path)) from exc


def build_variant(inputs: Inputs, final: Path, jobs: int) -> BuildResult:
    """Check out, configure and build one variant, then publish it as artifacts/<key>."""
    work = tree.workdir_for(inputs.repo)
    partial = final.with_name(final.name + ".partial")
    with tree.locked(work):
        cached = load_cached(final)  # another process may have built it while we waited
        if cached is not None:
            return cached
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            meta = _build_locked(inputs, work, partial, jobs)
        except BuildError:
            raise  # keep the .partial dir: it holds the build.log the error names
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        (partial / "metadata.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
    result = load_cached(final)
    if result is None:
        raise InfraError(f"build of {inputs.spec.text} left no usable artifacts in {final}")
    return replace(result, cache_hit=False)


def _build_locked(inputs: Inputs, work: tree.WorkDir, out: Path, jobs: int) -> dict[str, object]:
    times: dict[str, float] = {}
    clock = start = time.monotonic()
    tree.ensure_worktree(inputs.repo, work, inputs.commit)
    head = tree.checkout_variant(work, inputs.commit, inputs.reverts, inputs.series)
    times["checkout_s"] = time.monotonic() - clock
    cc = compiler_argv_value()
    clock = time.monotonic()
    text = configure(inputs, work, head, cc)
    obj = work.obj(inputs.config_label)
    install_config(obj, text)
    times["config_s"] = time.monotonic() - clock
    modules = kconfig.parse_config(text).get("CONFIG_MODULES") == "y"
    targets = [Path(inputs.image_rel).name] + (["modules"] if modules else [])
    log_path = out / "build.log"
    log.info("building %s in %s (log: %s)", inputs.spec.text, obj, log_path)
    clock = time.monotonic()
    full_build = not any(obj.rglob("*.o"))  # a count to estimate the next cold build from
    total = make_progress.estimate(obj, _objects_expected(inputs, work.src, text))
    with make_progress.watching(log_path, f"build {inputs.spec.text}", total) as objects:
        run_make(make_argv(work.src, obj, inputs.arch, cc, targets, jobs), log_path, "make")
    times["make_s"] = time.monotonic() - clock
    release = (
        proc.run(
            make_argv(work.src, obj, inputs.arch, cc, ["-s", "kernelrelease"]),
            timeout=300,
            env=make_env(),
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    clock = time.monotonic()
    modules_rel = _stage(inputs, work, obj, out, cc, release, modules, log_path)
    times["install_s"] = time.monotonic() - clock
    times["total_s"] = time.monotonic() - start
    meta = _metadata(inputs, head, release, modules_rel, times, cc, jobs)
    # what the next cold build of this config estimates its progress from
    return {**meta, "objects": objects(), "full_build": full_build}


def _objects_expected(inputs: Inputs, src: Path, config_text: str) -> int:
    """A full build's object count: the last one of this config, else read off the tree."""
    stored = make_progress.stored_estimate(artifacts_root(), inputs.config_hash, inputs.origin)
    if stored:
        return stored
    srcarch = Path(inputs.image_rel).parts[1]  # arch/x86/boot/bzImage -> x86
    return kbuild_count.count_selected(src, kconfig.parse_config(config_text), srcarch)


def check_image_holds_vmlinux(obj: Path, image: Path) -> None:
    """InfraError unless the image carries the kernel this build linked (x86 gzip images:
    the payload against compressed/vmlinux.bin; others are not checked)."""
    payload = gzip_payload(image)
    linked = obj / "arch/x86/boot/compressed/vmlinux.bin"
    if payload is None or not linked.is_file():
        return
    if hashlib.sha256(payload).digest() != hashlib.sha256(linked.read_bytes()).digest():
        raise InfraError(
            f"{image} does not carry the kernel this build linked (a stale object from the "
            f"compiler cache?): remove {obj} and build again"
        )


def _stage(
    inputs: Inputs,
    work: tree.WorkDir,
    obj: Path,
    out: Path,
    cc: str,
    release: str,
    modules: bool,
    log_path: Path,
) -> str | None:
    check_image_holds_vmlinux(obj, obj / inputs.image_rel)
    shutil.copy2(obj / inputs.image_rel, out / Path(inputs.image_rel).name)
    shutil.copy2(obj / ".config", out / "config")
    shutil.copy2(obj / "System.map", out / "System.map")
    if not modules:
        return None
    argv = make_argv(
        work.src,
        obj,
        inputs.arch,
        cc,
        [f"INSTALL_MOD_PATH={out / 'modules'}", "INSTALL_MOD_STRIP=1", "modules_install"],
    )
    run_make(argv, log_path, "modules_install")
    mod_dir = out / "modules/lib/modules" / release
    for link in ("build", "source"):  # they point into the shared object dir: stale later
        (mod_dir / link).unlink(missing_ok=True)
    return str(mod_dir.relative_to(out))


def _metadata(
    inputs: Inputs,
    head: str,
    release: str,
    modules_rel: str | None,
    times: dict[str, float],
    cc: str,
    jobs: int,
) -> dict[str, object]:
    series = inputs.series
    return {
        "key": inputs.key,
        "spec": inputs.spec.text,
        "origin": inputs.origin,
        "tree_commit": inputs.commit,
        "variant_commit": head,
        "series": series.source if series else None,
        "series_sha256": series.sha256 if series else None,
        "series_patchset_hash": series.patchset_hash if series else None,
        "series_subjects": [p.subject for p in series.patches] if series else [],
        "reverts": list(inputs.reverts),
        "config_hash": inputs.config_hash,
        "fragments": [f.name for f in inputs.fragments],
        "compiler": inputs.compiler,
        "cc": cc,
        "arch": inputs.arch,
        "jobs": jobs,
        "release": release,
        "image": Path(inputs.image_rel).name,
        "modules_dir": modules_rel,
        "durations": {k: round(v, 1) for k, v in times.items()},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
