"""Resolving a kernel spec is a stage of its own, before any VM starts: its failure is an
outcome a workflow can record (bisect: skip; backport: a table cell), not an exception in
the middle of a run. Malformed specs still raise UserError: that is the user's to fix."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum

from harness.errors import BuildError, FetchError, SeriesConflict
from harness.kernel import spec as kernel_spec
from harness.kernel.model import Kernel

log = logging.getLogger(__name__)


class ResolutionStatus(StrEnum):
    """What became of a kernel spec."""

    OK = "ok"
    DOES_NOT_APPLY = "does-not-apply"
    BUILD_FAILED = "build-failed"
    FETCH_FAILED = "fetch-failed"


OK, DOES_NOT_APPLY, BUILD_FAILED, FETCH_FAILED = tuple(ResolutionStatus)


@dataclass(frozen=True)
class Resolution:
    """What became of a kernel spec: a bootable Kernel, or why there is none."""

    spec: str
    status: ResolutionStatus
    kernel: Kernel | None = None
    message: str = ""
    log_path: str | None = None
    duration_s: float = 0.0
    failure: object | None = None  # the ApplyFailure of a series that does not apply

    @property
    def ok(self) -> bool:
        return self.status == OK


def resolve_kernel(text: str) -> Resolution:
    """Fetch or build `text`; never raises for a conflict, a failed build or a fetch."""
    t0 = time.monotonic()
    try:
        kernel = kernel_spec.kernel_for_spec(text)
    except SeriesConflict as exc:
        return Resolution(
            text,
            DOES_NOT_APPLY,
            message=str(exc),
            failure=exc.failure,
            duration_s=time.monotonic() - t0,
        )
    except BuildError as exc:
        return Resolution(
            text,
            BUILD_FAILED,
            message=str(exc),
            log_path=exc.log_path,
            duration_s=time.monotonic() - t0,
        )
    except FetchError as exc:
        return Resolution(text, FETCH_FAILED, message=str(exc), duration_s=time.monotonic() - t0)
    return Resolution(text, OK, kernel=kernel, duration_s=time.monotonic() - t0)
