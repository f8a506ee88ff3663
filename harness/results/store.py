"""results.json: every RunResult of an invocation, saved atomically and read back.

Shape: {"version": 1, "runs": [RunResult.to_dict(), ...], ...extra}. `extra` carries what
the caller wants alongside (the command line, the harness version, a comparison).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.results.files import atomic_write_text
from harness.results.model import RunResult

log = logging.getLogger(__name__)

VERSION = 1


def results_document(runs: Sequence[RunResult], extra: dict[str, Any] | None = None) -> dict:
    """The results.json document for `runs`; `extra` keys may not shadow version/runs."""
    extra = dict(extra or {})
    clash = {"version", "runs"} & extra.keys()
    if clash:
        raise ValueError(f"extra may not set {sorted(clash)}: they are results.json's own keys")
    return {"version": VERSION, "runs": [run.to_dict() for run in runs], **extra}


def save_runs(path: Path, runs: Sequence[RunResult], extra: dict[str, Any] | None = None) -> None:
    """Write results.json atomically: a temporary file in the same directory, then rename.

    A crash mid-write leaves the previous file (or none), never a truncated one.
    """
    text = json.dumps(results_document(runs, extra), indent=2, sort_keys=False) + "\n"
    atomic_write_text(path, text)
    log.debug("wrote %d run(s) to %s", len(runs), path)


def load_runs(path: Path) -> list[RunResult]:
    """Read the runs back from a results.json; UserError naming the file if it is not one."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read results file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); pass a results.json") from exc
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise UserError(f"{path} has no 'runs' list; pass a results.json written by harness")
    if data.get("version") != VERSION:
        raise UserError(
            f"{path} is results.json version {data.get('version')!r}; this harness reads "
            f"version {VERSION}"
        )
    try:
        return [RunResult.from_dict(run) for run in data["runs"]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: malformed run record ({exc!r}); the file is damaged") from exc
