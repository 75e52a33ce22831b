"""The PostgreSQL server's own ceiling for reservations, measured with a C client (pgbench).

`bench/ledger.py` measures the ledger as a Python program uses it. This measures what is left
when the client costs next to nothing: pgbench (libpq, prepared statements) sends the same
reservation `Ledger.reserve` sends for one draw on a known account - one call of the function
`ledger_draw_one` (`aiexport.ledger._pgdraw`: the write lock, the draw, its commit), then the
WAL barrier when another writer held the lock - against the floor of `bench/ledger.py`: one
transaction inserting the same rows (a reservation's transaction, entry, hold and request) into
copies of the ledger's tables, committed synchronously. Each reservation's hash preimage is
built as the ledger builds it, so the database it leaves passes `aiexport ledger verify`.

The figures say how much of the gap to the floor is the server's: what the ledger adds there is
the write lock every writer takes in turn (the hash chain and the caps are decided under it),
the reads the decision needs, two more rows updated (the account's balance, the chain head) and,
when another writer held the lock, a second, tiny transaction for durability.

Like `bench/ledger.py`, it drops and recreates the ledger's tables at `--pg`, and refuses a
database holding a ledger it did not write unless `--wipe` is given.

    .venv/bin/python bench/pg_ceiling.py --pg postgresql://postgres:postgres@127.0.0.1/db
    .venv/bin/python bench/pg_ceiling.py --clients 8 --seconds 10 --trials 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from sqlalchemy.engine import make_url

from aiexport.ledger import Ledger, verify
from aiexport.ledger._entries import iso
from aiexport.rules.determination import Draw

sys.path.insert(0, str(Path(__file__).parent))
from ledger import _floor_setup, _fresh, claim_scratch

ACCOUNTS = 100
CITATION = "15 CFR 740.29"
ACTOR = "bench"
AMOUNT = 1_000_000  # 1 TPP in micro-TPP
LIMIT = 10**18

HEAD = """\\set r random(1, 1000000000000000)
\\set a random(0, {last})
"""

# One reservation as the ledger sends it: `_pgdraw.draw_one`'s call of `ledger_draw_one` (the
# tail included), then the WAL barrier unless the function committed synchronously (every
# status here is 'ok': no cap is reached).
LEDGER_SQL = """SELECT status, durable FROM ledger_draw_one('k' || :r,
  sha256(('k' || :r)::bytea), 'o' || :r, 't' || :r, '{created}', '{expires}', 0::smallint,
  'lpp/c' || :a || '/2025', {amount}, {limit}, '{citation}', {actor_id}, {first_id} + :a, {citation_id},
  chr(31) || 't' || :r || chr(31) || 'reserve' || chr(31) || 'lpp/c' || :a || '/2025'
  || chr(31) || '{amount}' || chr(31) || 'o' || :r || chr(31) || '{actor}' || chr(31)
  || '{citation}' || chr(31) || '{created}' || chr(31) || '{expires}' || chr(31) || chr(31)
  || 'k' || :r || '#0')
\\gset
\\if :durable
\\else
SELECT pg_logical_emit_message(true, 'aiexport', '');
\\endif
"""

# The floor: the same rows, raw, in one synchronously committed transaction.
FLOOR_SQL = """WITH t AS (INSERT INTO floor_txns VALUES (:r, 't' || :r, '{created}')),
  e AS (INSERT INTO floor_entries VALUES (:r, :r, 0, :a + 1, {amount}, 'o' || :r, 101, 102,
        '{expires}', NULL, 'k' || :r || '#0', substring(sha256(('p' || :r)::bytea) FROM 1 FOR 8),
        sha256(('k' || :r)::bytea))),
  h AS (INSERT INTO floor_holds VALUES (:r, 't' || :r, 'lpp/c' || :a || '/2025', {amount},
        '{expires}'))
INSERT INTO floor_requests VALUES ('k' || :r, :r, sha256(('t' || :r)::bytea), :r, :r, :r);
"""


def _pgbench() -> str:
    found = shutil.which("pgbench") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), reverse=True)), None
    )
    if not found:
        raise SystemExit("pgbench not found: install PostgreSQL's client programs")
    return found


def _libpq_url(url: str) -> str:
    """The URL without SQLAlchemy's driver name, as libpq takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _prepare(url: str, folder: Path) -> tuple[Path, Path]:
    """A fresh ledger whose names (actor, citation, the accounts) are known, the floor's tables,
    and the two pgbench scripts."""
    _fresh(url)
    now = dt.datetime.now(dt.UTC)
    with Ledger(url) as ledger:
        # The actor's and the citation's names first, then the accounts', whose ids then run
        # on from the first (the script picks an account and its id by number).
        for a, account in enumerate(["warm"] + [f"lpp/c{a}/2025" for a in range(ACCOUNTS)]):
            draw = Draw(account, Decimal(1), Decimal(LIMIT) / 10**6, CITATION)
            ledger.commit([draw], key=f"names{a}", actor=ACTOR)
        ids = ledger.db.names.ids
        first = ids["lpp/c0/2025"]
        if any(ids[f"lpp/c{a}/2025"] != first + a for a in range(ACCOUNTS)):
            raise SystemExit("the accounts' ids are not consecutive")
        values = {
            "created": iso(now),
            "expires": iso(now + dt.timedelta(hours=1)),
            "amount": AMOUNT,
            "limit": LIMIT,
            "citation": CITATION,
            "actor": ACTOR,
            "actor_id": ids[ACTOR],
            "citation_id": ids[CITATION],
            "first_id": first,
        }
    _floor_setup(url)
    head = HEAD.format(last=ACCOUNTS - 1)
    ours, floor = folder / "ledger.sql", folder / "floor.sql"
    ours.write_text(head + LEDGER_SQL.format(**values))
    floor.write_text(head + FLOOR_SQL.format(**values))
    return ours, floor


def _tps(pgbench: str, url: str, script: Path, clients: int, seconds: int) -> float:
    out = subprocess.run(
        [pgbench, "-n", "-M", "prepared", "-f", str(script), "-T", str(seconds),
         "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)), _libpq_url(url)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out.stdout)
    failed = re.search(r"number of failed transactions: ([1-9][0-9]*)", out.stdout)
    if out.returncode != 0 or not found or failed:
        raise SystemExit(f"pgbench failed on {script.name}:\n{out.stdout}\n{out.stderr}")
    return float(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pg", default=os.environ.get("AIEXPORT_TEST_PG_URL"))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=10, help="per run")
    ap.add_argument("--trials", type=int, default=3, help="runs per figure (the median)")
    ap.add_argument("--wipe", action="store_true", help="drop a ledger found at --pg")
    args = ap.parse_args()
    if not args.pg:
        raise SystemExit("pass --pg URL or set AIEXPORT_TEST_PG_URL")
    claim_scratch(args.pg, args.wipe)
    pgbench = _pgbench()
    print("load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        ours_sql, floor_sql = _prepare(args.pg, Path(tmp))
        for clients in sorted({1, args.clients}):
            floors, ours = [], []
            for _ in range(args.trials):  # interleaved, as the machine's load comes and goes
                floors.append(_tps(pgbench, args.pg, floor_sql, clients, args.seconds))
                ours.append(_tps(pgbench, args.pg, ours_sql, clients, args.seconds))
            each = [o / f for o, f in zip(ours, floors, strict=True)]
            print(
                f"postgres   {clients} client{'s' if clients > 1 else ' '}  pgbench  "
                f"reservations/s {statistics.median(ours):>7,.0f}   raw INSERT floor/s "
                f"{statistics.median(floors):>7,.0f}   ratio {statistics.median(each):.0%} "
                f"({min(each):.0%}-{max(each):.0%}, {args.trials} runs of {args.seconds} s)",
                flush=True,
            )
    with Ledger(args.pg) as ledger:
        report = verify(ledger)
    print(f"verify: {'intact' if report.ok else report.problems[:3]}, {report.entries:,} entries")
    print("load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
