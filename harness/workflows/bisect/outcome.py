"""What one bisect step (or one run of it) came out as: the words git bisect speaks, plus
the harness's own two for a run that could not say (other: a kernel failure that is not
the symptom; infra: the run could not tell)."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"
    OTHER = "other"
    INFRA = "infra"


GOOD, BAD, SKIP, OTHER, INFRA = (
    Outcome.GOOD,
    Outcome.BAD,
    Outcome.SKIP,
    Outcome.OTHER,
    Outcome.INFRA,
)
