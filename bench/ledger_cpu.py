"""Where the CPU of a PostgreSQL reservation goes: per process group, with many clients.

`bench/ledger.py` says how fast; this says what each reservation costs the machine, so that a
change can be judged by the work it saves and not only by a rate the shared machine's load
moves. For N client processes (`--clients`, 8) making `--n` reservations in all, exactly as
`bench/ledger.py` makes them, in three modes:

- `floor`: the issue's floor, raw INSERTs of a reservation's rows (`_rows_floor_worker`);
- `direct`: `Ledger.reserve` with no sequencer (`AIEXPORT_LEDGER_AUTOSERVE=0`: none started by
  the clients);
- `sequencer`: `Ledger.reserve` through `aiexport ledger serve`;

it prints reservations/s and the CPU time per reservation, user plus system, of the clients,
of the sequencer, of PostgreSQL (every process of the server, exited backends included), and
of the whole machine, with how busy the machine was (of all its cores). The clock and the
counters start once every client is set up, as in `bench/ledger.py`.

It reads `/proc`, so it runs on Linux with the PostgreSQL server on the same machine. Like
`bench/ledger.py`, it drops and recreates the ledger's tables at `--pg`.

    .venv/bin/python bench/ledger_cpu.py --pg postgresql+psycopg://postgres:postgres@127.0.0.1/db
    .venv/bin/python bench/ledger_cpu.py --modes sequencer --n 16000 --trials 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from aiexport.ledger import Ledger

sys.path.insert(0, str(Path(__file__).parent))
from ledger import (
    _floor_setup,
    _fresh,
    _ledger_worker,
    _no_autoserve,
    _rows_floor_worker,
    _sequencer,
    claim_scratch,
    started,
)

TICK = os.sysconf("SC_CLK_TCK")
MODES = ("floor", "direct", "sequencer")


def _cpu(pid: int) -> int:
    """Clock ticks of CPU `pid` and its waited-for children have used (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(fields[k]) for k in (11, 12, 13, 14))  # utime stime cutime cstime


def _postgres() -> dict[int, int]:
    """Every PostgreSQL server process, with its ticks."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/comm") as f:
                    if f.read().strip() == "postgres":
                        out[int(name)] = _cpu(int(name))
            except OSError:
                continue
    return out


def _machine() -> tuple[int, int]:
    """Busy and total ticks of all cores."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)  # idle and iowait are not busy


def run(mode: str, url: str, n: int, clients: int) -> str:
    """One measurement of `mode`: its line of figures."""
    _fresh(url)
    if mode == "floor":
        _floor_setup(url)
    else:
        Ledger(url).close()
    target = _rows_floor_worker if mode == "floor" else _ledger_worker
    with _sequencer(url) if mode == "sequencer" else _no_autoserve() as seq:
        procs, per = started(target, url, clients, n)
        server, sequencer = _postgres(), _cpu(seq.pid) if seq else 0
        mine = {p.pid: _cpu(p.pid) for p in procs if p.pid}
        last = dict(mine)
        busy0, total0 = _machine()
        start = time.perf_counter()
        while any(p.is_alive() for p in procs):  # a client's ticks, read just before it exits
            for pid in last:
                last[pid] = _cpu(pid) or last[pid]
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        busy1, total1 = _machine()
        server_after = _postgres()
        sequencer = (_cpu(seq.pid) if seq else 0) - sequencer
    for p in procs:
        if p.exitcode != 0:
            raise SystemExit(f"a {mode} client failed")
    done = per * clients

    def us(ticks: int) -> str:
        return f"{ticks / TICK * 1e6 / done:5.0f}"

    pg = sum(t - server.get(pid, 0) for pid, t in server_after.items())
    return (
        f"{mode:<10} {done / elapsed:7,.0f} reservations/s   CPU µs per reservation: clients "
        f"{us(sum(last[p] - mine[p] for p in mine))}, sequencer {us(sequencer)}, PostgreSQL "
        f"{us(pg)}, machine {us(busy1 - busy0)}   (machine {(busy1 - busy0) / (total1 - total0):.0%}"
        f" busy)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pg", default=os.environ.get("AIEXPORT_TEST_PG_URL"))
    ap.add_argument("--n", type=int, default=8000, help="reservations per measurement")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--trials", type=int, default=2, help="rounds of the modes, interleaved")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    ap.add_argument("--wipe", action="store_true", help="drop a ledger found at --pg")
    args = ap.parse_args()
    if not args.pg:
        raise SystemExit("pass --pg URL or set AIEXPORT_TEST_PG_URL")
    modes = args.modes.split(",")
    if unknown := set(modes) - set(MODES):
        raise SystemExit(f"unknown mode(s): {', '.join(sorted(unknown))}")
    claim_scratch(args.pg, args.wipe)
    print("load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    for _ in range(args.trials):
        for mode in modes:
            print(run(mode, args.pg, args.n, args.clients), flush=True)
    print("load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
