"""Detection quality of `aiexport investigate` on generated worlds, against a naive baseline.

For each seed a world of `--orders` lines is generated (`aiexport.world`), investigated, and
scored against its truth.json, which the detector never reads:

- ring recall: share of the R planted schemes found among the top 2R cases, where a scheme is
  found when one case holds at least half of its orders;
- case precision: share of the top R cases whose orders are at least half scheme orders.

The baseline is the per-consignee threshold rule an exporter could run on its own books: one
case per consignee whose calendar-year TPP to Tier 2 destinations exceeds the LPP allowance,
ranked by how far it exceeds it.

Seeds 1-99 are for tuning; report on other seeds (default 1001-1005).

    .venv/bin/python bench/detect.py --seeds 1001 1002 1003 1004 1005 --orders 20000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import duckdb

from aiexport.intel._orders import enrich, load_orders, lpp_limit
from aiexport.intel.investigate import investigate
from aiexport.rules.ruleset import load_rule_set
from aiexport.world import generate_world


def score(cases: list[list[str]], truth: dict[str, Any]) -> dict[str, Any]:
    schemes = truth["schemes"]
    r = len(schemes)
    kind_of = {oid: s["kind"] for s in schemes for oid in s["order_ids"]}
    top2 = [set(c) for c in cases[: 2 * r]]
    found: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for s in schemes:
        kinds[s["kind"]] += 1
        ids = set(s["order_ids"])
        if any(len(ids & c) * 2 >= len(ids) for c in top2):
            found[s["kind"]] += 1
    top = cases[:r]
    # Precision by kind: each top-R case is attributed to the kind most of its scheme orders
    # belong to; a case with no scheme order at all is counted under "none".
    good_k: Counter[str] = Counter()
    all_k: Counter[str] = Counter()
    for c in top:
        hit = Counter(kind_of[o] for o in c if o in kind_of)
        k = hit.most_common(1)[0][0] if hit else "none"
        all_k[k] += 1
        if c and sum(hit.values()) * 2 >= len(c):
            good_k[k] += 1
    good = sum(good_k.values())
    return {
        "rings": r,
        "recall": sum(found.values()) / r if r else 0.0,
        "precision": good / len(top) if top else 0.0,
        "cases": len(cases),
        "found_by_kind": dict(found),
        "rings_by_kind": dict(kinds),
        "recall_by_kind": {k: f"{found[k]}/{n}" for k, n in sorted(kinds.items())},
        "good_by_kind": dict(good_k),
        "top_by_kind": dict(all_k),
        "precision_by_kind": {k: f"{good_k[k]}/{n}" for k, n in sorted(all_k.items())},
    }


def baseline(orders: Path) -> list[list[str]]:
    """Per-consignee threshold rule: yearly TPP to Tier 2 above the LPP allowance."""
    rules = load_rule_set()
    con = duckdb.connect()
    lo = load_orders(orders, con)
    enrich(lo, rules)
    rows = con.execute(
        "SELECT ckey, year(order_date) y, sum(tpp), list(order_id) FROM lines WHERE tier = 2 GROUP BY ALL"
    ).fetchall()
    by: dict[str, tuple[float, list[str]]] = {}
    ids: dict[str, list[str]] = defaultdict(list)
    for ckey, y, tpp, oids in rows:
        ids[ckey].extend(oids)
        limit = lpp_limit(rules, int(y))
        if limit is None or tpp <= float(limit):
            continue
        excess = tpp / float(limit)
        if ckey not in by or excess > by[ckey][0]:
            by[ckey] = (excess, [])
    ranked = sorted(by, key=lambda k: -by[k][0])
    return [ids[k] for k in ranked]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[1001, 1002, 1003, 1004, 1005])
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=None, help="write the per-seed results as JSON")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            d = Path(tmp) / f"w{seed}"
            generate_world(d, seed=seed, orders=args.orders)
            truth = json.loads((d / "truth.json").read_text())
            t0 = time.perf_counter()
            inv = investigate(d / "orders.parquet")
            secs = time.perf_counter() - t0
            ours = score([c.order_ids for c in inv.cases], truth)
            base = score(baseline(d / "orders.parquet"), truth)
            results.append(
                {"seed": seed, "ours": ours, "baseline": base, "seconds": round(secs, 1)}
            )
            print(
                f"seed {seed}: R={ours['rings']:3d}  ours recall {ours['recall']:.3f} precision "
                f"{ours['precision']:.3f} ({ours['cases']} cases, {secs:.1f}s)  |  baseline recall "
                f"{base['recall']:.3f} precision {base['precision']:.3f}\n"
                f"    recall by kind {ours['recall_by_kind']}  top-R cases by kind (good/all) "
                f"{ours['precision_by_kind']}",
                flush=True,
            )
    for who in ("ours", "baseline"):
        rec = [r[who]["recall"] for r in results]
        pre = [r[who]["precision"] for r in results]
        print(
            f"{who:8s} mean recall {statistics.mean(rec):.3f} (min {min(rec):.3f})  "
            f"mean precision {statistics.mean(pre):.3f} (min {min(pre):.3f})  over {len(results)} seeds"
        )
        found: Counter[str] = Counter()
        rings: Counter[str] = Counter()
        good: Counter[str] = Counter()
        top: Counter[str] = Counter()
        for r in results:
            found.update(r[who]["found_by_kind"])
            rings.update(r[who]["rings_by_kind"])
            good.update(r[who]["good_by_kind"])
            top.update(r[who]["top_by_kind"])
        print(
            "         recall by kind: "
            + ", ".join(
                f"{k} {found[k]}/{n} ({found[k] / n:.2f})" for k, n in sorted(rings.items())
            )
        )
        print(
            "         top-R cases by kind (good/all): "
            + ", ".join(f"{k} {good[k]}/{n}" for k, n in sorted(top.items()))
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
