"""One type for everything the paper checks against the thesis: the findings tables per section and
the claims table. A verdict is True (reproduced), False (not reproduced) or None (not comparable at this
profile: the check rests on a setting the profile does not run, such as training at epsilon 0.3)."""
from __future__ import annotations

from dataclasses import dataclass

VERDICTS = {True: "reproduced", False: "not reproduced", None: "not comparable"}


@dataclass(frozen=True)
class Check:
    section: str          # the thesis's section ("5.1"); "" in a section's own findings table
    statement: str        # the finding or claim, with the rule that decides it
    thesis: str           # the thesis's figure ("" where the finding quotes none)
    ours: str             # this run's figure
    verdict: bool | None


def finding(statement: str, verdict: bool | None, ours: str) -> Check:
    """A finding of a section's findings table (no section column, no thesis figure)."""
    return Check("", statement, "", ours, verdict)


def tally(checks: list[Check]) -> str:
    """"n of m": the checks that hold, of those comparable at this profile."""
    comparable = [c for c in checks if c.verdict is not None]
    return f"{sum(c.verdict for c in comparable)} of {len(comparable)}"
