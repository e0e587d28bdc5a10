"""Plausible text for a field, from its name and the payload at hand: a reply reads like a
reply, a summary like a summary, an action like an action, never an echo of the input
with the field's name in front. Deterministic: the same name and payload, the same text."""

from __future__ import annotations

import hashlib
import re
from typing import Any

_LETTER = {"body", "reply", "message", "answer", "response", "content", "letter", "email"}
_SUMMARY = {"summary", "description", "overview", "abstract", "gist", "synopsis"}
_NOTE = {"notes", "note", "comment", "comments", "reason", "rationale", "explanation"}
_TITLE = {"subject", "title", "headline", "topic"}
_NAME = {"name", "customer", "author", "person", "owner", "assignee", "user"}
_ACTIONS = (
    "Confirm the details of {subject} with the customer",
    "Apply the fix for {subject}",
    "Record the outcome on the ticket",
    "Follow up within one business day",
    "Close the ticket once the customer confirms",
)


def phrase(name: str, source: dict[str, Any]) -> str:
    """Text that reads like a value of the field ``name`` for the payload ``source``."""
    words = set(re.findall(r"[a-z]+", name.lower()))
    subject = _first(source, _TITLE) or _sentence(_gist(source), 60)
    item = re.search(r"\[(\d+)\]$", name)
    if item is not None:  # an item of a list: a list of actions, steps, tasks ...
        text = _ACTIONS[int(item.group(1)) % len(_ACTIONS)]
        return text.format(subject=_quoted(subject))
    if words & _LETTER:
        return _letter(source, subject)
    if words & _SUMMARY:
        return f"{subject}: {_sentence(_gist(source), 160)}"
    if words & _NOTE:
        return f"Checked {_quoted(subject)} against the policy; nothing further to add."
    if words & _TITLE:
        return subject
    if "id" in words:
        return f"{name[:3].upper()}-{_digest(name, source)[:8]}"
    if words & _NAME:
        return _first(source, _NAME) or "Sam Taylor"
    if "url" in words or "link" in words:
        return f"https://example.com/{name.replace('_', '-')}/{_digest(name, source)[:8]}"
    return f"{name.replace('_', ' ').capitalize()} for {_quoted(subject)}"


def _letter(source: dict[str, Any], subject: str) -> str:
    who = _first(source, _NAME)
    lines = [f"Hello {who}," if who else "Hello,", ""]
    lines.append(f"Thank you for writing to us about {_quoted(subject)}.")
    summary = _first(source, _SUMMARY)
    if summary:
        said = summary.removeprefix(f"{subject}: ")
        lines.append(f"Here is where things stand: {_sentence(said, 200)}")
    steps = [s for v in source.values() if isinstance(v, list) for s in v if isinstance(s, str)]
    if steps:
        lines += ["", "What we are doing:", *(f"- {s}" for s in steps[:5])]
    lines += ["", "Best regards,", "The support team"]
    return "\n".join(lines)


def _first(source: dict[str, Any], names: set[str]) -> str | None:
    for key, value in source.items():
        if key.lower() in names and isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _gist(source: dict[str, Any]) -> str:
    """The payload's most telling text: its longest string."""
    texts = sorted(strings(source), key=len, reverse=True)
    return texts[0] if texts else "the request"


_GREETING = re.compile(r"^(hello|hi|hey|dear)\b[^,.!\n]*[,.!]\s*", re.IGNORECASE)


def _sentence(text: str, limit: int) -> str:
    """The first sentence of ``text`` after any greeting, at most ``limit`` characters."""
    first = re.split(r"(?<=[.!?])\s", _GREETING.sub("", text.strip()), maxsplit=1)[0]
    first = first[:1].upper() + first[1:]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def _quoted(subject: str) -> str:
    return f"“{subject}”"


def _digest(name: str, source: dict[str, Any]) -> str:
    return hashlib.sha256(f"{name}|{sorted(map(str, strings(source)))}".encode()).hexdigest()


def strings(value: Any) -> list[str]:
    """Every string in a JSON value, depth first."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []
