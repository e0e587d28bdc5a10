"""Telling a Postgres URL from a file path (no driver needed to ask)."""

from __future__ import annotations

import re
from pathlib import Path

_URL = re.compile(r"^(postgres(?:ql)?):/{1,2}(?=[^/]|$)")


def postgres_url(where: str | Path) -> str | None:
    """``where`` as a Postgres URL if it names one (``postgresql://`` or ``postgres://``;
    a ``Path`` that folded the ``//`` is read back), else ``None``."""
    text = str(where)
    match = _URL.match(text)
    if match is None:
        return None
    return f"{match.group(1)}://{text[match.end() :]}"


def shown(url: str) -> str:
    """``url`` with its password hidden, for messages: in its user part and in a
    ``password=`` parameter."""
    url = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", url, flags=re.IGNORECASE)


def workspace_label(where: str | Path) -> str:
    """``where`` for messages: a file path as is, a Postgres URL with its password hidden."""
    url = postgres_url(where)
    return str(where) if url is None else shown(url)
