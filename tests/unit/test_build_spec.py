"""The build-spec grammar (pure parsing) and the make/git argv builders."""

from pathlib import Path

import pytest

from harness.errors import UserError
from harness.kernel.build import is_build_spec
from harness.kernel.buildspec import BuildSpec, parse_build_spec
from harness.kernel.kconfig import merge_argv
from harness.kernel.make import first_errors, kconfig_inputs_changed, make_argv
from harness.kernel.tree import git_argv

DATA = Path(__file__).parents[1] / "data"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("git:/srv/linux@v6.18", BuildSpec("git:/srv/linux@v6.18", "git", "/srv/linux", "v6.18")),
        ("git:/srv/linux", BuildSpec("git:/srv/linux", "git", "/srv/linux", "HEAD")),
        (
            "git:/srv/linux@v6.18+series=/p/loop-nowait.mbox",
            BuildSpec(
                "git:/srv/linux@v6.18+series=/p/loop-nowait.mbox",
                "git",
                "/srv/linux",
                "v6.18",
                series="/p/loop-nowait.mbox",
            ),
        ),
        (
            "git:/srv/linux@v6.18+series=20251015110735.1361261-1-ming.lei@redhat.com",
            BuildSpec(
                "git:/srv/linux@v6.18+series=20251015110735.1361261-1-ming.lei@redhat.com",
                "git",
                "/srv/linux",
                "v6.18",
                series="20251015110735.1361261-1-ming.lei@redhat.com",
            ),
        ),
        (
            "git:/srv/linux@HEAD+revert=abc123,def456+config=debug",
            BuildSpec(
                "git:/srv/linux@HEAD+revert=abc123,def456+config=debug",
                "git",
                "/srv/linux",
                "HEAD",
                reverts=("abc123", "def456"),
                configs=("debug",),
            ),
        ),
        (
            "src:debian:linux-source-6.12",
            BuildSpec("src:debian:linux-source-6.12", "debian", "linux-source-6.12"),
        ),
        (
            "src:/t/linux+series=/p/dir",
            BuildSpec("src:/t/linux+series=/p/dir", "dir", "/t/linux", series="/p/dir"),
        ),
    ],
)
def test_parse_build_spec(text: str, expected: BuildSpec) -> None:
    assert is_build_spec(text)
    assert parse_build_spec(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "git:@v6.18",
        "git:/srv/linux@",
        "src:",
        "src:debian:",
        "git:/l+series=",
        "git:/l+series=a+series=b",
        "git:/l+config=",
        "debian:6.12",
    ],
)
def test_malformed_specs_are_user_errors(text: str) -> None:
    with pytest.raises(UserError):
        parse_build_spec(text)


def test_other_kernel_specs_are_not_build_specs() -> None:
    for text in ("debian:6.12", "image:/boot/vmlinuz", "host", "/srv/linux"):
        assert not is_build_spec(text)


def test_with_configs_appends_once() -> None:
    spec = parse_build_spec("git:/l@v1+config=debug")
    assert spec.with_configs(("debug", "perf")).configs == ("debug", "perf")


def test_make_argv_keeps_cc_with_space_as_one_argument() -> None:
    argv = make_argv(Path("/s"), Path("/o"), "x86_64", "ccache gcc", ["bzImage"], jobs=2)
    assert argv == ["make", "-C", "/s", "O=/o", "ARCH=x86_64", "CC=ccache gcc", "-j2", "bzImage"]


def test_merge_argv() -> None:
    argv = merge_argv(Path("/s"), Path("/o"), [Path("/f/00-base.config")])
    assert argv == [
        "/s/scripts/kconfig/merge_config.sh",
        "-m",
        "-O",
        "/o",
        "/o/.config",
        "/f/00-base.config",
    ]


def test_git_argv_sets_identity_and_no_signing() -> None:
    argv = git_argv(Path("/r"), "am", "-3")
    assert argv[0] == "git" and argv[-4:-2] == ["-C", "/r"]
    assert "core.hooksPath=/dev/null" in argv and "commit.gpgsign=false" in argv
    assert "user.email=harness@localhost" in argv
    assert argv[-2:] == ["am", "-3"]


def test_kconfig_inputs_changed() -> None:
    assert not kconfig_inputs_changed(["drivers/block/loop.c", "include/linux/blkdev.h"])
    assert kconfig_inputs_changed(["drivers/block/Kconfig"])
    assert kconfig_inputs_changed(["scripts/Kconfig.include"])
    assert kconfig_inputs_changed(["arch/x86/configs/tiny.config"])


def test_first_errors_on_recorded_gcc_output() -> None:
    # gcc 12 with the kernel's flags on loop.c + tests/data/series/breaks-build.mbox
    log = (DATA / "build" / "loop-undeclared-gcc.log").read_text()
    log += "make[4]: *** [scripts/Makefile.build:229: drivers/block/loop.o] Error 1\n"
    errors = first_errors(log)
    assert len(errors) == 2
    assert "loop.c:140:29: error:" in errors[0] and "harness_undeclared_symbol" in errors[0]
    assert errors[1].startswith("make[4]: ***")
    assert first_errors("  CC      init/main.o\n") == []


def test_missing_tree_is_a_user_error(tmp_path: Path) -> None:
    from harness.kernel.build import kernel_from_spec

    with pytest.raises(UserError, match="does not exist"):
        kernel_from_spec(f"git:{tmp_path / 'nonexistent'}@v6.18")
