"""Commands of the service: serve, keys, demo."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aiexport.cli import app
from aiexport.rules.ruleset import DEFAULT_RULE_SET

console = Console()
keys_app = typer.Typer(
    help="Create, list and revoke API keys (stored hashed in the ledger's database).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Ledger database URL (default: $AIEXPORT_DB, else ./aiexport.db)."),
]


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


@app.command()
def serve(
    db: DbOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    rules: Annotated[
        str, typer.Option("--rules", help="Default rule set for decisions.")
    ] = DEFAULT_RULE_SET,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes sharing the port (each its own app over the same database).",
        ),
    ] = 1,
) -> None:
    """Serve the REST API (OpenAPI at /docs) and the dashboard."""
    import uvicorn

    from aiexport.api import create_app
    from aiexport.api.app import ENV_RULES, app_from_env
    from aiexport.ledger import ENV_DB, default_db_url

    url = db or default_db_url()
    api = create_app(url, rule_set=rules)  # migrate and check the rule set before listening
    console.print(f"aiexport serving on [bold]http://{host}:{port}/[/] (API docs at /docs)")
    if workers == 1:
        uvicorn.run(api, host=host, port=port, log_level="warning")
        return
    api.state.jobs.shutdown()
    api.state.services.close()
    os.environ[ENV_DB] = url
    os.environ[ENV_RULES] = rules
    target = f"{app_from_env.__module__}:{app_from_env.__name__}"
    uvicorn.run(target, factory=True, workers=workers, host=host, port=port, log_level="warning")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="exporter, analyst or admin.")],
    name: Annotated[str, typer.Option(help="Who holds the key (a person or a system).")],
    exporter: Annotated[
        str | None,
        typer.Option(
            help="For an exporter key: the exporting company it acts for (default: NAME)."
        ),
    ] = None,
    db: DbOpt = None,
) -> None:
    """Create an API key and print it on the last line (it is shown only once)."""
    from aiexport.api import store
    from aiexport.api.auth import create_key
    from aiexport.ledger import Ledger

    with Ledger(db) as ledger:
        store.migrate(ledger)
        new = create_key(ledger, role=role, name=name, exporter=exporter, created_by=_cli_actor())
    p = new.principal
    tenant = f" for exporter {p.exporter!r}" if p.exporter else ""
    typer.echo(
        f"created {p.role} key {p.key_id} ({p.name}){tenant}; keep it secret, it is not shown again:"
    )
    typer.echo(new.key)


@keys_app.command("list")
def keys_list(db: DbOpt = None) -> None:
    """List keys (never their secrets)."""
    from aiexport.api import store
    from aiexport.api.auth import list_keys
    from aiexport.ledger import Ledger

    with Ledger(db) as ledger:
        store.migrate(ledger)
        rows = list_keys(ledger)
    table = Table("key id", "name", "role", "exporter", "created", "revoked")
    for r in rows:
        table.add_row(
            r["key_id"],
            r["name"],
            r["role"],
            r["exporter"] or "",
            r["created_at"],
            r["revoked_at"] or "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (see `aiexport keys list`).")],
    db: DbOpt = None,
) -> None:
    """Revoke a key: requests with it fail from now on."""
    from aiexport.api import store
    from aiexport.api.auth import revoke_key
    from aiexport.ledger import Ledger

    with Ledger(db) as ledger:
        store.migrate(ledger)
        revoke_key(ledger, key_id, actor=_cli_actor(), role="admin")
    typer.echo(f"revoked {key_id}")


@app.command()
def demo(
    out: Annotated[
        Path,
        typer.Option("--dir", help="Folder for the demo's world and ledger (rebuilt each run)."),
    ] = Path("aiexport-demo"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    orders: Annotated[int, typer.Option(help="Order lines in the world.")] = 4000,
    seed: Annotated[
        int, typer.Option(help="Seed of the world (2025 is the bundled sample world).")
    ] = 2025,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Build everything, print the keys, then exit.")
    ] = False,
) -> None:
    """Build the bundled world, screen it into a fresh ledger, investigate it, run the three
    shipped scenarios, and serve the dashboard with all of it, printing the address."""
    import time

    from aiexport.api import create_app, job_kinds
    from aiexport.api.auth import create_key
    from aiexport.api.services import decide_batch
    from aiexport.io.orders import iter_raw_rows
    from aiexport.world import generate_world

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    world = out / "world"
    db = out / "aiexport.db"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    console.print(f"1/5 building the world: {orders:,} orders, seed {seed} → {world}")
    generate_world(world, seed=seed, orders=orders)
    job_kinds.WORLDS["demo"] = world
    api = create_app(f"sqlite:///{db}")
    svc, runner = api.state.services, api.state.jobs
    admin = create_key(svc.ledger, role="admin", name="demo-admin", created_by=_cli_actor())
    analyst = create_key(svc.ledger, role="analyst", name="demo-analyst", created_by=_cli_actor())
    console.print(
        "2/5 screening every order into a fresh ledger (decided in date order, quotas drawn)"
    )
    raws = [
        {k: v for k, v in row.items() if v not in (None, "")}
        for _, row in iter_raw_rows(world / "orders.csv")
    ]
    decided, summary = decide_batch(svc, admin.principal, raws, commit=True)
    console.print(f"    {len(decided):,} decisions recorded: {summary['by_authority']}")
    console.print("3/5 investigating the recorded orders")
    inv = runner.submit("investigation", {}, admin.principal, wait=True)
    console.print("4/5 running the shipped scenarios: diffusion-2025, ear-2024, refinements-2025")
    sim = runner.submit("simulation", {"world": "demo"}, admin.principal, wait=True)
    from aiexport.api.jobs import get_job

    for job_id in (inv, sim):
        row = get_job(svc.ledger, job_id)
        if row.status != "done":
            console.print(f"[yellow]    {row.kind} {job_id} {row.status}: {row.error}[/]")
    exporter = str(raws[0]["exporter"])  # the first order's (a set's pick follows the hash seed)
    ex = create_key(
        svc.ledger,
        role="exporter",
        name="demo-exporter",
        exporter=exporter,
        created_by=_cli_actor(),
    )
    console.print(f"5/5 ready in {time.perf_counter() - t0:.0f} s")
    url = f"http://{host}:{port}/"
    typer.echo(f"analyst key:  {analyst.key}")
    typer.echo(f"exporter key: {ex.key}  (acts for {exporter})")
    typer.echo(f"admin key:    {admin.key}")
    if no_serve:
        typer.echo(f"ledger: {db}")
        return
    import uvicorn

    typer.echo(
        f"Dashboard: {url}  (sign in with the analyst key; API docs at {url}docs; Ctrl-C stops)"
    )
    uvicorn.run(api, host=host, port=port, log_level="warning")
