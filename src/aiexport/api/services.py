"""What the endpoints and pages call: one object holding the ledger, the engines and the jobs.

Nothing here decides anything: orders go through `RowParser` and `Engine.decide`, quota draws
through `commit_screen`, exactly as `aiexport screen --commit` does. This module adds what a
multi-user service needs around them: tenancy (an exporter key acts for one company), the
decision log, and the audit row for every change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from aiexport.api import store
from aiexport.api.auth import Principal
from aiexport.errors import Conflict, Forbidden, InputError, NotFound, OrderError
from aiexport.io.orders import RowParser
from aiexport.ledger import Ledger, commit_screen
from aiexport.ledger._fastview import FastView
from aiexport.rules.decide import Engine
from aiexport.rules.determination import Determination
from aiexport.rules.orders import Order
from aiexport.rules.quota import QuotaView
from aiexport.rules.ruleset import DEFAULT_RULE_SET, RuleSet, available_rule_sets, load_rule_set
from aiexport.screen import decide_all, processing_order, summarise


@dataclass
class Services:
    """The ledger plus cached engines; one per app (and one per `aiexport demo`)."""

    ledger: Ledger
    rule_set: str = DEFAULT_RULE_SET
    _engines: dict[str, Engine] = field(default_factory=dict)
    fast: FastView = field(init=False)

    def __post_init__(self) -> None:
        self.fast = FastView(self.ledger)

    @property
    def reads_inline(self) -> bool:
        """Dry-run reads are local and never wait for a writer (SQLite in WAL mode), so the
        event loop can run them itself; over a network (PostgreSQL) they go to a thread."""
        return self.ledger.db.is_sqlite

    def close(self) -> None:
        self.fast.close()

    def rules(self, name: str | None = None) -> RuleSet:
        name = name or self.rule_set
        if name not in available_rule_sets():
            raise NotFound(
                f"no rule set {name!r}; choose one of {', '.join(available_rule_sets())}"
            )
        return load_rule_set(name)

    def engine(self, name: str | None = None) -> Engine:
        name = name or self.rule_set
        hit = self._engines.get(name)
        if hit is None:
            hit = self._engines[name] = Engine(self.rules(name))
        return hit


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision's contract §2 record and what the service did with it."""

    record: dict[str, Any]
    recorded: bool
    replayed: bool = False
    decision_id: int | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            **self.record,
            "recorded": self.recorded,
            "replayed": self.replayed,
            "decision_id": self.decision_id,
        }


def parse_order(
    who: Principal, raw: Mapping[str, Any], *, line: int = 1, file: str = "request"
) -> Order:
    """Validate one order as `RowParser` does for files, under the caller's tenancy."""
    row = {k: v for k, v in raw.items() if v is not None}
    if who.exporter is not None:
        given = row.get("exporter")
        if given is None or str(given).strip() == "":
            row["exporter"] = who.exporter
        elif str(given).strip() != who.exporter:
            raise Forbidden(
                f"your key acts for exporter {who.exporter!r}, not {str(given).strip()!r}; "
                "leave `exporter` empty or use a key of that exporter"
            )
    elif not row.get("exporter"):
        raise OrderError(
            "required value is missing (an analyst or admin key must name the exporter)",
            file=file,
            line=line,
            column="exporter",
        )
    try:
        order = RowParser(file).parse(row, line, line - 1)
    except OrderError as exc:
        if file != "request":
            raise
        raise OrderError(exc.detail, column=exc.column) from None
    return order if file != "request" else dataclasses.replace(order, line=None)


def digest(raw: Mapping[str, Any], rule_set: str) -> str:
    body = json.dumps({"order": raw, "rule_set": rule_set}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def decide_one(
    svc: Services,
    who: Principal,
    raw: Mapping[str, Any],
    *,
    commit: bool,
    rule_set: str | None = None,
) -> Decided:
    """Decide one order; with `commit`, record its draws (once, however often it is sent)."""
    order = parse_order(who, raw)
    engine = svc.engine(rule_set)
    if not commit:
        with svc.fast.snapshot() as view:
            det = engine.decide(order, view)
        return Decided(det.to_record(), recorded=False)
    if who.role == "analyst":
        raise Forbidden(
            "analyst keys decide but do not record; record orders with an exporter or admin key"
        )
    fp = digest(dict(raw, exporter=order.exporter), engine.rules.name)
    prior = _stored(svc.ledger, order.exporter, order.order_id)
    if prior is not None:
        return _replay(prior, fp)
    key = f"api/{order.exporter}/{order.order_id}"
    got: list[Determination] = []

    def run(view: QuotaView) -> list[tuple[str, Sequence[Any]]]:
        got.clear()
        got.append(engine.decide(order, view))
        return [(order.order_id, got[0].draws)]

    commit_screen(svc.ledger, run, actor=who.actor, key=key)
    det = got[0]
    try:
        ids = _insert(svc.ledger, who, [(order, raw, det, fp, key)], action="decision.commit")
    except IntegrityError:
        prior = _stored(svc.ledger, order.exporter, order.order_id)
        if prior is None:
            raise
        return _replay(prior, fp)
    return Decided(det.to_record(), recorded=True, decision_id=ids[0])


def decide_batch(
    svc: Services,
    who: Principal,
    raws: Sequence[Mapping[str, Any]],
    *,
    commit: bool,
    rule_set: str | None = None,
) -> tuple[list[Decided], dict[str, Any]]:
    """Decide many orders in (date, position) order; with `commit`, record all or none."""
    orders = [parse_order(who, r, line=i + 1, file="orders") for i, r in enumerate(raws)]
    ids = [(o.exporter, o.order_id) for o in orders]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(
            f"order_id {dup[1]!r} appears more than once in the batch; order ids must be unique"
        )
    engine = svc.engine(rule_set)
    if not commit:
        with svc.fast.snapshot() as view:
            dets = decide_all(orders, engine, view, file="orders")
        return [Decided(d.to_record(), recorded=False) for d in dets], summarise(
            dets, engine.rules.name
        ).to_dict()
    if who.role == "analyst":
        raise Forbidden(
            "analyst keys decide but do not record; record orders with an exporter or admin key"
        )
    with svc.ledger.db.read() as conn:
        d = store.decisions.c
        taken = []
        for exporter in {o.exporter for o in orders}:
            wanted = [o.order_id for o in orders if o.exporter == exporter]
            q = select(d.order_id).where(d.exporter == exporter, d.order_id.in_(wanted))
            taken += list(conn.scalars(q))
    fps = [
        digest(dict(r, exporter=o.exporter), engine.rules.name)
        for r, o in zip(raws, orders, strict=True)
    ]
    if taken and len(taken) == len(orders):
        try:
            replays = [
                _replay(_stored(svc.ledger, o.exporter, o.order_id), fp)
                for o, fp in zip(orders, fps, strict=True)
            ]
        except Conflict:
            replays = []
        if replays:
            return replays, {"orders": len(replays), "replayed": True}
    if taken:
        raise Conflict(
            f"{len(taken)} order(s) of this batch were recorded before (e.g. {taken[0]!r}); "
            "send them again one by one to read back their decisions, or use new order ids"
        )
    key = "api/batch/" + hashlib.sha256("".join(fps).encode()).hexdigest()[:32]
    got: list[Determination | None] = [None] * len(orders)

    def run(view: QuotaView) -> list[tuple[str, Sequence[Any]]]:
        dets = decide_all(orders, engine, view, file="orders")  # type: ignore[arg-type]
        got[:] = dets
        return [(orders[i].order_id, dets[i].draws) for i in processing_order(orders)]

    result = commit_screen(svc.ledger, run, actor=who.actor, key=key)
    dets = [g for g in got if g is not None]
    rows = [(o, r, det, fp, key) for o, r, det, fp in zip(orders, raws, dets, fps, strict=True)]
    try:
        new_ids = _insert(svc.ledger, who, rows, action="decision.commit_batch")
    except IntegrityError:
        if not result.replayed:
            svc.ledger.void(
                key,
                key=f"{key}/void",
                actor=who.actor,
                reason="batch clashed with an order recorded at the same time",
            )
        raise Conflict(
            "some orders of this batch were recorded at the same time by another request; nothing was recorded, send it again"
        ) from None
    out = [
        Decided(det.to_record(), recorded=True, decision_id=i)
        for det, i in zip(dets, new_ids, strict=True)
    ]
    return out, summarise(dets, engine.rules.name).to_dict()


def _stored(ledger: Ledger, exporter: str, order_id: str) -> Any:
    d = store.decisions.c
    with ledger.db.read() as conn:
        return conn.execute(
            select(d.id, d.digest, d.record_json).where(
                d.exporter == exporter, d.order_id == order_id
            )
        ).first()


def _replay(prior: Any, fp: str) -> Decided:
    if prior.digest != fp:
        raise Conflict(
            "this exporter already recorded an order with this order_id and different details; "
            "use a new order_id for a new order"
        )
    return Decided(
        json.loads(prior.record_json), recorded=True, replayed=True, decision_id=prior.id
    )


def _insert(
    ledger: Ledger,
    who: Principal,
    rows: Sequence[tuple[Order, Mapping[str, Any], Determination, str, str]],
    *,
    action: str,
) -> list[int]:
    now = store.now_iso()

    def work(conn: Connection) -> list[int]:
        ids = []
        for order, raw, det, fp, key in rows:
            res = conn.execute(
                store.decisions.insert().values(
                    exporter=order.exporter,
                    order_id=order.order_id,
                    order_date=order.order_date.isoformat(),
                    destination=order.destination,
                    consignee=order.consignee,
                    tier=det.destination_tier,
                    status=det.status,
                    authority=det.authority,
                    tpp_total=float(det.tpp_total),
                    rule_set=det.rule_set,
                    digest=fp,
                    ledger_key=key,
                    order_json=json.dumps(dict(raw, exporter=order.exporter), default=str),
                    record_json=json.dumps(det.to_record()),
                    actor=who.actor,
                    created_at=now,
                )
            )
            ids.append(int(res.inserted_primary_key[0]))  # type: ignore[index]
        first = rows[0][0]
        store.log(
            conn,
            who.actor,
            who.role,
            action,
            first.order_id if len(rows) == 1 else f"{len(rows)} orders",
            {
                "ledger_key": rows[0][4],
                "draws": sum(len(r[2].draws) for r in rows),
                "decision_ids": [ids[0], ids[-1]],
            },
        )
        return ids

    return ledger.db.write(work, lock=False)


def list_decisions(
    ledger: Ledger,
    who: Principal,
    *,
    limit: int,
    offset: int,
    order_id: str | None = None,
    exporter: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Recorded decisions, newest first; an exporter sees its own only."""
    d = store.decisions.c
    where = []
    if who.exporter is not None:
        where.append(d.exporter == who.exporter)
    elif exporter:
        where.append(d.exporter == exporter)
    if order_id:
        where.append(d.order_id == order_id)
    with ledger.db.read() as conn:
        total = conn.execute(
            select(func.count()).select_from(store.decisions).where(*where)
        ).scalar_one()
        rows = conn.execute(
            select(store.decisions).where(*where).order_by(d.id.desc()).limit(limit).offset(offset)
        )
        return [stored_decision(r) for r in rows], int(total)


def get_decision(ledger: Ledger, who: Principal, decision_id: int) -> dict[str, Any]:
    d = store.decisions.c
    with ledger.db.read() as conn:
        row = conn.execute(select(store.decisions).where(d.id == decision_id)).first()
    if row is None or (who.exporter is not None and row.exporter != who.exporter):
        raise NotFound(f"no decision {decision_id} among yours; GET /v1/decisions lists them")
    return stored_decision(row)


def stored_decision(r: Any) -> dict[str, Any]:
    return {
        "decision_id": r.id,
        "exporter": r.exporter,
        "order_id": r.order_id,
        "order_date": r.order_date,
        "destination": r.destination,
        "consignee": r.consignee,
        "status": r.status,
        "authority": r.authority,
        "tpp_total": r.tpp_total,
        "actor": r.actor,
        "created_at": r.created_at,
        "order": json.loads(r.order_json),
        "decision": json.loads(r.record_json),
    }
