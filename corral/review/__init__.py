"""Human review: where work stops for a person, how it asks, and how a decision
(approve, reject with a reason, or a validated edit) is taken back into the run."""

from corral.review._decision import decision, review_schema
from corral.review._points import ask_person, review_reason

__all__ = ["ask_person", "decision", "review_reason", "review_schema"]
