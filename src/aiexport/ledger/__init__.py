"""The quota ledger: append-only, hash-chained, never overdrawn, on SQLite or PostgreSQL.

    >>> from aiexport.ledger import Ledger          # doctest: +SKIP
    >>> ledger = Ledger("sqlite:///aiexport.db")    # doctest: +SKIP
    >>> ledger.reserve(determination.draws, key="order-17", actor="alice")  # doctest: +SKIP

The ledger knows accounts and amounts, not rules: every limit arrives with the `Draw` that must
respect it (`aiexport.rules.determination.Draw`). `Ledger` is also a `QuotaView`, so the decision
engine decides directly against it; `commit_screen` decides and records a whole file atomically.

Guarantees, and how they are kept:

- *Never overdrawn.* Writers are serialised (SQLite `BEGIN IMMEDIATE`; PostgreSQL one
  transaction-scoped advisory lock) and every cap is checked inside the transaction that appends
  the draw. On PostgreSQL a reservation or commitment is one call of a function in the database
  (`_pgdraw`), so the lock is never held across a round trip.
- *Exact.* Amounts are integer micro-TPP; an amount finer than 0.000001 TPP is refused.
- *Idempotent.* Every write carries a key; a replay returns the first receipt and writes nothing.
- *Tamper-evident.* Each entry hashes its predecessor; `verify` names the first entry edited,
  deleted, inserted or moved, and checks that balances and holds equal what the entries imply.
- *Durable.* An acknowledged write is committed with `synchronous=FULL` (SQLite). On PostgreSQL
  the writer's commit does not wait for its WAL flush (the lock is released at once); a
  synchronous barrier transaction after it waits for a flush covering it before any answer is
  given, so concurrent writers share flushes (`_db`).
"""

from aiexport.ledger._amounts import from_micro, to_micro
from aiexport.ledger._chain import Problem, VerifyReport
from aiexport.ledger._chain import verify as _verify
from aiexport.ledger._db import DEFAULT_URL, ENV_DB, default_db_url
from aiexport.ledger._entries import KINDS, Balance, Entry, EntryKind, Receipt
from aiexport.ledger._export import export_parquet
from aiexport.ledger._ledger import DEFAULT_HOLD, DrawRequest, Ledger
from aiexport.ledger._migrations import MIGRATIONS
from aiexport.ledger._registry import default_valid_until
from aiexport.ledger._screen import LiveView, ScreenCommit, ScreenRun, commit_screen


def verify(ledger: Ledger, expect_head: tuple[int, str] | None = None) -> VerifyReport:
    """Check the hash chain and the materialised balances; see `VerifyReport`."""
    return _verify(ledger, expect_head)


__all__ = [
    "DEFAULT_HOLD",
    "DEFAULT_URL",
    "ENV_DB",
    "KINDS",
    "MIGRATIONS",
    "Balance",
    "DrawRequest",
    "Entry",
    "EntryKind",
    "Ledger",
    "LiveView",
    "Problem",
    "Receipt",
    "ScreenCommit",
    "ScreenRun",
    "VerifyReport",
    "commit_screen",
    "default_db_url",
    "default_valid_until",
    "export_parquet",
    "from_micro",
    "to_micro",
    "verify",
]
