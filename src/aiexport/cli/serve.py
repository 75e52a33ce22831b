"""Commands of the service: serve, keys, demo."""

from __future__ import annotations

import getpass
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
) -> None:
    """Serve the REST API (OpenAPI at /docs) and the dashboard."""
    import uvicorn

    from aiexport.api import create_app

    api = create_app(db, rule_set=rules)
    console.print(f"aiexport serving on [bold]http://{host}:{port}/[/] (API docs at /docs)")
    uvicorn.run(api, host=host, port=port, log_level="warning")


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
