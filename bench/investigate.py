"""Time `investigate` on a large generated world (default 1,000,000 orders).

.venv/bin/python bench/investigate.py --orders 1000000 --seed 7
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from aiexport.intel.investigate import investigate
from aiexport.world import generate_world


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--world", type=Path, default=None, help="reuse a generated world directory")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        d = args.world or Path(tmp) / "world"
        if not (d / "orders.parquet").exists():
            t0 = time.perf_counter()
            generate_world(d, seed=args.seed, orders=args.orders)
            print(f"world: {args.orders:,} orders in {time.perf_counter() - t0:.0f}s", flush=True)
        t0 = time.perf_counter()
        inv = investigate(
            d / "orders.parquet",
            progress=lambda s: print(f"  {time.perf_counter() - t0:6.1f}s {s}", flush=True),
        )
        secs = time.perf_counter() - t0
        print(
            f"investigate: {inv.orders:,} orders, {inv.consignees:,} consignees, {inv.clusters:,} "
            f"resolved parties, {len(inv.cases):,} cases in {secs:.1f}s "
            f"({', '.join(f'{k} {v:.1f}s' for k, v in inv.seconds.items())})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
