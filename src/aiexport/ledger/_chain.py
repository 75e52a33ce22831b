"""Verify the hash chain and prove the materialised state equals what the entries imply.

Each entry stores a hash over itself and the hash of the entry before it (`_entries.entry_hash`),
and the first 8 bytes of that previous hash (`link`); `ledger_chain_head` stores the last position
and hash. Walking the entries in order, the first link that fails is classified:

- **edited**: the entry's fields no longer hash to its stored hash, or its stored hash was
  recomputed so the next entry's link no longer matches;
- **deleted**: a position is missing (or the head points past the last entry);
- **inserted**: an entry that belongs to no link of the chain;
- **reordered**: the entry hashes correctly only at another position.

The chain makes silent edits evident; it cannot stop someone who rewrites every later entry and
the head. Against that, publish `Ledger.head()` elsewhere and pass it back as `expect_head`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from aiexport.ledger import _tables as t
from aiexport.ledger._entries import GENESIS, EntryRow, deltas, entry_hash


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing found wrong, with the entry position it concerns."""

    kind: str
    seq: int | None
    message: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of `Ledger.verify`: `ok`, or the problems found (chain first)."""

    entries: int
    head_seq: int
    head_hash: str
    problems: tuple[Problem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def _rehash(row: EntryRow, seq: int, prev: str) -> str:
    return entry_hash(row._replace(seq=seq), prev)


def _hash_at(ledger: Any, seq: int) -> str | None:
    if seq == 0:
        return GENESIS
    with ledger.db.read() as conn:
        found = conn.scalar(select(t.entries.c.hash).where(t.entries.c.seq == seq))
    return None if found is None else bytes(found).hex()


def _seqs_with_prefix(ledger: Any, link: str) -> list[int]:
    """Positions of the entries whose hash starts with `link` (0 for the genesis hash)."""
    out = [0] if GENESIS.startswith(link) else []
    e = t.entries.c
    with ledger.db.read() as conn:
        q = select(e.seq).where(func.substr(e.hash, 1, 8) == bytes.fromhex(link)).order_by(e.seq)
        out += [int(s) for s in conn.scalars(q)]
    return out


def _referenced(ledger: Any, digest: str) -> bool:
    e = t.entries.c
    with ledger.db.read() as conn:
        q = select(e.seq).where(e.link == bytes.fromhex(digest[:16])).limit(1)
        head = conn.scalar(select(t.chain_head.c.hash))
        return conn.scalar(q) is not None or head == digest


def _classify(ledger: Any, row: EntryRow, expected_seq: int, prev: str) -> Problem:
    seq = int(row.seq)
    linked = row.link == prev[:16]
    if seq > expected_seq and not linked:
        missing = expected_seq if seq == expected_seq + 1 else f"{expected_seq}–{seq - 1}"
        return Problem("deleted", expected_seq, f"entry #{missing} was deleted")
    # Where was this entry written? After an entry whose hash starts with its link.
    linked_to = _seqs_with_prefix(ledger, row.link)
    for before in linked_to:
        moved_from = before + 1
        if moved_from == seq:
            continue
        written_after = _hash_at(ledger, before)
        if written_after is None or _rehash(row, moved_from, written_after) != row.hash:
            continue
        occupant = _hash_at(ledger, moved_from)
        if occupant is not None and not _referenced(ledger, occupant):
            return Problem(
                "inserted",
                moved_from,
                f"entry #{moved_from} was inserted: entry #{seq} was written as #{moved_from}",
            )
        return Problem("reordered", seq, f"entry #{seq} was moved: it was written as #{moved_from}")
    if linked or entry_hash(row, prev) == row.hash:
        return Problem("edited", seq, f"entry #{seq} was edited after it was recorded")
    # The entry does not follow the entry before it, and hashes nowhere else.
    earlier = [s for s in linked_to if s < seq]
    if not linked_to:
        return Problem(
            "edited",
            seq - 1,
            f"entry #{seq - 1} was edited and re-hashed: entry #{seq} no longer links to it",
        )
    if earlier and earlier[-1] < seq - 1:
        return Problem(
            "inserted",
            earlier[-1] + 1,
            f"entry #{earlier[-1] + 1} was inserted: entry #{seq} links to #{earlier[-1]}",
        )
    return Problem(
        "reordered", seq, f"entry #{seq} was moved: it links to #{linked_to[0]}, written after it"
    )


def verify(ledger: Any, expect_head: tuple[int, str] | None = None) -> VerifyReport:
    """Walk every entry once; see the module docstring for what is checked."""
    committed: dict[str, int] = defaultdict(int)
    reserved: dict[str, int] = defaultdict(int)
    open_holds: dict[int, tuple[str, int, str]] = {}
    anchors: dict[int, str] = {}
    expected_seq, prev = 1, GENESIS
    problems: list[Problem] = []
    count = 0
    for row in ledger.iter_rows():
        if row.seq != expected_seq or row.link != prev[:16] or entry_hash(row, prev) != row.hash:
            problems.append(_classify(ledger, row, expected_seq, prev))
            break
        count += 1
        dc, dr = deltas(row.kind, row.amount, row.ref_seq)
        committed[row.account] += dc
        reserved[row.account] += dr
        if row.kind == "reserve" and row.expires_at is not None:
            open_holds[row.seq] = (row.account, row.amount, row.expires_at)
        elif row.kind in ("commit", "release") and row.ref_seq is not None:
            open_holds.pop(row.ref_seq, None)
        if expect_head is not None and row.seq == expect_head[0]:
            anchors[row.seq] = row.hash
        expected_seq, prev = row.seq + 1, row.hash
    head_seq, head_hash = ledger.head()
    last = expected_seq - 1
    if not problems:
        if head_seq > last:
            problems.append(
                Problem("deleted", last + 1, f"entry #{last + 1} was deleted (head is #{head_seq})")
            )
        elif head_seq < last:
            problems.append(
                Problem(
                    "inserted", head_seq + 1, f"entry #{head_seq + 1} was inserted after the head"
                )
            )
        elif head_hash != prev:
            problems.append(Problem("edited", last, f"entry #{last} was edited and re-hashed"))
    if not problems and expect_head is not None:
        seq, digest = expect_head
        if anchors.get(seq) != digest:
            problems.append(
                Problem("edited", seq, f"the chain no longer has hash {digest[:12]}… at #{seq}")
            )
    if not problems:
        problems.extend(_check_state(ledger, committed, reserved, open_holds))
    return VerifyReport(count, head_seq, head_hash, tuple(problems))


def _check_state(
    ledger: Any,
    committed: dict[str, int],
    reserved: dict[str, int],
    open_holds: dict[int, tuple[str, int, str]],
) -> list[Problem]:
    problems: list[Problem] = []
    with ledger.db.read() as conn:
        stored = {r.account: r for r in conn.execute(select(t.balances))}
        holds = {r.seq: (r.account, r.amount, r.expires_at) for r in conn.execute(select(t.holds))}
    for account in sorted(set(stored) | set(committed)):
        r = stored.get(account)
        got = (0, 0) if r is None else (int(r.committed), int(r.reserved))
        want = (committed.get(account, 0), reserved.get(account, 0))
        if got != want:
            problems.append(
                Problem(
                    "balance",
                    None if r is None else int(r.last_seq),
                    f"balance of {account} is {got} (committed, reserved micro-TPP) but the "
                    f"entries sum to {want}",
                )
            )
    if holds != open_holds:
        diff = sorted(set(holds) ^ set(open_holds))
        problems.append(
            Problem(
                "hold", diff[0] if diff else None, f"open holds disagree with entries at {diff[:5]}"
            )
        )
    return problems
