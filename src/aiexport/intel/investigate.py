"""`investigate`: from an orders file to ranked cases (contract §3).

Steps, each a named function:

1. `load_orders` + `enrich` (DuckDB): validate, add TPP, ECCN, tiers, LPP eligibility.
2. `_parties`: one record per consignee with its identifiers and order aggregates.
3. `resolve` (Splink): identity links between consignees; then relationship links — a
   third-country payer shared by a few consignees, a payer that is itself a consignee — and
   behaviour links (`_behaviour_relations`): a weak identifier (a director, a payer, a
   forwarder used habitually, a free-mail handle) shared by consignees that do the same
   suspicious thing (surge before the same deadline; take most of the LPP allowance in the
   same year), and a phone, domain or director (with the same name stem) shared with a
   consignee located in a Tier 3 country. Links join clusters strongest first, under a size
   cap (`MAX_CLUSTER`), so one busy value cannot make a giant component.
4. `_signals`: contract §3 signals per cluster, each with its reason.
5. `_cases`: clusters with a score of at least `MIN_CASE_SCORE`, ranked, with evidence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb

from aiexport.errors import ParameterNotFound
from aiexport.intel import signals as sg
from aiexport.intel._normalize import (
    FREE_MAIL,
    compact_key,
    email_domain,
    name_key,
    name_tokens,
    phone_key,
    website_domain,
)
from aiexport.intel._orders import connect, enrich, load_orders, lpp_limit
from aiexport.intel.lists import ScreeningList
from aiexport.intel.resolve import MATCH_THRESHOLD, Link, Model, party_records, resolve
from aiexport.intel.screening import Screener
from aiexport.intel.signals import Signal, combine
from aiexport.rules.countries import country_name
from aiexport.rules.decide import Engine
from aiexport.rules.ruleset import DEFAULT_RULE_SET, RuleSet, load_rule_set

MAX_CLUSTER = 30
"""No case joins more consignees than this; weaker links that would exceed it are left out."""
RELATION_SHARE = 6
"""A payer or forwarder shared by more consignees than this is a service, not a link."""


@dataclass
class Case:
    """One suspected scheme."""

    case_id: str
    score: float
    signals: list[Signal]
    parties: list[str]
    party_names: dict[str, str]
    order_ids: list[str]
    tpp_total: float
    summary: str
    links: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    by_party: list[dict[str, Any]] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        """Contract §3 fields, then the evidence (optional fields)."""
        return {
            "case_id": self.case_id,
            "score": round(self.score, 4),
            "signals": [s.code for s in self.signals],
            "parties": self.parties,
            "order_ids": self.order_ids,
            "tpp_total": _num(self.tpp_total),
            "summary": self.summary,
            "evidence": {
                "signals": [
                    {"code": s.code, "strength": round(s.strength, 3), "why": s.why}
                    for s in self.signals
                ],
                "party_names": self.party_names,
                "links": self.links,
                "parties": self.by_party,
                "timeline": self.timeline,
            },
        }


@dataclass
class Investigation:
    """The result of one run: ranked cases and what the run did."""

    cases: list[Case]
    orders: int
    consignees: int
    clusters: int
    links: int
    demoted: dict[str, int]
    capped_links: int
    rule_set: str
    lists: str | None
    warnings: list[str]
    seconds: dict[str, float]
    model: Model | None = None
    """The Splink model that scored the consignee pairs (trained by this run unless one was
    given); pass it to another `investigate` to score with the same parameters."""

    def to_json(self) -> dict[str, Any]:
        return {
            "cases": [c.to_record() for c in self.cases],
            "run": {
                "orders": self.orders,
                "consignees": self.consignees,
                "clusters": self.clusters,
                "links": self.links,
                "generic_values_demoted": self.demoted,
                "links_left_out_by_size_cap": self.capped_links,
                "rule_set": self.rule_set,
                "lists": self.lists,
                "warnings": self.warnings,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            },
        }


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(x, 3)


def investigate(
    orders: str | Path,
    *,
    lists: ScreeningList | None = None,
    rules: RuleSet | None = None,
    threshold: float | None = None,
    progress: Callable[[str], None] | None = None,
    model: Model | None = None,
) -> Investigation:
    """Run the whole pipeline on an orders file (CSV, Parquet or JSON Lines).

    Entity resolution trains its Splink model on these orders' consignees, unless a trained
    `model` (`Investigation.model` of an earlier run) is given: then its m and u probabilities
    and lambda score the pairs as they are, with no sampling or EM, so that one detector can
    be applied to several datasets (the policy simulator's scenarios)."""
    rules = rules or load_rule_set(DEFAULT_RULE_SET)
    say = progress or (lambda _s: None)
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    con = connect()
    con.execute("SET preserve_insertion_order = false")
    say("reading orders")
    lo = load_orders(orders, con)
    enrich(lo, rules, Engine(rules))
    t["load"] = time.perf_counter() - t0
    say("building consignee records")
    t1 = time.perf_counter()
    parties = _parties(con)
    t["parties"] = time.perf_counter() - t1
    say("resolving entities (Splink)")
    t1 = time.perf_counter()
    records = party_records(list(parties.values()))
    links, demoted, used = resolve(
        con, records, threshold=threshold or MATCH_THRESHOLD, model=model
    )
    ctx = _Context.build(con, rules, parties)
    relations = _relations(con, parties) + _behaviour_relations(con, ctx)
    clusters, capped = _cluster(parties, links, relations)
    t["resolve"] = time.perf_counter() - t1
    say("computing signals")
    t1 = time.perf_counter()
    screened = _screen(lists, parties, con) if lists is not None else {}
    cases = []
    for members, evidence in clusters:
        case = _case(ctx, members, evidence, screened)
        if case is not None:
            cases.append(case)
    cases.sort(key=lambda c: (-c.score, -c.tpp_total, c.case_id))
    t["signals"] = time.perf_counter() - t1
    t["total"] = time.perf_counter() - t0
    con.close()
    return Investigation(
        cases=cases,
        orders=lo.rows,
        consignees=len(parties),
        clusters=len(clusters),
        links=len(links) + len(relations),
        demoted=demoted,
        capped_links=capped,
        rule_set=rules.name,
        lists=None if lists is None else lists.version,
        warnings=list(lists.warnings) if lists is not None else [],
        seconds=t,
        model=used,
    )


# --- 2. consignee records --------------------------------------------------------------------


def _parties(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    rows = con.execute(
        """
        SELECT ckey, mode(consignee_name ORDER BY consignee_name),
               mode(loc_country ORDER BY loc_country), mode(hq_country ORDER BY hq_country),
               mode(consignee_address ORDER BY consignee_address),
               mode(consignee_phone ORDER BY consignee_phone),
               mode(consignee_email ORDER BY consignee_email),
               mode(consignee_website ORDER BY consignee_website),
               mode(consignee_registration ORDER BY consignee_registration),
               mode(consignee_officers ORDER BY consignee_officers),
               min(consignee_founded), count(*), sum(tpp ORDER BY tpp),
               min(order_date), max(order_date), min(consignee_id)
        FROM lines GROUP BY ckey ORDER BY ckey
        """
    ).fetchall()
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        out[r[0]] = {
            "ckey": r[0],
            "name": r[1],
            "country": r[2],
            "country_name": country_name(r[2]) if r[2] else None,
            "hq": r[3],
            "address": r[4],
            "phone": r[5],
            "email": r[6],
            "website": r[7],
            "registration": r[8],
            "officers": r[9],
            "founded": r[10],
            "n_orders": int(r[11]),
            "tpp": float(r[12] or 0),
            "first": r[13],
            "last": r[14],
            "consignee_id": r[15],
        }
    return out


# --- 3. relationship links and clusters ------------------------------------------------------


@dataclass(frozen=True)
class Relation:
    left: str
    right: str
    kind: str  # payer | forwarder | payer_is_consignee
    value: str
    strength: float


def _relations(
    con: duckdb.DuckDBPyConnection, parties: dict[str, dict[str, Any]]
) -> list[Relation]:
    """Consignees tied by a third-country payer that few others use, or paid for by another
    consignee of the data (a parent paying for a subsidiary).

    Shared freight forwarders are not links: on generated worlds even forwarders used by two to
    six buyers were mostly shared by unrelated, legitimate ones. They stay a signal.
    """
    rows = con.execute(
        """
        SELECT DISTINCT ckey, 'payer' AS kind, payer_name AS name, payer_country AS cc
        FROM lines WHERE payer_name IS NOT NULL
          AND coalesce(payer_country, loc_country) NOT IN (loc_country, hq_country)
        ORDER BY ALL
        """
    ).fetchall()
    by_value: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for ckey, kind, name, cc in rows:
        key = name_key(name)
        if key and key != name_key(parties[ckey]["name"]):
            by_value[(kind, key, (cc or "").upper())].add(ckey)
    rels: list[Relation] = []
    for (kind, key, cc), members in by_value.items():
        if not 2 <= len(members) <= RELATION_SHARE:
            continue
        ms = sorted(members)
        strength = 0.8 if kind == "payer" else 0.6
        rels.extend(Relation(ms[0], m, kind, f"{key} ({cc})", strength) for m in ms[1:])
    # A payer that is itself a consignee located in the payer's country.
    by_name: dict[tuple[str, str], list[str]] = defaultdict(list)
    for p in parties.values():
        by_name[(name_key(p["name"]), (p["country"] or "").upper())].append(p["ckey"])
    for (kind, key, cc), members in by_value.items():
        if kind != "payer":
            continue
        for target in by_name.get((key, cc), [])[:1]:
            rels.extend(
                Relation(target, m, "payer_is_consignee", f"{key} ({cc})", 0.9)
                for m in sorted(members)
                if m != target
            )
    return rels


TIER3_LOCATIONS = frozenset(sg.TIER3_CALLING_CODES.values())
BEHAVIOUR_SHARE = 12
"""Within one behaviour group, a value held by more members than this is not a link."""
NEAR_LIMIT = 0.4
"""A member of a structuring ring takes at least this share of the LPP allowance in a year."""


def _identifier_index(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Each consignee's identifier values (kind, value) for relationship links: the demoted
    normal forms from entity resolution, plus the names of its payers and forwarders."""
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    rows = con.execute(
        "SELECT unique_id, phone, address, email_domain, website, officers FROM er_parties "
        "ORDER BY unique_id"
    ).fetchall()
    for uid, phone, address, dom, web, officers in rows:
        vals = out[uid]
        for kind, v in (("phone", phone), ("address", address), ("email domain", dom)):
            if v:
                vals.append((kind, v))
        if web:
            vals.append(("website", web))
        for o in officers or ():
            vals.append(("director", o))
    for uid, email in con.execute(
        "SELECT ckey, consignee_email FROM lines WHERE consignee_email IS NOT NULL GROUP BY ALL "
        "ORDER BY ALL"
    ).fetchall():
        handle = _free_mail_handle(email)
        if handle:
            out[uid].append(("e-mail handle", handle))
    # A payer or forwarder counts when it is a habit (two lines or more), not a one-off.
    for kind, col in (("payer", "payer_name"), ("forwarder", "intermediate_name")):
        for ckey, name, own in con.execute(
            f"SELECT ckey, {col}, min(consignee_name) FROM lines WHERE {col} IS NOT NULL "
            "GROUP BY ALL HAVING count(*) >= 2 ORDER BY ALL"
        ).fetchall():
            key = _name_key(name)
            if key and key != _name_key(own):
                out[ckey].append((kind, key))
    return out


def _free_mail_handle(email: str) -> str | None:
    """The letters of a free-mail address's local part ('vertex.trade88@gmail.com' → 'vertextrade'):
    shells of one ring open mailboxes on the same pattern."""
    local, _, dom = email.lower().rpartition("@")
    if dom not in FREE_MAIL:
        return None
    letters = "".join(ch for ch in local if ch.isalpha())
    return letters if len(letters) >= 5 else None


@lru_cache(maxsize=500_000)
def _name_key(name: str) -> str:
    return name_key(name)


def _behaviour_relations(con: duckdb.DuckDBPyConnection, ctx: _Context) -> list[Relation]:
    """Weak identifiers that link consignees doing the same suspicious thing.

    A shared director written as surname and initial, a payer or a forwarder, is too common to
    resolve two companies on its own; between two consignees that both surge before the same
    deadline, or that both take most of the LPP allowance in the same year, it is what ties
    the members of one scheme (enforcement.md S08-S10: stockpiling and split purchases by
    linked buyers). Links stay inside each behaviour group, so legitimate buyers that share a
    forwarder with a ring member are not drawn in. A third kind: a consignee located in a
    Tier 3 country that shares a director, phone or domain with a consignee outside it buying
    controlled items (S14: a Tier 3 parent behind a subsidiary).
    """
    ids = _identifier_index(con)
    groups: dict[str, tuple[set[str], frozenset[str]]] = {}
    every = frozenset(
        {"phone", "address", "email domain", "website", "director", "payer", "e-mail handle"}
    )
    for year, limit in sorted(ctx.limits.items()):
        near = {m for m, by in ctx.lpp.items() if NEAR_LIMIT * limit <= by.get(year, 0.0) <= limit}
        groups[f"co-structuring {year}"] = (near, every)
    for d in ctx.deadlines:
        w0 = d - dt.timedelta(days=sg.SURGE_WINDOW_DAYS)
        busy = con.execute(
            "SELECT ckey FROM lines WHERE order_date >= ? AND order_date < ? GROUP BY ckey "
            "HAVING count(*) >= ? ORDER BY ckey",
            [w0, d, sg.SURGE_MIN_ORDERS],
        ).fetchall()
        surging = {m for (m,) in busy if _surging(ctx, m, d)}
        groups[f"co-surge before {d}"] = (surging, every | {"forwarder"})
    rels: list[Relation] = []
    for label, (members, kinds) in groups.items():
        by_value: dict[tuple[str, str], list[str]] = defaultdict(list)
        for m in sorted(members):
            for kind, v in dict.fromkeys(ids.get(m, ())):
                if kind in kinds:
                    by_value[(kind, v)].append(m)
        shared: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for (kind, v), ms in sorted(by_value.items()):
            if 2 <= len(ms) <= BEHAVIOUR_SHARE:
                for i, a in enumerate(ms):
                    for b in ms[i + 1 :]:
                        shared[(a, b)].append((kind, v))
        for (a, b), vals in sorted(shared.items()):
            # A director's name alone collides too often (surname and initial, common names).
            if all(k == "director" for k, _ in vals) and not (
                _similar_names(ctx, a, b) or (_young(ctx, a) and _young(ctx, b))
            ):
                continue
            rels.append(Relation(a, b, label, "; ".join(f"{k} {v}" for k, v in vals), 0.7))
    # Tier 3 affiliates.
    t3 = set(sg.TIER3_CALLING_CODES.values())
    located = {m for m, p in ctx.parties.items() if p["country"] in t3}
    index: dict[tuple[str, str], list[str]] = defaultdict(list)
    for m in sorted(located):
        for kind, v in dict.fromkeys(ids.get(m, ())):
            if kind in ("phone", "email domain", "website", "director"):
                index[(kind, v)].append(m)
    for m, lns in sorted(ctx.lines.items()):
        if m in located or not any(ln[ECCN] != "EAR99" for ln in lns):
            continue
        for kind, v in dict.fromkeys(ids.get(m, ())):
            parents = index.get((kind, v), [])
            if not 1 <= len(parents) <= 2:
                continue
            if kind == "director" and not _same_stem(ctx, parents[0], m):
                continue
            rels.append(Relation(parents[0], m, "tier3_affiliate", f"{kind} {v}", 0.75))
    return rels


def _young(ctx: _Context, m: str) -> bool:
    """Founded less than two years before its first order (a shell, or a new company)."""
    p = ctx.parties[m]
    return bool(p["founded"] and p["first"] and (p["first"] - p["founded"]).days < 730)


def _same_stem(ctx: _Context, a: str, b: str) -> bool:
    """Both names start with the same distinctive word ('Kaiyuan Data', 'Kaiyuan Digital')."""
    ta, tb = name_tokens(ctx.parties[a]["name"]), name_tokens(ctx.parties[b]["name"])
    return bool(ta and tb and ta[0] == tb[0] and len(ta[0]) >= 3)


def _similar_names(ctx: _Context, a: str, b: str) -> bool:
    """Names that are spelling variants of one stem ('Ver Tex', 'Veertex', 'Vertex')."""
    ka, kb = compact_key(ctx.parties[a]["name"]), compact_key(ctx.parties[b]["name"])
    n = min(len(ka), len(kb), 8)
    return n >= 4 and SequenceMatcher(None, ka[:n], kb[:n]).ratio() >= 0.8


class _UnionFind:
    def __init__(self, items: Sequence[str]) -> None:
        self.parent = {i: i for i in items}
        self.size = dict.fromkeys(items, 1)

    def find(self, x: str) -> str:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str, cap: int) -> bool | None:
        """Join; None if already together, False if the cap forbids it."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        if self.size[ra] + self.size[rb] > cap:
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return True


def _cluster(
    parties: dict[str, dict[str, Any]], links: list[Link], relations: list[Relation]
) -> tuple[list[tuple[list[str], list[dict[str, Any]]]], int]:
    """Connected components, strongest links first, none larger than `MAX_CLUSTER`."""
    uf = _UnionFind(sorted(parties))
    edges: list[tuple[float, str, str, dict[str, Any]]] = []
    for lk in links:
        ev = {
            "between": [lk.left, lk.right],
            "kind": "same or linked company",
            "shared": list(lk.shared),
            "match_probability": round(lk.probability, 4),
        }
        edges.append((1.0 + lk.probability, lk.left, lk.right, ev))
    for r in relations:
        ev = {"between": [r.left, r.right], "kind": r.kind, "shared": [r.value]}
        edges.append((r.strength, r.left, r.right, ev))
    # A total order (kind and shared values break ties), whatever order the queries gave.
    edges.sort(key=lambda e: (-e[0], e[1], e[2], e[3]["kind"], e[3]["shared"]))
    capped = 0
    evidence: dict[str, list[dict[str, Any]]] = defaultdict(list)
    kept: list[tuple[str, str, dict[str, Any]]] = []
    for _, a, b, ev in edges:
        if a not in uf.parent or b not in uf.parent:
            continue
        joined = uf.union(a, b, MAX_CLUSTER)
        if joined is False:
            capped += 1
            continue
        kept.append((a, b, ev))
    groups: dict[str, list[str]] = defaultdict(list)
    for p in sorted(parties):
        groups[uf.find(p)].append(p)
    for a, _, ev in kept:
        evidence[uf.find(a)].append(ev)
    return [(members, evidence.get(root, [])) for root, members in groups.items()], capped


# --- 4. signals ------------------------------------------------------------------------------


@dataclass
class _Context:
    """Per-consignee facts the signals read, computed set-wise once."""

    rules: RuleSet
    parties: dict[str, dict[str, Any]]
    lpp: dict[str, dict[int, float]]
    lines: dict[str, list[tuple[Any, ...]]]
    limits: dict[int, float]
    deadlines: list[dt.date]

    @classmethod
    def build(
        cls, con: duckdb.DuckDBPyConnection, rules: RuleSet, parties: dict[str, dict[str, Any]]
    ) -> _Context:
        lpp: dict[str, dict[int, float]] = defaultdict(dict)
        for ckey, year, tpp in con.execute(
            "SELECT ckey, year(order_date), sum(tpp ORDER BY tpp) FROM lines "
            "WHERE lpp_eligible GROUP BY ALL ORDER BY ALL"
        ).fetchall():
            lpp[ckey][int(year)] = float(tpp)
        years = [
            int(r[0])
            for r in con.execute(
                "SELECT DISTINCT year(order_date) AS y FROM lines ORDER BY y"
            ).fetchall()
        ]
        limits = {y: float(v) for y in years if (v := lpp_limit(rules, y)) is not None}
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE price_ref AS
            SELECT eccn, coalesce(lower(item), '') AS item, date_trunc('quarter', order_date) AS q,
                   median(unit_price_usd / chips) AS med, count(*) AS n
            FROM lines WHERE unit_price_usd IS NOT NULL AND unit_price_usd > 0
            GROUP BY ALL
            """
        )
        lines: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        cur = con.execute(
            f"""
            SELECT l.ckey, l.order_id, l.order_date, l.tpp, l.ics, l.unit_price_usd,
                   l.intermediate_name, l.intermediate_country, l.payer_name, l.payer_country,
                   l.destination, l.dest_hub, l.tier, l.lpp_eligible, l.end_use, l.eccn,
                   CASE WHEN p.n >= 8 AND l.unit_price_usd / l.chips < {sg.UNDERVALUED_SHARE} * p.med
                        THEN l.unit_price_usd / l.chips / p.med END AS price_ratio,
                   l.loc_country, l.hq_country, l.dest_tier
            FROM lines l LEFT JOIN price_ref p
              ON p.eccn = l.eccn AND p.item = coalesce(lower(l.item), '')
             AND p.q = date_trunc('quarter', l.order_date)
            ORDER BY l.order_date, l.rn
            """
        )
        while batch := cur.fetchmany(100_000):
            for row in batch:
                lines[row[0]].append(row[1:])
        deadlines = []
        try:
            # The latest dated value, not the one in force on the day of the run.
            day = rules.param("controls.compliance_date").values[-1].value
            deadlines.append(dt.date.fromisoformat(str(day)))
        except (ParameterNotFound, ValueError):
            pass  # a rule set without a compliance date has no deadline to surge before
        return cls(rules, parties, lpp, lines, limits, deadlines)


# Indices into a line tuple (after ckey).
(
    OID,
    DATE,
    TPP,
    ICS,
    PRICE,
    INTER,
    INTER_CC,
    PAYER,
    PAYER_CC,
    DEST,
    HUB,
    TIER,
    LPP,
    USE,
    ECCN,
    CHEAP,
    LOC,
    HQ,
    DEST_TIER,
) = range(19)


def _surging(ctx: _Context, m: str, d: dt.date) -> tuple[int, int, int] | None:
    """Orders of consignee `m` in the window before deadline `d`, the year before it and the 180
    days after, when the window's rate is `SURGE_FACTOR` times both; else None."""
    w0 = d - dt.timedelta(days=sg.SURGE_WINDOW_DAYS)
    ls = ctx.lines.get(m, [])
    n_w = sum(1 for ln in ls if w0 <= ln[DATE] < d)
    if n_w < sg.SURGE_MIN_ORDERS:
        return None
    n_b = sum(1 for ln in ls if w0 - dt.timedelta(days=365) <= ln[DATE] < w0)
    n_a = sum(1 for ln in ls if d <= ln[DATE] < d + dt.timedelta(days=180))
    rate_w = n_w / sg.SURGE_WINDOW_DAYS
    if rate_w >= sg.SURGE_FACTOR * n_b / 365 and n_a / 180 <= rate_w / sg.SURGE_FACTOR:
        return n_w, n_b, n_a
    return None


def _signals(
    ctx: _Context,
    members: list[str],
    evidence: list[dict[str, Any]],
    screened: dict[str, list[tuple[str, Any]]],
) -> list[Signal]:
    out: list[Signal] = []
    P = ctx.parties
    lines = [(m, ln) for m in members for ln in ctx.lines[m]]
    # STRUCTURING: the cluster over the allowance in a year while every member stays under it.
    if len(members) > 1:
        best: tuple[float, int, int, int] | None = None
        for year, limit in ctx.limits.items():
            per = [ctx.lpp.get(m, {}).get(year, 0.0) for m in members]
            total = sum(per)
            buyers = sum(1 for x in per if x > 0)
            if total > limit and buyers >= 2 and max(per) <= limit:
                near = sum(1 for x in per if x >= 0.5 * limit)
                if best is None or total / limit > best[0]:
                    best = (total / limit, year, buyers, near)
        if best:
            ratio, year, buyers, near = best
            # An established multinational whose subsidiaries all declare the same foreign
            # headquarters is a corporate group in the open, not shells hiding one buyer.
            hqs = {P[m]["hq"] for m in members}
            hq = next(iter(hqs))
            open_group = (
                len(hqs) == 1
                and hq not in TIER3_LOCATIONS
                and all(P[m]["country"] != hq for m in members)
                and not any(_young(ctx, m) for m in members)
            )
            out.append(
                Signal(
                    sg.STRUCTURING,
                    (0.3 if open_group else 1.0) * min(1.0, 0.5 + (ratio - 1.0) / 2 + 0.1 * near),
                    f"In {year} the {buyers} linked consignees took {ratio:.1f}× the LPP allowance "
                    f"({ctx.limits[year]:,.0f} TPP per ultimate consignee, 15 CFR 740.29(d)) under "
                    f"LPP-eligible terms while each stayed under it; {near} sat between half the "
                    "allowance and the allowance"
                    + (
                        f" (weakened: established subsidiaries that all declare their headquarters "
                        f"in {hq})."
                        if open_group
                        else "."
                    ),
                )
            )
    # SHARED_IDENTIFIERS
    shared = Counter(
        s for ev in evidence if ev["kind"] == "same or linked company" for s in ev["shared"]
    )
    if shared and len(members) > 1:
        kinds = ", ".join(f"{k} ×{v}" for k, v in shared.most_common())
        distinct_names = len({name_key(P[m]["name"]) for m in members})
        out.append(
            Signal(
                sg.SHARED_IDENTIFIERS,
                min(1.0, 0.3 + 0.15 * distinct_names),
                f"{len(members)} consignees ({distinct_names} distinct names) share identifiers: {kinds}.",
            )
        )
    # PAYER_MISMATCH: a payer that is neither the consignee nor in its country or HQ country.
    third = [
        (m, ln)
        for m, ln in lines
        if ln[PAYER]
        and name_key(ln[PAYER]) != name_key(P[m]["name"])
        and (ln[PAYER_CC] or ln[LOC]) not in (ln[LOC], ln[HQ])
    ]
    if third:
        ccs = Counter(ln[PAYER_CC] for _, ln in third)
        t3 = sum(v for k, v in ccs.items() if k in sg.TIER3_CALLING_CODES.values())
        share = len(third) / len(lines)
        out.append(
            Signal(
                sg.PAYER_MISMATCH,
                min(1.0, 0.4 + share + (0.3 if t3 else 0.0)),
                f"{len(third)} of {len(lines)} orders paid by a third party in another country "
                f"({', '.join(f'{k} ×{v}' for k, v in ccs.most_common())}).",
            )
        )
    # FORWARDER_CONSIGNEE: goods consigned through forwarders, or the consignee is one.
    fwd = [(m, ln) for m, ln in lines if ln[INTER]]
    named = [m for m in members if set(name_tokens(P[m]["name"])) & sg.FORWARDER_WORDS]
    if fwd or named:
        distinct = len({name_key(ln[INTER]) for _, ln in fwd})
        share = len(fwd) / len(lines)
        if named or share >= 0.3:
            out.append(
                Signal(
                    sg.FORWARDER_CONSIGNEE,
                    min(1.0, share + 0.15 * max(0, distinct - 1) + (0.5 if named else 0.0)),
                    f"{len(fwd)} of {len(lines)} orders go through {distinct} freight forwarder(s)"
                    + (f"; {len(named)} consignee name(s) are logistics firms" if named else "")
                    + ".",
                )
            )
    # TRANSSHIPMENT_HUB: hub destinations with signs of onward shipment.
    hub = [(m, ln) for m, ln in lines if ln[HUB]]
    if hub:
        onward = [
            ln
            for _, ln in hub
            if (ln[INTER] and (ln[INTER_CC] or ln[DEST]) != ln[DEST])
            or (ln[PAYER_CC] and ln[PAYER_CC] not in (ln[DEST], ln[HQ]))
            or (ln[INTER] and ln[USE] in ("resale", "unknown", "storage"))
        ]
        if onward:
            share = len(onward) / len(lines)
            hubs = Counter(ln[DEST] for _, ln in hub)
            out.append(
                Signal(
                    sg.TRANSSHIPMENT_HUB,
                    min(1.0, share + 0.2),
                    f"{len(hub)} orders to hub destinations ({', '.join(sorted(hubs))}); {len(onward)} "
                    "show onward shipment (a forwarder abroad or a payer in a third country).",
                )
            )
    # NEW_ENTITY_LARGE_ORDER
    young = []
    for m, ln in lines:
        founded = P[m]["founded"]
        big = ln[ICS] >= sg.LARGE_ORDER_ICS or (ln[PRICE] or 0) >= sg.LARGE_ORDER_USD
        if founded and big and 0 <= (ln[DATE] - founded).days < sg.NEW_ENTITY_DAYS:
            young.append((m, ln))
    if young:
        ics = sum(ln[ICS] for _, ln in young)
        tier1 = all(ln[DEST_TIER] == 1 for _, ln in young)
        out.append(
            Signal(
                sg.NEW_ENTITY_LARGE_ORDER,
                (0.35 if tier1 else 1.0) * min(1.0, 0.5 + len(young) / 6),
                f"{len(young)} orders of {sg.LARGE_ORDER_ICS}+ ICs or $1M+ ({ics:,} ICs) within a "
                f"year of the buyer's founding" + (" (Tier 1 destinations)" if tier1 else "") + ".",
            )
        )
    # LINE_OF_BUSINESS_MISMATCH: a realtor or a beauty-supply firm buying datacenter GPUs.
    off = [m for m in members if set(name_tokens(P[m]["name"])) & sg.OFF_PROFILE_WORDS]
    if off:
        ics = sum(ln[ICS] for m, ln in lines if m in off)
        if ics >= 8:
            words = sorted(
                {w for m in off for w in name_tokens(P[m]["name"]) if w in sg.OFF_PROFILE_WORDS}
            )
            # BIS pairs the mismatch with little business background: a firm with years of
            # history before its first order is a weaker flag than a new one.
            established = all(P[m]["founded"] and not _young(ctx, m) for m in off)
            out.append(
                Signal(
                    sg.LINE_OF_BUSINESS_MISMATCH,
                    (0.5 if established else 1.0) * min(1.0, 0.6 + ics / 500),
                    f"{len(off)} consignee(s) named for another line of business ({', '.join(words)}) "
                    f"bought {ics:,} advanced ICs"
                    + (" (established before it began ordering)." if established else "."),
                )
            )
    # UNDERVALUED
    cheap = [ln for _, ln in lines if ln[CHEAP] is not None]
    if cheap:
        worst = min(ln[CHEAP] for ln in cheap)
        out.append(
            Signal(
                sg.UNDERVALUED,
                min(1.0, 0.5 + len(cheap) / 4),
                f"{len(cheap)} orders priced under {sg.UNDERVALUED_SHARE:.0%} of the quarter's median "
                f"for the item (lowest {worst:.0%}).",
            )
        )
    # PRE_DEADLINE_SURGE: many orders just before a compliance date, few before and after.
    for d in ctx.deadlines:
        surging = [(m, *x) for m in members if (x := _surging(ctx, m, d))]
        if surging:
            n_w = sum(x[1] for x in surging)
            # Stockpiling before a deadline is lawful for one buyer (enforcement.md T12); linked
            # consignees surging together is the scheme.
            alone = len(surging) == 1
            out.append(
                Signal(
                    sg.PRE_DEADLINE_SURGE,
                    (0.6 if alone else 1.0) * min(1.0, 0.5 + n_w / 20),
                    f"{n_w} orders in the {sg.SURGE_WINDOW_DAYS} days before the {d} compliance date "
                    f"from {len(surging)} consignee(s), against "
                    f"{sum(x[2] for x in surging)} in the year before and {sum(x[3] for x in surging)} "
                    "in the 180 days after.",
                )
            )
    # HQ_IN_TIER3: a Tier 3 parent behind consignees that declare a local headquarters.
    clues: list[str] = []
    # Located in a Tier 3 country (not merely governed by Tier 3 through a declared HQ).
    located_t3 = [m for m in members if P[m]["country"] in TIER3_LOCATIONS]
    outside = [
        m
        for m in members
        if m not in located_t3 and any(ln[ECCN] != "EAR99" for ln in ctx.lines[m])
    ]
    t3_codes = {c for c in sg.TIER3_CALLING_CODES.values()}
    if located_t3 and outside:
        clues.append(
            f"linked to {', '.join(P[m]['name'] for m in located_t3[:3])} located in "
            f"{', '.join(sorted({P[m]['country'] for m in located_t3}))}"
        )
    for m in outside:
        p = P[m]
        ph = phone_key(p["phone"])
        if ph:
            for code, cc in sorted(sg.TIER3_CALLING_CODES.items(), key=lambda x: -len(x[0])):
                if ph.startswith(code) and cc != p["country"] and code != "7":
                    clues.append(f"{p['name']} has a {cc} phone number")
                    break
        for dom in (email_domain(p["email"]), website_domain(p["website"])):
            if dom and dom.rsplit(".", 1)[-1] in sg.TIER3_TLDS and p["country"] not in t3_codes:
                clues.append(f"{p['name']} uses the domain {dom}")
                break
        if p["hq"] in t3_codes and p["hq"] != p["country"]:
            clues.append(f"{p['name']} declares its headquarters in {p['hq']}")
    pays = [ev for ev in evidence if ev["kind"] == "payer_is_consignee"]
    if pays:
        clues.append(f"paid for by a consignee of the data ({pays[0]['shared'][0]})")
    if clues:
        out.append(
            Signal(
                sg.HQ_IN_TIER3,
                min(1.0, 0.45 + 0.2 * len(set(clues))),
                "Tier 3 parent suspected: " + "; ".join(dict.fromkeys(clues)) + ".",
            )
        )
    # RESTRICTED_PARTY_MATCH
    hits = [(m, who, match) for m in members for who, match in screened.get(m, [])]
    if hits:
        best_match = max(hits, key=lambda h: h[2].score)
        out.append(
            Signal(
                sg.RESTRICTED_PARTY_MATCH,
                best_match[2].score,
                "; ".join(
                    f"{who} {match.query!r} ~ {match.entry.source} entry {match.entry.name!r} "
                    f"({match.score:.2f}: {match.explain()})"
                    for _, who, match in sorted(hits, key=lambda h: -h[2].score)[:3]
                )
                + ".",
            )
        )
    return out


def _screen(
    lists: ScreeningList, parties: dict[str, dict[str, Any]], con: duckdb.DuckDBPyConnection
) -> dict[str, list[tuple[str, Any]]]:
    screener = Screener(lists)
    out: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for p in parties.values():
        for m in screener.screen(p["name"], p["country"])[:1]:
            out[p["ckey"]].append(("consignee", m))
    for ckey, role, name, cc in con.execute(
        """
        SELECT DISTINCT ckey, 'payer', payer_name, payer_country FROM lines WHERE payer_name IS NOT NULL
        UNION SELECT DISTINCT ckey, 'intermediate', intermediate_name, intermediate_country
        FROM lines WHERE intermediate_name IS NOT NULL
        ORDER BY ALL
        """
    ).fetchall():
        for m in screener.screen(name, cc)[:1]:
            out[ckey].append((role, m))
    return out


# --- 5. cases --------------------------------------------------------------------------------


def _case(
    ctx: _Context,
    members: list[str],
    evidence: list[dict[str, Any]],
    screened: dict[str, list[tuple[str, Any]]],
) -> Case | None:
    signals = _signals(ctx, members, evidence, screened)
    if not signals:
        return None
    score = combine(signals)
    if score < sg.MIN_CASE_SCORE:
        return None
    signals.sort(key=lambda s: -s.contribution)
    P = ctx.parties
    lines = sorted(
        ((m, ln) for m in members for ln in ctx.lines[m]), key=lambda x: (x[1][DATE], x[1][OID])
    )
    tpp = sum(ln[TPP] for _, ln in lines)
    digest = hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()[:10].upper()
    by_month: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for _, ln in lines:
        k = ln[DATE].strftime("%Y-%m")
        by_month[k][0] += 1
        by_month[k][1] += ln[TPP]
    names = {m: P[m]["name"] for m in members}
    countries = sorted({P[m]["country"] for m in members})
    lead = signals[0]
    first, last = lines[0][1][DATE], lines[-1][1][DATE]
    summary = (
        f"{len(members)} consignee{'s' if len(members) > 1 else ''} in {', '.join(countries)} "
        f"({'; '.join(list(names.values())[:4])}{' …' if len(members) > 4 else ''}): "
        f"{len(lines)} orders, {tpp:,.0f} TPP, {first} to {last}. "
        f"Signals: {', '.join(s.code for s in signals)}. Main reason: {lead.why} "
        "Next step: request end-use statements and ownership records from the exporters and "
        "verify the ultimate consignee(s) before further shipments."
    )
    return Case(
        case_id=f"CASE-{digest}",
        score=score,
        signals=signals,
        parties=sorted(members),
        party_names=names,
        order_ids=[ln[OID] for _, ln in lines],
        tpp_total=tpp,
        summary=summary,
        links=evidence,
        timeline=[
            {"month": k, "orders": int(v[0]), "tpp": _num(v[1])}
            for k, v in sorted(by_month.items())
        ],
        by_party=[
            {
                "party": m,
                "name": P[m]["name"],
                "country": P[m]["country"],
                "founded": P[m]["founded"].isoformat() if P[m]["founded"] else None,
                "orders": len(ctx.lines[m]),
                "tpp": _num(sum(ln[TPP] for ln in ctx.lines[m])),
                "lpp_tpp_by_year": {str(y): _num(v) for y, v in sorted(ctx.lpp.get(m, {}).items())},
            }
            for m in sorted(members)
        ],
    )
