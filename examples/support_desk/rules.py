"""Deterministic rules of the support desk: plain Python beside the model-driven agents."""

from __future__ import annotations

import hashlib
from typing import Any

SLA_HOURS = {"free": 72, "pro": 24, "enterprise": 4}


def intake(ticket: Any) -> dict[str, Any]:
    """Normalise a ticket into a case with an id and an SLA from the customer's plan."""
    digest = hashlib.sha256(f"{ticket.customer}|{ticket.subject}|{ticket.body}".encode())
    plan = ticket.plan or "free"
    return {
        "ticket_id": f"T-{digest.hexdigest()[:8]}",
        "customer": ticket.customer.strip(),
        "subject": " ".join(ticket.subject.split()),
        "body": ticket.body.strip(),
        "plan": plan,
        "sla_hours": SLA_HOURS[plan],
    }


def refund_policy(resolution: Any) -> dict[str, Any]:
    """Cap a proposed refund at the policy limit; say so in the actions."""
    limit = 100.0
    data = resolution.model_dump()
    asked = data["refund_usd"]
    if asked > limit:
        note = f"refund capped at {limit:.2f} USD by policy (asked {asked:.2f})"
        data["actions"] = [*data["actions"][:4], note]
        data["refund_usd"] = limit
    return data
