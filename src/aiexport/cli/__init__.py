"""The `aiexport` command line: thin commands over the library, one module per area."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from aiexport.errors import AiexportError, InputError

app = typer.Typer(
    name="aiexport",
    help=(
        "The U.S. Framework for AI Diffusion as working software: decide export orders of AI chips "
        "and model weights with citations, keep TPP quotas, find evasion, simulate policy."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)

# Each module registers its commands on `app` when imported.
from aiexport.cli import core  # noqa: E402,F401
from aiexport.cli import intel as _intel  # noqa: E402,F401
from aiexport.cli import ledger as _ledger  # noqa: E402,F401
from aiexport.cli import serve as _serve  # noqa: E402,F401
from aiexport.cli import simulate as _simulate  # noqa: E402,F401
from aiexport.cli import world as _world  # noqa: E402,F401


def main() -> None:
    """Console entry point: run the app, turning aiexport errors into clear messages."""
    try:
        app()
    except AiexportError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        sys.exit(2 if isinstance(exc, InputError) or exc.status == 422 else 1)
