"""Make a plan's target ready for I/O: the simple kinds are guest/targets.py's, the stacked
ones (nested loops, loop over dm stacks) guest/stacked.py's, which builds on the former."""

from __future__ import annotations

import contextlib

from guest import stacked, targets
from guest.api import Context, Prepared

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def target(spec: dict[str, Any], ctx: Context, stack: contextlib.ExitStack) -> Prepared:
    """The target described by `spec` (docs/CONTRACT.md), its teardown registered on `stack`."""
    kind = spec.get("kind")
    if kind not in ("nested-loop", "stacked"):
        return targets.prepare_simple(spec, ctx, stack)
    name = spec.get("name", str(kind))
    size_mb = int(spec.get("size_mb", 256))
    if kind == "stacked":
        return stacked.prepare_dm_stack(spec, ctx, stack, name, size_mb)
    return stacked.prepare_nested(spec, ctx, stack, name, size_mb)
