"""The whole build path (git worktree, series, config, make, cache) on a stand-in tree.

tests/data/faketree answers Linux's make targets in milliseconds with real make
dependency tracking, so these tests exercise the real git, make and cache code; the
real kernel build of the same path is in test_build_slow.py.
"""

import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import BuildError, UserError
from harness.kernel.build import build, kernel_from_spec, parse_build_spec
from tests.conftest import synthetic_loop_c

DATA = Path(__file__).parents[1] / "data"
SERIES = DATA / "series"


@pytest.fixture
def fake_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    repo = tmp_path / "linux"
    shutil.copytree(DATA / "faketree", repo)
    (repo / "drivers/block").mkdir(parents=True, exist_ok=True)  # git keeps no empty dirs
    loop_c = synthetic_loop_c("harness-probe", "breaks-build")
    (repo / "drivers/block/loop.c").write_text(loop_c)
    for argv in (["init", "-q"], ["add", "."], ["commit", "-qm", "v6.12"], ["tag", "v6.12"]):
        subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *argv],
            check=True,
            capture_output=True,
        )
    return repo


def compiled(result_log: Path) -> list[str]:
    return [
        line.split()[-1]
        for line in result_log.read_text().splitlines()
        if line.strip().startswith("CC ")
    ]


def test_base_then_series_rebuilds_only_the_patched_file(fake_repo: Path) -> None:
    base = build(parse_build_spec(f"git:{fake_repo}@v6.12"), jobs=2)
    assert not base.cache_hit
    assert sorted(compiled(base.build_log)) == ["drivers/block/loop.o", "init/main.o"]
    assert base.release == "6.12.0-faketree" and base.modules_dir is None
    assert b"harness_probe" not in base.image.read_bytes()

    probe = build(parse_build_spec(f"git:{fake_repo}@v6.12+series={SERIES / 'harness-probe'}"))
    assert compiled(probe.build_log) == ["drivers/block/loop.o"]
    assert b"harness_probe" in probe.image.read_bytes()
    assert probe.key != base.key and probe.directory != base.directory
    assert probe.metadata["tree_commit"] == base.metadata["tree_commit"]
    assert probe.metadata["series_subjects"] == [
        "[PATCH 1/2] loop: add harness_probe module parameter",
        "[PATCH 2/2] loop: show harness_probe in sysfs",
    ]
    # the user's checkout never saw the series
    assert "harness_probe" not in (fake_repo / "drivers/block/loop.c").read_text()


def test_same_inputs_are_a_cache_hit_without_make(fake_repo: Path) -> None:
    spec = parse_build_spec(f"git:{fake_repo}@v6.12")
    first = build(spec)
    shutil.rmtree(first.directory.parent.parent / "work")  # make cannot run any more
    again = build(spec)
    assert again.cache_hit and again.image == first.image and again.key == first.key


def test_config_is_reused_when_kconfig_inputs_did_not_change(
    fake_repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build(parse_build_spec(f"git:{fake_repo}@v6.12"))
    with caplog.at_level(logging.INFO):
        build(parse_build_spec(f"git:{fake_repo}@v6.12+series={SERIES / 'harness-probe.mbox'}"))
    assert "config unchanged" in caplog.text


def test_kernel_from_spec_provenance(fake_repo: Path) -> None:
    kernel = kernel_from_spec(f"git:{fake_repo}@v6.12+config=perf")
    prov = kernel.provenance
    assert kernel.image is not None and kernel.image.name == "bzImage"
    assert prov["source"] == "build" and prov["fragments"] == "base,perf"
    assert len(prov["tree_commit"]) == 40 and prov["compiler"].startswith("gcc")
    assert kernel.config is not None and "CONFIG_PREEMPT_VOLUNTARY=y" in kernel.config.read_text()


def test_build_error_names_the_log_and_the_next_build_still_works(fake_repo: Path) -> None:
    with pytest.raises(BuildError) as info:
        build(parse_build_spec(f"git:{fake_repo}+series={SERIES / 'breaks-build.mbox'}"))
    assert "harness_undeclared_symbol" in str(info.value)
    assert info.value.log_path and Path(info.value.log_path).is_file()
    assert not build(parse_build_spec(f"git:{fake_repo}@v6.12")).cache_hit


def test_dropped_option_lists_it(fake_repo: Path, tmp_path: Path) -> None:
    fragment = tmp_path / "arm.config"
    fragment.write_text("CONFIG_ARM64_4K_PAGES=y\nCONFIG_XFS_FS=y\n")
    with pytest.raises(UserError, match=r"CONFIG_ARM64_4K_PAGES=y \(got unset\)") as info:
        build(parse_build_spec(f"git:{fake_repo}+config={fragment}"))
    assert "CONFIG_XFS_FS" not in str(info.value)


def test_series_that_does_not_apply(fake_repo: Path) -> None:
    with pytest.raises(UserError, match=r"0001 loop: raise.*drivers/block/loop\.c at hunk #1"):
        build(parse_build_spec(f"git:{fake_repo}+series={SERIES / 'does-not-apply.mbox'}"))


def test_cli_prints_paths_and_exit_codes(
    fake_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", f"git:{fake_repo}@v6.12", "--config", "debug", "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "key:" in out and "bzImage" in out and "metadata.json" in out
    assert main(["build", f"git:{fake_repo}@v6.12", "--config", "debug"]) == 0
    assert "(cache hit)" in capsys.readouterr().out
    broken = f"git:{fake_repo}+series={SERIES / 'breaks-build.mbox'}"
    assert main(["build", broken]) == 2
    assert "build log:" in capsys.readouterr().err
    assert main(["build", f"git:{fake_repo}@nosuchref"]) == 2
    assert "ref 'nosuchref' not found" in capsys.readouterr().err
