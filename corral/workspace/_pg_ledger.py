"""The usage ledger on Postgres: the SQLite ledger's rules, made atomic across machines.

Every change to the running totals (reserve, record, settle, release, grants) holds
one transaction-scoped advisory lock, so a reservation's checks and its write see
every other process's reservations: processes on many machines sharing a daily budget
cannot together pass it by more than one call's difference between estimate and actual.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar

from corral.workspace._ledger import UsageLedger
from corral.workspace._pg_db import LEDGER_LOCK, PgPool
from corral.workspace._replies import PgReplies, Replies


@dataclass
class PgLedger(UsageLedger):
    """The ledger of a Postgres workspace (``UsageLedger``'s logic); each change to the
    running totals holds the ledger's advisory lock."""

    pool: PgPool
    mark: ClassVar[str] = "%s"  # psycopg's placeholder
    replies: ClassVar[type[Replies]] = PgReplies

    def locked(self) -> AbstractContextManager[Any]:
        return self.pool.write(LEDGER_LOCK)
