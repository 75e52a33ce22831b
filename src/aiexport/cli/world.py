"""`aiexport world`: write a synthetic world of AI-chip trade with planted evasion."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from aiexport.cli import app
from aiexport.errors import InputError

console = Console(stderr=True)


@app.command("world")
def world(
    out: Annotated[Path, typer.Option("--out", help="Directory to write into (created).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same bytes.")] = 0,
    orders: Annotated[int, typer.Option("--orders", min=1, help="Order lines to write.")] = 10_000,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1000, help="Lines held in memory at once.")
    ] = 250_000,
    plant: Annotated[
        list[str] | None,
        typer.Option(
            "--plant",
            help=(
                "KIND=N: plant N schemes or look-alikes of KIND instead of the default for the "
                "world's size (repeatable; e.g. --plant structuring=20 --plant surge=0)."
            ),
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Write DIR/orders.csv, DIR/orders.parquet (contract §1) and DIR/truth.json (what was planted)."""
    from aiexport.world import default_counts, generate_world

    schemes, lookalikes = default_counts(orders)
    for spec in plant or []:
        kind, _, n = spec.partition("=")
        if (kind not in schemes and kind not in lookalikes) or not n.isdigit():
            raise InputError(
                f"--plant {spec!r}: expected KIND=N with KIND one of "
                f"{', '.join([*schemes, *lookalikes])}"
            )
        (schemes if kind in schemes else lookalikes)[kind] = int(n)
    with Progress(
        TextColumn("generating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("world", total=orders)
        summary = generate_world(
            out,
            seed=seed,
            orders=orders,
            chunk_size=chunk_size,
            schemes=schemes,
            lookalikes=lookalikes,
            progress=lambda done, _total: bar.update(task, completed=done),
        )
    rate = summary.orders / summary.seconds if summary.seconds else 0.0
    console.print(
        f"wrote {summary.orders:,} orders ({summary.scheme_orders:,} in {summary.schemes} planted "
        f"schemes), {summary.consignees:,} consignees to {summary.out_dir} "
        f"in {summary.seconds:.1f} s ({rate:,.0f} orders/s)",
        highlight=False,
    )
