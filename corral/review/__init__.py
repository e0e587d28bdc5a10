"""Human review: where work stops for a person, how it asks, and how a decision
(approve, reject with a reason, or a validated edit) is taken back into the run."""

from corral.review._deadline import DEADLINE, deadline_decision, iso, overdue, stamp
from corral.review._decision import decision, review_schema
from corral.review._points import ask_person, review_reason

__all__ = [
    "DEADLINE",
    "ask_person",
    "deadline_decision",
    "decision",
    "iso",
    "overdue",
    "review_reason",
    "review_schema",
    "stamp",
]
