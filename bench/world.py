"""Benchmark the synthetic world generator: orders generated per second, and peak memory.

    .venv/bin/python bench/world.py                      # 1,000,000 orders into a temp dir
    .venv/bin/python bench/world.py --orders 10000000 --out /tmp/world10m --keep

Prints one line per run: orders, wall seconds, orders/s (wall, and per CPU-second, which stays
meaningful on a busy machine), peak RSS, and the size of both files.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from aiexport.world import generate_world


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk-size", type=int, default=250_000)
    ap.add_argument("--out", type=Path, default=None, help="output directory (default: temp)")
    ap.add_argument("--keep", action="store_true", help="keep the files")
    args = ap.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="aiexport-world-"))
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    summary = generate_world(out, seed=args.seed, orders=args.orders, chunk_size=args.chunk_size)
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    csv_mb = (out / "orders.csv").stat().st_size / 1e6
    pq_mb = (out / "orders.parquet").stat().st_size / 1e6
    print(
        f"world: {summary.orders:,} orders in {seconds:.1f} s = {summary.orders / seconds:,.0f} "
        f"orders/s ({summary.orders / cpu:,.0f} per CPU-second); peak RSS {peak_mb:,.0f} MB; orders.csv {csv_mb:,.0f} MB, "
        f"orders.parquet {pq_mb:,.0f} MB; {summary.schemes} schemes, "
        f"{summary.consignees:,} consignees"
    )
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
