"""A model-based test: random sequences of ledger operations against a plain-Python model.

Hypothesis drives reservations, commitments, releases, expiries, attrition and replays on
accounts with small caps; after every step the ledger's balances equal the model's, no cap is
exceeded, and at the end the hash chain and the materialised state verify.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from aiexport.errors import Conflict, QuotaExceeded
from aiexport.ledger import DrawRequest, Ledger, verify

from .conftest import PG_URL, _reset_pg, draw

ACCOUNTS = {"a": 50, "b": 80, "c": None}
T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
HOLD = dt.timedelta(minutes=10)


def make_machine(url_for: object) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        reservations = Bundle("reservations")
        commitments = Bundle("commitments")

        def __init__(self) -> None:
            super().__init__()
            self.ledger = Ledger(url_for())  # type: ignore[operator]
            self.now = T0
            self.committed = dict.fromkeys(ACCOUNTS, 0)
            self.holds: dict[str, tuple[dt.datetime, dict[str, int]]] = {}
            self.done: dict[str, object] = {}
            self.keys = itertools.count()

        def _reserved(self, account: str) -> int:
            return sum(
                amounts.get(account, 0)
                for expires, amounts in self.holds.values()
                if expires > self.now
            )

        def _used(self, account: str) -> int:
            return self.committed[account] + self._reserved(account)

        def _fits(self, amounts: dict[str, int]) -> bool:
            return all(
                ACCOUNTS[a] is None or self._used(a) + n <= ACCOUNTS[a]  # type: ignore[operator]
                for a, n in amounts.items()
            )

        def _draws(self, amounts: dict[str, int]) -> list[object]:
            return [draw(a, n, ACCOUNTS[a]) for a, n in sorted(amounts.items())]

        @rule(
            target=reservations,
            amounts=st.dictionaries(
                st.sampled_from(sorted(ACCOUNTS)), st.integers(1, 30), min_size=1
            ),
        )
        def reserve(self, amounts: dict[str, int]) -> str:
            key = f"r{next(self.keys)}"
            fits = self._fits(amounts)
            try:
                self.ledger.reserve(
                    self._draws(amounts), key=key, actor="m", hold=HOLD, now=self.now
                )  # type: ignore[arg-type]
            except QuotaExceeded:
                assert not fits
                return key
            assert fits
            self.holds[key] = (self.now + HOLD, amounts)
            return key

        @rule(
            target=commitments,
            amounts=st.dictionaries(
                st.sampled_from(sorted(ACCOUNTS)), st.integers(1, 30), min_size=1
            ),
        )
        def commit(self, amounts: dict[str, int]) -> str:
            key = f"c{next(self.keys)}"
            fits = self._fits(amounts)
            try:
                self.ledger.commit(self._draws(amounts), key=key, actor="m", now=self.now)  # type: ignore[arg-type]
            except QuotaExceeded:
                assert not fits
                return key
            assert fits
            for a, n in amounts.items():
                self.committed[a] += n
            self.done[key] = amounts
            return key

        @rule(
            orders=st.lists(
                st.dictionaries(st.sampled_from(sorted(ACCOUNTS)), st.integers(1, 20), min_size=1),
                min_size=1,
                max_size=4,
            )
        )
        def batch(self, orders: list[dict[str, int]]) -> None:
            total: dict[str, int] = {}
            fits = True
            for amounts in orders:  # the batch is checked order by order, cumulatively
                for a, n in amounts.items():
                    total[a] = total.get(a, 0) + n
                fits = fits and self._fits(total)
            reqs = [
                DrawRequest(f"b{next(self.keys)}", tuple(self._draws(amounts)))  # type: ignore[arg-type]
                for amounts in orders
            ]
            try:
                self.ledger.record_batch(reqs, actor="m", now=self.now)
            except QuotaExceeded:
                assert not fits
                return
            assert fits
            for a, n in total.items():
                self.committed[a] += n

        @rule(key=consumes(reservations), release=st.booleans())
        def settle(self, key: str, release: bool) -> None:
            live = key in self.holds and self.holds[key][0] > self.now
            op = self.ledger.release if release else self.ledger.commit_reservation
            try:
                op(key, key=f"s{next(self.keys)}", actor="m", now=self.now)
            except Conflict:
                assert not live  # lapsed: held, unswept, until a write succeeds
                return
            except Exception as exc:  # refused reservations were never recorded
                assert type(exc).__name__ == "NotFound" and key not in self.holds
                return
            assert live
            _, amounts = self.holds.pop(key)
            if not release:
                for a, n in amounts.items():
                    self.committed[a] += n

        @rule(key=commitments)
        def replay(self, key: str) -> None:
            if key not in self.done:
                return
            receipt = self.ledger.commit(
                self._draws(self.done[key]), key=key, actor="m", now=self.now
            )  # type: ignore[arg-type]
            assert receipt.replayed

        @rule(account=st.sampled_from(sorted(ACCOUNTS)), n=st.integers(1, 20))
        def attrition(self, account: str, n: int) -> None:
            if n > self.committed[account]:
                return
            self.ledger.attrition(account, Decimal(n), key=f"x{next(self.keys)}", actor="m", citation="lost", now=self.now)  # fmt: skip
            self.committed[account] -= n

        @rule(minutes=st.integers(1, 15))
        def advance(self, minutes: int) -> None:
            self.now += dt.timedelta(minutes=minutes)

        @invariant()
        def balances_match_the_model(self) -> None:
            for b in self.ledger.balances():
                expected = self.committed[b.account] + self._reserved(b.account)
                # unswept lapsed holds still sit in `reserved` until the next write
                lapsed = sum(
                    amounts.get(b.account, 0)
                    for expires, amounts in self.holds.values()
                    if expires <= self.now
                )
                assert b.committed == self.committed[b.account]
                assert expected <= b.used <= expected + lapsed
                assert self.ledger.used(b.account, self.now) == expected
                limit = ACCOUNTS[b.account]
                if limit is not None:
                    assert self.committed[b.account] + self._reserved(b.account) <= limit

        def teardown(self) -> None:
            report = verify(self.ledger)
            self.ledger.close()
            assert report.ok, report.problems

    return LedgerMachine


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_ledger_matches_a_model(backend: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    if backend == "postgres" and not PG_URL:
        pytest.skip("AIEXPORT_TEST_PG_URL is not set")

    def url_for() -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('model') / uuid.uuid4().hex}.db"
        assert PG_URL
        _reset_pg(PG_URL)
        return PG_URL

    machine = make_machine(url_for)
    machine.TestCase.settings = settings(
        max_examples=12 if backend == "sqlite" else 6,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    machine.TestCase().runTest()
