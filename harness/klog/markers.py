"""The agent's console markers (docs/CONTRACT.md): `@@HARNESS {json}` lines."""

from __future__ import annotations

import json
from typing import Any

from harness_guest.protocol import MARKER as PREFIX


def parse_marker(line: str) -> dict[str, Any] | None:
    """The marker's JSON object if `line` carries one, else None.

    Console lines can carry noise before the marker (a carriage return, interleaved kernel
    output), so the marker is searched, not anchored.
    """
    at = line.find(PREFIX)
    if at < 0:
        return None
    try:
        event = json.loads(line[at + len(PREFIX) :].strip())
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "event" in event else None
