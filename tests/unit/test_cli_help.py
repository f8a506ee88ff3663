"""Every command's --help prints its usage and exits 0, found from the parser itself."""

from __future__ import annotations

import argparse

import pytest

from harness.cli.main import build_parser, main


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every (sub)command path of `parser`, nested ones (export kcidb) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _command_paths(sub, (*prefix, name))


PATHS = sorted(_command_paths(build_parser()))


def test_the_walk_finds_the_commands():
    names = {path[0] for path in PATHS}
    assert {"run", "ab", "bisect", "backport", "export"} <= names
    assert ("export", "kcidb") in PATHS


@pytest.mark.parametrize("path", [(), *PATHS], ids=lambda p: " ".join(p) or "harness")
def test_help_exits_zero_with_usage(path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*path, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: harness" + "".join(f" {p}" for p in path))
    assert len(out.splitlines()) > 3


def test_top_level_help_speaks_to_users(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "kernel" in out and "harness run" in out
    assert "only place that prints" not in out
