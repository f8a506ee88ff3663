"""The console marker protocol, defined once for the guest and the host (docs/CONTRACT.md):
one `@@HARNESS {json}` line per event, the only free text the host reads from the guest
besides the kernel's own log."""

from __future__ import annotations

import json
import sys

MARKER = "@@HARNESS "


def marker_line(event: dict) -> str:
    """The console line that carries `event` (keys sorted: the same event, the same line)."""
    return MARKER + json.dumps(event, sort_keys=True)


def emit(event: dict) -> None:
    """Print one marker line; flushed so the host sees it at once."""
    sys.stdout.write(marker_line(event) + "\n")
    sys.stdout.flush()
