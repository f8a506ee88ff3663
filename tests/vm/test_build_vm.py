"""Real builds of Debian's linux-source-6.12 with the lean config, with and without the
stand-in series, both booted under TCG.

All tests share ONE base build (session fixture) in the harness cache; the series variant
and the broken variants rebuild incrementally in the same object directory, so after the
first run these tests take minutes, not the ~10+ minutes of a full build.
"""

import os
import tempfile
from pathlib import Path

import pytest

from harness import proc
from harness.cli.main import main
from harness.errors import UserError
from harness.kernel.build import build, kernel_from_spec, parse_build_spec
from harness.kernel.kconfig import parse_config
from harness.kernel.model import Kernel
from harness.paths import PROJECT_ROOT

DATA = Path(__file__).parents[1] / "data"
BASE = "src:debian:linux-source-6.12"
PROBE = f"{BASE}+series={DATA / 'series' / 'harness-probe.mbox'}"
# Reads the module parameter (patch 1) and the sysfs attribute of a bound loop device
# (patch 2); prints 'missing' for each one the kernel does not have.
GUEST_CMD = (
    "cat /sys/module/loop/parameters/harness_probe 2>/dev/null || echo param-missing; "
    "f=$(mktemp); truncate -s 1M $f; d=$(losetup -f --show $f); "
    "cat /sys/block/${d#/dev/}/loop/harness_probe 2>/dev/null || echo attr-missing; "
    "losetup -d $d; rm -f $f; echo guest-done"
)
BOOT_TIMEOUT_S = 1500.0  # TCG on a loaded 2-core host


@pytest.fixture(scope="session")
def base_kernel() -> Kernel:
    return kernel_from_spec(BASE)


@pytest.fixture(scope="session")
def probe_kernel(base_kernel: Kernel) -> Kernel:
    return kernel_from_spec(PROBE)


def vng_argv(kernel: Kernel, command: str) -> list[str]:
    """virtme-ng booting a built bzImage (everything =y, so no modules) under TCG."""
    assert kernel.image is not None
    return ["vng", "--run", str(kernel.image), "--disable-kvm", "--exec", command]


def boot(kernel: Kernel) -> list[str]:
    env = {**os.environ, "PATH": f"{PROJECT_ROOT / '.venv/bin'}:{os.environ['PATH']}"}
    with tempfile.TemporaryDirectory() as cwd:
        result = proc.run(
            vng_argv(kernel, GUEST_CMD), timeout=BOOT_TIMEOUT_S, env=env, cwd=cwd, check=False
        )
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "guest-done" in lines, result.stdout[-2000:] + result.stderr[-2000:]
    return lines


def test_base_build_is_lean_and_complete(base_kernel: Kernel) -> None:
    assert base_kernel.image is not None and base_kernel.image.stat().st_size > 1_000_000
    assert base_kernel.modules_dir is None  # everything the harness needs is built in
    assert base_kernel.release.startswith("6.12.")
    assert base_kernel.config is not None
    config = parse_config(base_kernel.config.read_text())
    for option in ("BLK_DEV_LOOP", "VIRTIO_CONSOLE", "NET_9P_VIRTIO", "XFS_FS", "BLK_DEV_NVME"):
        assert config.get(f"CONFIG_{option}") == "y", option
    assert config.get("CONFIG_MODULES", "n") == "n"
    prov = base_kernel.provenance
    assert prov["source"] == "build" and len(prov["tree_commit"]) == 40
    assert prov["config_hash"] and prov["compiler"].startswith("gcc")
    assert (base_kernel.image.parent / "metadata.json").is_file()
    assert (base_kernel.image.parent / "build.log").is_file()


def test_same_inputs_hit_the_cache(base_kernel: Kernel) -> None:
    result = build(parse_build_spec(BASE))
    assert result.cache_hit and result.image == base_kernel.image


def test_series_variant_is_incremental(base_kernel: Kernel, probe_kernel: Kernel) -> None:
    assert probe_kernel.image != base_kernel.image
    assert probe_kernel.provenance["tree_commit"] == base_kernel.provenance["tree_commit"]
    assert probe_kernel.provenance["series_sha256"]
    assert probe_kernel.provenance["variant_commit"] != base_kernel.provenance["variant_commit"]
    # Incremental: the series variant compiled loop.c and little else (the benchmark
    # prints the time ratio; the log shows what make actually rebuilt).
    log = build(parse_build_spec(PROBE)).build_log.read_text()
    compiled = [line.split()[-1] for line in log.splitlines() if line.strip().startswith("CC ")]
    assert "drivers/block/loop.o" in compiled
    assert len(compiled) < 15, compiled


def test_guest_sees_the_series_only_in_the_series_variant(
    base_kernel: Kernel, probe_kernel: Kernel
) -> None:
    base_lines = boot(base_kernel)
    assert "param-missing" in base_lines and "attr-missing" in base_lines
    probe_lines = boot(probe_kernel)
    assert "param-missing" not in probe_lines and "attr-missing" not in probe_lines
    assert probe_lines.count("1") >= 2  # parameter and attribute both read 1


def test_series_that_does_not_apply_leaves_a_clean_tree(base_kernel: Kernel) -> None:
    bad = DATA / "series" / "does-not-apply.mbox"
    with pytest.raises(UserError, match=r"0001 loop: raise the default max_part.*loop\.c"):
        kernel_from_spec(f"{BASE}+series={bad}")


def test_dropped_config_option_is_reported(base_kernel: Kernel, tmp_path: Path) -> None:
    fragment = tmp_path / "arm-only.config"
    fragment.write_text("CONFIG_ARM64=y\nCONFIG_XFS_FS=y\n")
    with pytest.raises(UserError, match=r"dropped.*CONFIG_ARM64=y \(got unset\)") as info:
        kernel_from_spec(f"{BASE}+config={fragment}")
    assert "CONFIG_XFS_FS" not in str(info.value)


def test_build_error_exits_2_and_names_the_log(
    base_kernel: Kernel, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = DATA / "series" / "breaks-build.mbox"
    assert main(["build", f"{BASE}+series={broken}"]) == 2
    err = capsys.readouterr().err
    assert "harness_undeclared_symbol" in err
    log_path = Path(err.split("build log: ")[1].split(")")[0])
    assert "drivers/block/loop.c" in log_path.read_text()
