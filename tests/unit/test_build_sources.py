"""Source trees without git (plain directories, Debian packages) resolved into inputs."""

from pathlib import Path

import pytest

from harness.errors import UserError
from harness.kernel.build import build_inputs
from harness.kernel.buildspec import parse_build_spec
from harness.kernel.source import candidate_version, debian_source, directory_source
from tests.conftest import synthetic_loop_c

DATA = Path(__file__).parents[1] / "data" / "series"


@pytest.fixture
def plain_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "linux"
    (src / "drivers/block").mkdir(parents=True)
    (src / "Makefile").write_text("all:\n")
    (src / "Kconfig").write_text("\n")
    (src / "drivers/block/loop.c").write_text(synthetic_loop_c("harness-probe"))
    return src


def test_plain_directory_is_snapshotted_without_touching_it(plain_tree: Path) -> None:
    snap = directory_source(plain_tree)
    again = directory_source(plain_tree)
    assert snap.commit == again.commit and len(snap.commit) == 40
    assert not (plain_tree / ".git").exists()
    (plain_tree / "drivers/block/loop.c").write_text("changed\n")
    assert directory_source(plain_tree).commit != snap.commit


def test_resolve_plain_directory_with_series(plain_tree: Path) -> None:
    inputs = build_inputs(parse_build_spec(f"src:{plain_tree}+series={DATA / 'harness-probe'}"))
    assert inputs.series is not None and len(inputs.series.patches) == 2
    assert [f.name for f in inputs.fragments] == ["base"]
    assert inputs.config_label == "base"
    other = build_inputs(parse_build_spec(f"src:{plain_tree}+config=debug"))
    assert other.key != inputs.key and other.config_label == "base+debug"


def test_directory_that_is_not_a_kernel_tree(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a kernel source tree"):
        directory_source(tmp_path)


def test_unknown_debian_package_is_a_user_error() -> None:
    with pytest.raises(UserError, match="apt-cache search linux-source"):
        debian_source("linux-source-0.01")
    with pytest.raises(UserError, match="bad Debian package name"):
        debian_source("../etc")


def test_candidate_version() -> None:
    text = "Package: linux-source-6.12\nVersion: 6.12.117-1~deb12u1\nArchitecture: all\n"
    assert candidate_version(text) == "6.12.117-1~deb12u1"
    assert candidate_version("") is None
