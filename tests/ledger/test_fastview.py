"""`FastView` snapshots answer exactly as `Ledger` does, from one snapshot, on every backend."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from aiexport.errors import InputError
from aiexport.io.orders import RowParser
from aiexport.ledger import Ledger
from aiexport.ledger._fastview import FastView, _iso_now
from aiexport.rules.decide import Engine
from aiexport.rules.quota import LicenseInfo, QuotaView, VeuInfo
from aiexport.rules.ruleset import DEFAULT_RULE_SET, load_rule_set

from .conftest import draw

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
ACCOUNTS = ["lpp/acme/2025", "aia/acme", "allocation/IN", "held/x", "never/drawn"]


def _fill(ledger: Ledger) -> None:
    ledger.commit(
        [draw("lpp/acme/2025", "1000.25", 26_000_000), draw("aia/acme", "7")],
        key="c1",
        actor="t",
        now=T0,
    )
    ledger.reserve(
        [draw("held/x", "40"), draw("lpp/acme/2025", "5")],
        key="r1",
        actor="t",
        hold=dt.timedelta(minutes=10),
        now=T0,
    )
    ledger.add_license(
        LicenseInfo("L-1", "IN", "Consignee 1", Decimal("900"), T0.date(), dt.date(2026, 2, 28)),
        actor="t",
        allocation_limit=Decimal(50_000_000),
        citation="test",
        now=T0,
    )
    for veu_id, holder in [("V-2", "hold co"), ("V-1", "hold co"), ("V-3", "other")]:
        ledger.add_veu(
            VeuInfo(veu_id, "UVEU", holder, "US", frozenset({"IN", "BR"}), T0.date()),
            actor="t",
            now=T0,
        )


@pytest.mark.parametrize("minutes", [0, 9, 10, 11])
def test_snapshot_answers_as_the_ledger_does(ledger: Ledger, minutes: int) -> None:
    _fill(ledger)
    fast = FastView(ledger)
    now = T0 + dt.timedelta(minutes=minutes)  # the hold lapses at +10 min
    with fast.snapshot(now) as view:
        assert isinstance(view, QuotaView)
        for account in ACCOUNTS:
            assert view.used(account) == ledger.used(account, now), account
        for license_id in ["L-1", "L-2"]:
            assert view.license(license_id) == ledger.license(license_id)
        for veu_id in ["V-1", "V-3", "V-9"]:
            assert view.veu(veu_id) == ledger.veu(veu_id)
        for holder in ["hold co", "other", "nobody"]:
            assert list(view.veus_for(holder)) == list(ledger.veus_for(holder))
        assert [v.veu_id for v in view.veus_for("hold co")] == ["V-1", "V-2"]
        assert view.head() == ledger.head()
    fast.close()


def test_a_snapshot_does_not_see_later_commits(ledger: Ledger) -> None:
    _fill(ledger)
    fast = FastView(ledger)
    with fast.snapshot() as view:
        before = view.used("aia/acme")
        ledger.commit([draw("aia/acme", "1"), draw("fresh/acct", "2")], key="c2", actor="t")
        assert view.used("aia/acme") == before  # memoised, and
        assert view.used("fresh/acct") == 0  # a new read is still from the same snapshot
    with fast.snapshot() as view:
        assert view.used("aia/acme") == before + 1
        assert view.used("fresh/acct") == 2
    fast.close()


def test_apply_adds_a_dry_runs_own_draws(ledger: Ledger) -> None:
    _fill(ledger)
    fast = FastView(ledger)
    with fast.snapshot(T0) as view:
        view.apply([draw("aia/acme", "0.5"), draw("new/acct", "3")])
        assert view.used("aia/acme") == Decimal("7.5")
        assert view.used("new/acct") == 3
    assert ledger.used("aia/acme") == 7  # nothing was written
    fast.close()


def test_connections_are_reused_and_survive_a_failing_decision(ledger: Ledger) -> None:
    _fill(ledger)
    fast = FastView(ledger, keep=2)
    with fast.snapshot() as view:
        view.used("aia/acme")
    with pytest.raises(InputError), fast.snapshot() as view:
        view.used("aia/acme")
        raise InputError("a bad order")
    assert len(fast._idle) == 1
    with fast.snapshot() as a, fast.snapshot() as b, fast.snapshot() as c:
        assert a.used("aia/acme") == b.used("aia/acme") == c.used("aia/acme") == 7
    assert len(fast._idle) == 2  # at most `keep` are kept; the third went back to the pool
    fast.close()
    assert fast._idle == []
    with fast.snapshot() as view:  # a closed view still works (and keeps again)
        assert view.used("aia/acme") == 7
    fast.close()


def test_decisions_are_the_same_against_a_snapshot(ledger: Ledger) -> None:
    _fill(ledger)
    engine = Engine(load_rule_set(DEFAULT_RULE_SET))
    parser = RowParser("orders")
    fast = FastView(ledger)
    items = ["H100-SXM5", "H200", "B200", "MI300X", "H20"]
    dests = ["IN", "BR", "FR", "CN", "AE", "VN"]
    auths = ["LPP", "", "LICENSE:L-1", "UVEU:V-1", "AIA"]
    for i in range(60):
        row = {
            "order_id": f"O-{i}",
            "order_date": f"2025-{6 + i % 6:02d}-{1 + i % 27:02d}",
            "exporter": "acme",
            "item": items[i % len(items)],
            "quantity": str(1 + i % 40),
            "destination": dests[i % len(dests)],
            "consignee_name": f"Consignee {i % 3}",
            "consignee_id": "hold co" if i % 2 else "",
            "end_use": "datacenter",
            "authorization": auths[i % len(auths)],
        }
        order = parser.parse({k: v for k, v in row.items() if v}, i + 1, i)
        with fast.snapshot() as view:
            got = engine.decide(order, view).to_record()
        assert got == engine.decide(order, ledger).to_record(), row
    fast.close()


def test_kept_answers_follow_time_and_every_change(ledger: Ledger) -> None:
    _fill(ledger)
    fast = FastView(ledger)
    for minutes in [0, 5, 9, 10, 11, 9, 0, 30]:  # the hold lapses at +10 min; time may go back
        now = T0 + dt.timedelta(minutes=minutes)
        with fast.snapshot(now) as view:
            for account in ACCOUNTS:
                assert view.used(account) == ledger.used(account, now), (minutes, account)
    with fast.snapshot() as view:
        assert [v.veu_id for v in view.veus_for("other")] == ["V-3"]
        assert view.veu("V-4") is None and view.license("L-2") is None
    ledger.add_veu(  # no ledger entry: the registry alone changes
        VeuInfo("V-4", "UVEU", "other", "US", frozenset({"IN"}), T0.date()), actor="t", now=T0
    )
    ledger.add_license(
        LicenseInfo("L-2", "IN", None, Decimal("1"), T0.date(), dt.date(2026, 2, 28)),
        actor="t",
        allocation_limit=None,
        citation="test",
        now=T0,
    )
    with fast.snapshot() as view:
        assert [v.veu_id for v in view.veus_for("other")] == ["V-3", "V-4"]
        assert view.veu("V-4") is not None and view.license("L-2") is not None
        assert view.used("allocation/IN") == ledger.used("allocation/IN")
    ledger.reserve([draw("aia/acme", "1")], key="r2", actor="t", hold=dt.timedelta(minutes=1))
    with fast.snapshot() as view:
        assert view.used("aia/acme") == 8
    ledger.release("r2", key="r2/release", actor="t")
    with fast.snapshot() as view:
        assert view.used("aia/acme") == 7
    fast.close()


def test_now_is_written_as_the_ledger_writes_it() -> None:
    from aiexport.ledger._entries import iso, parse_iso

    text = _iso_now()
    assert len(text) == len("2025-03-01T12:00:00.000000Z") and iso(parse_iso(text)) == text
