"""Commands of the quota ledger: `ledger balance|history|verify|export|serve`, `license
add|list`, `veu add|list`, and the ledger side of `screen --commit`.

Each command parses, calls one `aiexport.ledger` function and prints. `--db` defaults to
`$AIEXPORT_DB`, else `aiexport.db` in the working directory; a PostgreSQL URL works the same way.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aiexport.cli import app
from aiexport.errors import InputError, LedgerIntegrityError, NotFound, ParameterNotFound
from aiexport.rules.determination import Determination
from aiexport.rules.quota import LicenseInfo, QuotaView, VeuInfo
from aiexport.rules.ruleset import DEFAULT_RULE_SET, load_rule_set

if TYPE_CHECKING:
    from aiexport.ledger import Ledger

console = Console()
err = Console(stderr=True)

ledger_app = typer.Typer(
    help="The quota ledger: balances, history, hash-chain verification, export.",
    no_args_is_help=True,
)
license_app = typer.Typer(
    help="Individual licenses granted by BIS, registered so that orders can cite them.",
    no_args_is_help=True,
)
veu_app = typer.Typer(
    help="Data Center Validated End-User authorizations (UVEU, NVEU; 15 CFR 748.15).",
    no_args_is_help=True,
)
app.add_typer(ledger_app, name="ledger")
app.add_typer(license_app, name="license")
app.add_typer(veu_app, name="veu")

DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Ledger database URL (default: $AIEXPORT_DB, else ./aiexport.db)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ActorOpt = Annotated[
    str | None,
    typer.Option("--actor", help="Who records this (default: $AIEXPORT_ACTOR, else the user)."),
]


def open_ledger(db: str | None) -> Ledger:
    from aiexport.ledger import Ledger, default_db_url

    return Ledger(db or default_db_url())


def existing_default_db() -> str | None:
    """The default ledger (`$AIEXPORT_DB`, else `./aiexport.db`) if it exists, else None.

    A dry run (`screen` without `--commit` or `--db`) decides against the default ledger's
    current state, but must not create one: a SQLite file that is not there means an empty
    ledger, which the in-memory quota state already is. A server URL is taken to exist.
    """
    from sqlalchemy.engine import make_url

    from aiexport.ledger import default_db_url

    url = default_db_url()
    if "://" not in url:
        return url if Path(url).is_file() else None
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url
    path = parsed.database
    return url if path and path != ":memory:" and Path(path).is_file() else None


def actor_name(actor: str | None) -> str:
    return actor or os.environ.get("AIEXPORT_ACTOR") or getpass.getuser()


def _date(text: str | None, name: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{name} must be a date YYYY-MM-DD, not {text!r}") from None


def _tpp(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise InputError(f"TPP must be a number, not {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise InputError(f"TPP must be a positive number, not {text!r}")
    return value


# -- ledger ------------------------------------------------------------------------------------


@ledger_app.command("balance")
def balance(
    account: Annotated[
        str | None, typer.Argument(help="An account, or a prefix ending in '/' (default: all).")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what each account has committed, holds, and has left under its limit."""
    with open_ledger(db) as ledger:
        if account and not account.endswith("/"):
            rows = [ledger.balance(account)]
        else:
            rows = ledger.balances(prefix=account)
    if as_json:
        print(json.dumps([b.to_record() for b in rows], indent=2))
        return
    t = Table("account", "committed", "reserved", "limit", "remaining", "citation")
    for b in rows:
        t.add_row(
            b.account,
            f"{b.committed:,}",
            f"{b.reserved:,}",
            "—" if b.limit is None else f"{b.limit:,}",
            "—" if b.remaining is None else f"{b.remaining:,}",
            b.citation or "",
        )
    console.print(t)


@ledger_app.command("history")
def history(
    account: Annotated[str, typer.Argument(help="The account, e.g. lpp/<consignee>/2025.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List every entry of one account, oldest first."""
    with open_ledger(db) as ledger:
        entries = ledger.history(account)
    if not entries:
        raise NotFound(f"no entries for account {account!r}; see `aiexport ledger balance`")
    if as_json:
        print(json.dumps([e.to_record() for e in entries], indent=2))
        return
    t = Table("#", "time (UTC)", "kind", "TPP", "order", "actor", "citation")
    for e in entries:
        t.add_row(
            str(e.seq),
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.kind,
            f"{e.amount:,}",
            e.order_id or "",
            e.actor,
            e.citation,
        )
    console.print(t)


@ledger_app.command("verify")
def verify_cmd(
    db: DbOpt = None,
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            help="SEQ:HASH printed by an earlier verify; the chain must still hold it.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the hash chain and that balances equal the sum of entries; exit 1 on any problem."""
    anchor = None
    if expect_head:
        seq, _, digest = expect_head.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise InputError("--expect-head must look like SEQ:HASH (64 hex digits)")
        anchor = (int(seq), digest)
    from aiexport.ledger import verify

    with open_ledger(db) as ledger:
        report = verify(ledger, anchor)
    if as_json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "entries": report.entries,
                    "head": f"{report.head_seq}:{report.head_hash}",
                    "problems": [
                        {"kind": p.kind, "seq": p.seq, "message": p.message}
                        for p in report.problems
                    ],
                },
                indent=2,
            )
        )
    if not report.ok:
        first = report.problems[0]
        raise LedgerIntegrityError(
            f"ledger does not verify: {first.message}"
            + (f" (+{len(report.problems) - 1} more)" if len(report.problems) > 1 else "")
            + "; restore from a backup or investigate the entries named"
        )
    if not as_json:
        console.print(
            f"[green]ok[/]: {report.entries:,} entries, chain intact, balances match. "
            f"Head {report.head_seq}:{report.head_hash}"
        )


@ledger_app.command("serve")
def serve_cmd(
    db: DbOpt = None,
    socket_path: Annotated[
        Path | None,
        typer.Option(
            "--socket",
            help="Unix socket to listen on (default: $AIEXPORT_LEDGER_SOCKET, else one named "
            "after the database in a private directory of this user's).",
        ),
    ] = None,
    idle_exit: Annotated[
        float | None,
        typer.Option(
            "--idle-exit",
            min=0.0,
            help="Stop once no request has come for this many seconds (default: run until "
            "interrupted).",
        ),
    ] = None,
    lock_fd: Annotated[
        int | None,
        typer.Option(
            "--lock-fd", hidden=True, help="The socket's lock, taken by the client starting this."
        ),
    ] = None,
) -> None:
    """PostgreSQL: the sequencer. Client processes on this machine send it their one-draw
    reservations and commitments, and it records each batch of concurrent ones in one
    transaction (group commit). Clients find it by themselves; without it they write directly,
    and start one when they find each other writing at the same time
    (AIEXPORT_LEDGER_AUTOSERVE=0: never). One serves each socket. Runs until interrupted (Ctrl-C,
    SIGTERM), or until --idle-exit seconds pass with no request."""
    import signal

    from aiexport.ledger import Ledger, default_db_url
    from aiexport.ledger._db import Database
    from aiexport.ledger._sequencer import Sequencer

    url = db or default_db_url()
    # Refuses SQLite before opening anything.
    seq = Sequencer(Database(url), socket_path, idle_exit=idle_exit, lock_fd=lock_fd)
    Ledger(url).close()  # brings the schema up to date

    def stop(signum: int, frame: object) -> None:
        seq.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        seq.serve(
            ready=lambda: err.print(
                f"sequencer for {seq.db.engine.url.render_as_string()} on {seq.path}",
                soft_wrap=True,
            )
        )
    finally:
        seq.db.dispose()
    err.print(seq.summary(), soft_wrap=True)


@ledger_app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="Parquet file to write.")],
    db: DbOpt = None,
) -> None:
    """Write every entry, in chain order, to a Parquet file (exact decimal amounts)."""
    from aiexport.ledger import export_parquet

    with open_ledger(db) as ledger:
        n = export_parquet(ledger, out)
    err.print(f"{n:,} entries → {out}")


@ledger_app.command("attrition")
def attrition(
    account: Annotated[str, typer.Argument(help="The account the chips counted against.")],
    tpp: Annotated[str, typer.Argument(help="TPP of the chips that stop counting.")],
    reason: Annotated[
        str, typer.Option("--reason", help="What happened: lost, damaged, failed, resold…")
    ],
    key: Annotated[
        str | None, typer.Option("--key", help="Idempotency key (default: derived from inputs).")
    ] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Record chips lost, damaged, failed, relocated or resold: they stop counting."""
    amount = _tpp(tpp)
    key = key or f"attrition:{account}:{amount}:{reason}"
    with open_ledger(db) as ledger:
        r = ledger.attrition(account, amount, key=key, actor=actor_name(actor), citation=reason)
    console.print(f"{account}: {amount:,} TPP no longer counts (entry {r.seqs[0]})")


@ledger_app.command("adjust")
def adjust(
    account: Annotated[str, typer.Argument(help="The account to correct.")],
    tpp: Annotated[str, typer.Option("--tpp", help="Signed TPP to add, e.g. --tpp -5.")],
    reason: Annotated[str, typer.Option("--reason", help="Why: the audit finding or ticket.")],
    key: Annotated[str, typer.Option("--key", help="Idempotency key for this correction.")],
    db: DbOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Record a signed correction; the original entries stay as they were."""
    try:
        amount = Decimal(tpp)
    except InvalidOperation:
        raise InputError(f"TPP must be a number, not {tpp!r}") from None
    with open_ledger(db) as ledger:
        r = ledger.adjust(account, amount, key=key, actor=actor_name(actor), citation=reason)
    again = " (replayed: nothing changed)" if r.replayed else ""
    console.print(f"{account}: adjusted by {amount:,} TPP{again}")


# -- licenses ----------------------------------------------------------------------------------


@license_app.command("add")
def license_add(
    license_id: Annotated[str, typer.Argument(help="The license number BIS issued.")],
    destination: Annotated[str, typer.Option("--destination", help="ISO alpha-2 country.")],
    tpp: Annotated[str, typer.Option("--tpp", help="Total TPP the license authorizes.")],
    consignee: Annotated[
        str | None, typer.Option("--consignee", help="Consignee id the license names.")
    ] = None,
    valid_from: Annotated[
        str | None, typer.Option("--valid-from", help="YYYY-MM-DD (default: today).")
    ] = None,
    valid_until: Annotated[
        str | None, typer.Option("--valid-until", help="YYYY-MM-DD (default: one year).")
    ] = None,
    uncapped: Annotated[
        bool,
        typer.Option(
            "--uncapped",
            help="Count it without the allocation cap (e.g. a § 742.6(b)(10)(iii)(A)(2) license "
            "to a Tier-1-headquartered consignee).",
        ),
    ] = False,
    rules: Annotated[str, typer.Option("--rules", help="Rule set for the allocation.")] = (
        DEFAULT_RULE_SET
    ),
    db: DbOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Register a granted license; its TPP counts against the destination's country allocation."""
    start = _date(valid_from, "--valid-from") or dt.date.today()
    from aiexport.ledger import default_valid_until

    until = _date(valid_until, "--valid-until") or default_valid_until(start)
    info = LicenseInfo(license_id, destination.upper(), consignee, _tpp(tpp), start, until)
    country, limit, citation, counts = allocation_for(info.destination, start, rules)
    with open_ledger(db) as ledger:
        receipt = ledger.add_license(
            info,
            actor=actor_name(actor),
            allocation_limit=None if uncapped else limit,
            citation=citation,
            allocation_country=country,
            counts=counts,
        )
    what = f"counts against allocation/{country}" if counts else "no country allocation applies"
    again = " (already registered: nothing changed)" if receipt.replayed else ""
    console.print(f"license {license_id}: {info.tpp:,} TPP, {start} to {until}; {what}{again}")


def allocation_for(destination: str, day: dt.date, rules: str) -> tuple[str, Decimal, str, bool]:
    """The allocation a license to `destination` counts against: country, limit, citation, counts.

    Asks `aiexport.rules.allocation.license_allocation`; from 2028 the rule sets no allocation,
    and the license then counts against none.
    """
    from aiexport.rules.allocation import license_allocation

    try:
        alloc = license_allocation(destination, day, load_rule_set(rules))
    except ParameterNotFound:
        return destination, Decimal(0), "", False
    if alloc is None:
        return destination, Decimal(0), "", False
    return alloc.country, alloc.limit_tpp, alloc.citation, True


@license_app.command("list")
def license_list(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List registered licenses."""
    with open_ledger(db) as ledger:
        rows = ledger.licenses()
    if as_json:
        print(json.dumps([i.to_record() for i in rows], indent=2))
        return
    t = Table("license", "destination", "consignee", "TPP", "valid from", "valid until")
    for i in rows:
        t.add_row(
            i.license_id,
            i.destination,
            i.consignee or "",
            f"{i.tpp:,}",
            str(i.valid_from),
            str(i.valid_until),
        )
    console.print(t)


# -- VEUs --------------------------------------------------------------------------------------


@veu_app.command("add")
def veu_add(
    veu_id: Annotated[str, typer.Argument(help="Authorization id.")],
    kind: Annotated[str, typer.Option("--kind", help="UVEU or NVEU.")],
    holder: Annotated[str, typer.Option("--holder", help="Holder's consignee id.")],
    hq: Annotated[str, typer.Option("--hq", help="Holder's headquarters country (alpha-2).")],
    country: Annotated[
        list[str],
        typer.Option("--country", help="Country where its data centers may be; repeat for more."),
    ],
    valid_from: Annotated[
        str | None, typer.Option("--valid-from", help="YYYY-MM-DD (default: today).")
    ] = None,
    valid_until: Annotated[
        str | None, typer.Option("--valid-until", help="YYYY-MM-DD (default: open-ended).")
    ] = None,
    holder_name: Annotated[str | None, typer.Option("--holder-name")] = None,
    db: DbOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Register a UVEU or NVEU so orders shipped under it are decided and drawn correctly."""
    kind = kind.upper()
    if kind not in ("UVEU", "NVEU"):
        raise InputError(f"--kind must be UVEU or NVEU, not {kind!r}")
    info = VeuInfo(
        veu_id=veu_id,
        kind=kind,  # type: ignore[arg-type]
        holder=holder,
        hq_country=hq.upper(),
        countries=frozenset(c.upper() for c in country),
        valid_from=_date(valid_from, "--valid-from") or dt.date.today(),
        valid_until=_date(valid_until, "--valid-until"),
        holder_name=holder_name,
    )
    with open_ledger(db) as ledger:
        created = ledger.add_veu(info, actor=actor_name(actor))
    note = "" if created else " (already registered: nothing changed)"
    console.print(f"{kind} {veu_id} for {holder}: {', '.join(sorted(info.countries))}{note}")


@veu_app.command("list")
def veu_list(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """List registered VEU authorizations."""
    with open_ledger(db) as ledger:
        rows = ledger.veus()
    if as_json:
        print(json.dumps([v.to_record() for v in rows], indent=2))
        return
    t = Table("VEU", "kind", "holder", "HQ", "countries", "valid from", "valid until")
    for v in rows:
        t.add_row(
            v.veu_id,
            v.kind,
            v.holder_name or v.holder,
            v.hq_country,
            ", ".join(sorted(v.countries)),
            str(v.valid_from),
            str(v.valid_until or "—"),
        )
    console.print(t)


# -- screen --commit ---------------------------------------------------------------------------


def screen_key(orders: Path, rule_set: str) -> str:
    """The idempotency key of a screening run: the file's bytes and the rule set."""
    h = hashlib.sha256()
    with open(orders, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"screen:{h.hexdigest()}:{rule_set}"


def screen_on_ledger(
    db: str | None,
    commit: bool,
    decide: Callable[[Any], Sequence[Determination]],
    orders: Path,
    rule_set: str,
    actor: str | None = None,
) -> list[Determination]:
    """Decide against the ledger; with `commit`, record the whole file's draws atomically.

    `decide(view)` is the screen's own loop (`aiexport.screen.decide_all`); `view` carries the
    draws of earlier orders in the file via `apply`. Without `commit` it is a dry run against
    the current state; with it, the decisions are made under the ledger's write lock and all
    draws are recorded in one transaction, once per (file, rule set).
    """
    from aiexport.ledger import LiveView, commit_screen

    with open_ledger(db) as ledger:
        if not commit:
            return list(decide(LiveView(ledger)))
        out: list[Determination] = []

        def run(view: QuotaView) -> list[tuple[str, Sequence[Any]]]:
            out[:] = decide(view)
            return [(d.order_id, d.draws) for d in out]

        result = commit_screen(
            ledger, run, actor=actor_name(actor), key=screen_key(orders, rule_set)
        )
    if result.replayed:
        err.print(f"already recorded: this file was committed before ({result.entries} entries)")
    else:
        err.print(f"recorded {result.entries} ledger entries for {result.orders} orders")
    return out
