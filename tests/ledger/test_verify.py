"""Each kind of tampering is detected and named, on every backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Connection, create_engine, text

from aiexport.ledger import Ledger, verify
from aiexport.ledger import _tables as t
from aiexport.ledger._entries import GENESIS, KIND_CODE, EntryRow, entry_hash, entry_row

from .conftest import draw


def _fill(ledger: Ledger) -> None:
    for i in range(1, 7):
        ledger.commit([draw(f"acct/{i % 2}", i, 1000)], key=f"k{i}", actor="t", order_id=f"o{i}")


def _sql(url: str, fn: Callable[[Connection], None]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        fn(conn)
    engine.dispose()


def _row(conn: Connection, seq: int) -> EntryRow:
    """Entry `seq` with its texts, after the hash of the entry stored before it."""
    found = conn.execute(t.entry_select(with_prev=True).where(t.entries.c.seq == seq)).one()
    return entry_row(found, GENESIS if found.prev is None else bytes(found.prev).hex())


def _name_id(conn: Connection, name: str) -> int:
    found = conn.scalar(text("SELECT id FROM ledger_names WHERE name = :n"), {"n": name})
    if found is None:
        found = conn.scalar(text("SELECT coalesce(max(id), 0) + 1 FROM ledger_names"))
        conn.execute(
            text("INSERT INTO ledger_names (id, name) VALUES (:i, :n)"), {"i": found, "n": name}
        )
    return int(found)


def _put(conn: Connection, row: EntryRow, *, insert: bool = False) -> None:
    """Write `row` (its texts, link and hash as given) at its `seq`, as a forger with SQL would."""
    old = conn.execute(
        text("SELECT txn, kind FROM ledger_entries WHERE seq = :s"), {"s": row.seq}
    ).first()
    values = {
        "seq": row.seq,
        "account": _name_id(conn, str(row.account)),
        "amount": row.amount,
        "order_id": row.order_id,
        "actor": _name_id(conn, str(row.actor)),
        "citation": _name_id(conn, str(row.citation)),
        "expires_at": row.expires_at,
        "ref_seq": row.ref_seq,
        "idem_key": row.idem_key,
        "link": bytes.fromhex(row.prev_hash[:16]),
        "hash": bytes.fromhex(row.hash),
    }
    if insert:
        txn = conn.scalar(text("SELECT id FROM ledger_txns WHERE txn = :t"), {"t": row.txn})
        values.update(txn=txn, kind=KIND_CODE[row.kind])
        cols = ", ".join(values)
        conn.execute(
            text(
                f"INSERT INTO ledger_entries ({cols}) VALUES ({', '.join(':' + c for c in values)})"
            ),
            values,
        )
        return
    assert old is not None
    sets = ", ".join(f"{c} = :{c}" for c in values if c != "seq")
    conn.execute(text(f"UPDATE ledger_entries SET {sets} WHERE seq = :seq"), values)


def _edit_amount(conn: Connection) -> None:
    conn.execute(text("UPDATE ledger_entries SET amount = amount + 1 WHERE seq = 3"))


def _edit_and_rehash(conn: Connection) -> None:
    row = _row(conn, 3)._replace(citation="forged")
    _put(conn, row._replace(hash=entry_hash(row, row.prev_hash)))


def _delete_middle(conn: Connection) -> None:
    conn.execute(text("DELETE FROM ledger_entries WHERE seq = 4"))


def _delete_last(conn: Connection) -> None:
    conn.execute(text("DELETE FROM ledger_entries WHERE seq = 6"))


def _insert_after_head(conn: Connection) -> None:
    last = _row(conn, 6)
    row = last._replace(seq=7, idem_key="forged#0", prev_hash=last.hash)
    _put(conn, row._replace(hash=entry_hash(row, row.prev_hash)), insert=True)


def _insert_middle(conn: Connection) -> None:
    # Make room by shifting 4..6 up one, then put a forged, self-consistent entry at #4.
    for s in (6, 5, 4):
        conn.execute(text("UPDATE ledger_entries SET seq = seq + 1 WHERE seq = :s"), {"s": s})
    third = _row(conn, 3)
    row = third._replace(seq=4, idem_key="forged#0", prev_hash=third.hash)
    _put(conn, row._replace(hash=entry_hash(row, row.prev_hash)), insert=True)


def _swap(conn: Connection) -> None:
    conn.execute(text("UPDATE ledger_entries SET seq = -1 WHERE seq = 2"))
    conn.execute(text("UPDATE ledger_entries SET seq = 2 WHERE seq = 5"))
    conn.execute(text("UPDATE ledger_entries SET seq = 5 WHERE seq = -1"))


def _edit_balance(conn: Connection) -> None:
    conn.execute(text("UPDATE ledger_balances SET committed = 0 WHERE account = 'acct/1'"))


CASES = {
    "edited": (_edit_amount, "edited", 3),
    "edited and re-hashed": (_edit_and_rehash, "edited", 3),
    "deleted in the middle": (_delete_middle, "deleted", 4),
    "deleted at the end": (_delete_last, "deleted", 6),
    "inserted after the head": (_insert_after_head, "inserted", 7),
    "inserted in the middle": (_insert_middle, "inserted", 4),
    "reordered": (_swap, "reordered", 2),
    "balance edited": (_edit_balance, "balance", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_detected_and_named(ledger: Ledger, url: str, case: str) -> None:
    tamper, kind, seq = CASES[case]
    _fill(ledger)
    assert verify(ledger).ok
    _sql(ledger.url, tamper)
    report = verify(ledger)
    assert not report.ok
    first = report.problems[0]
    assert first.kind == kind, first
    if seq is not None:
        assert first.seq == seq, first
        assert f"#{seq}" in first.message


def test_an_external_anchor_catches_a_full_rewrite(ledger: Ledger) -> None:
    _fill(ledger)
    anchor = ledger.head()

    def rewrite(conn: Connection) -> None:
        prev = GENESIS
        for seq in range(1, 7):
            row = _row(conn, seq)._replace(prev_hash=prev)
            if seq == 2:
                row = row._replace(citation="rewritten")
            prev = entry_hash(row, prev)
            _put(conn, row._replace(hash=prev))
        conn.execute(text("UPDATE ledger_chain_head SET hash = :h"), {"h": prev})

    _sql(ledger.url, rewrite)
    assert verify(ledger).ok  # self-consistent: only an anchor kept elsewhere can tell
    report = verify(ledger, expect_head=anchor)
    assert [p.kind for p in report.problems] == ["edited"]
