"""Commands of the core: decide, screen, classify, tiers, rules."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from aiexport.cli import app
from aiexport.errors import InputError
from aiexport.io.decisions import write_records
from aiexport.io.orders import RowParser, read_orders
from aiexport.rules.countries import Countries, country_name
from aiexport.rules.decide import Engine
from aiexport.rules.determination import Determination
from aiexport.rules.items import classify, default_catalog
from aiexport.rules.quota import MemoryQuota
from aiexport.rules.ruleset import DEFAULT_RULE_SET, load_rule_set
from aiexport.screen import Summary, decide_all, summarise

console = Console()

RulesOpt = Annotated[
    str,
    typer.Option("--rules", help="Rule set name (diffusion-2025, ear-2024, …) or a YAML file."),
]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Ledger database URL (default: $AIEXPORT_DB, else ./aiexport.db)."),
]


def sample_orders_path() -> Path:
    return Path(str(resources.files("aiexport") / "data" / "sample_orders.csv"))


@app.command()
def screen(
    orders: Annotated[
        Path | None, typer.Argument(help="Orders file: .csv, .parquet or .jsonl (contract §1).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Decisions file: .jsonl, .csv or .parquet.")
    ] = None,
    db: DbOpt = None,
    rules: RulesOpt = DEFAULT_RULE_SET,
    sample: Annotated[
        bool, typer.Option("--sample", help="Screen the bundled sample orders.")
    ] = False,
    summary_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON.")
    ] = False,
    commit: Annotated[
        bool,
        typer.Option(
            "--commit",
            help="Record the quota draws in the ledger (--db) in one transaction; "
            "a re-run of the same file records nothing.",
        ),
    ] = False,
    lists: Annotated[
        list[Path] | None,
        typer.Option(
            "--lists",
            help="Restricted-party list (CSL JSON or CSV); a confident Entity List match "
            "requires a license (§ 744.11). Repeatable.",
        ),
    ] = None,
    engine_name: Annotated[
        str,
        typer.Option(
            "--engine",
            help="batch (vectorised; the default) or per-order (the reference engine, one "
            "order at a time). Both write identical decisions. Runs against the ledger "
            "(--db, --commit) and with --lists use the per-order engine.",
        ),
    ] = "batch",
) -> None:
    """Decide every order of a file, carrying quota state, and write the decisions."""
    if sample:
        orders = sample_orders_path()
    if orders is None:
        raise InputError("give an orders file (or --sample)")
    if out is None:
        out = Path("decisions.jsonl")
    if engine_name not in ("batch", "per-order"):
        raise InputError(f"--engine {engine_name!r}: choose batch or per-order")
    rule_set = load_rule_set(rules)
    if db is None and not commit:  # a dry run reads the default ledger when there is one
        from aiexport.cli.ledger import existing_default_db

        db = existing_default_db()
    if engine_name == "batch" and not (commit or db or lists):
        _screen_batch(orders, out, Engine(rule_set), summary_json)
        return
    parsed = read_orders(orders)
    engine = Engine(rule_set, party_screen=_party_screen(lists))
    show = len(parsed) >= 20_000 and console.is_terminal and not summary_json

    def run(quota: Any) -> list[Determination]:
        if show:
            with _progress() as progress:
                task = progress.add_task("deciding", total=len(parsed))
                return decide_all(
                    parsed,
                    engine,
                    quota,
                    file=str(orders),
                    progress=lambda n: progress.advance(task, n),
                )
        return decide_all(parsed, engine, quota, file=str(orders))

    if commit or db:  # against the ledger: a dry run, or recorded with --commit
        from aiexport.cli.ledger import screen_on_ledger

        dets = screen_on_ledger(db, commit, run, orders, rule_set.name)
    else:
        dets = run(MemoryQuota())
    write_records((d.to_record() for d in dets), out)
    summary = summarise(dets, rule_set.name)
    if summary_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print_summary(summary, out)


def _screen_batch(orders: Path, out: Path, engine: Engine, summary_json: bool) -> None:
    """`screen` on the batch path (`aiexport.batch`): same decisions, same summary."""
    from aiexport.batch import screen_file

    if console.is_terminal and not summary_json:
        with _progress() as progress:
            task = progress.add_task("deciding", total=None)
            _, summary = screen_file(
                orders, out, engine, progress=lambda n: progress.advance(task, n)
            )
    else:
        _, summary = screen_file(orders, out, engine)
    if summary_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print_summary(summary, out)


def _party_screen(paths: list[Path] | None) -> Any:
    """The Entity List hook of `aiexport.intel` for the given lists (None without lists)."""
    if not paths:
        return None
    from aiexport.intel import Screener, load_lists, party_screen

    loaded = load_lists(paths)
    for w in loaded.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    return party_screen(Screener(loaded))


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def print_summary(summary: Summary, out: Path | None) -> None:
    """Render a screening summary as three small tables."""
    where = f" → {out}" if out else ""
    console.print(f"[bold]{summary.orders:,} orders decided under {summary.rule_set}{where}[/]")
    t = Table("status", "orders", title="By status", title_justify="left")
    for k, v in summary.by_status.most_common():
        t.add_row(k, f"{v:,}")
    a = Table("authority", "orders", title="By authority", title_justify="left")
    for k, v in summary.by_authority.most_common():
        a.add_row(k, f"{v:,}")
    tiers = Table("tier", "orders", "TPP", "H100-eq.", title="By tier", title_justify="left")
    h100 = default_catalog().lookup("H100-SXM5").ic.tpp
    for tier in sorted(summary.by_tier):
        tpp = summary.tpp_by_tier.get(tier, Decimal(0))
        tiers.add_row(str(tier), f"{summary.by_tier[tier]:,}", f"{tpp:,.0f}", f"{tpp / h100:,.0f}")
    console.print(t, a, tiers)
    if summary.warnings:
        console.print(
            f"[yellow]{summary.warnings} warning(s): see the reasons in the decisions file[/]"
        )


@app.command()
def decide(
    item: Annotated[
        str | None, typer.Option(help="Catalog identifier (e.g. H100-SXM5, HGX-H100-8).")
    ] = None,
    quantity: Annotated[int, typer.Option(help="Number of units.")] = 1,
    to: Annotated[str, typer.Option("--to", help="Destination, ISO alpha-2.")] = "",
    date: Annotated[
        str | None, typer.Option(help="Export date YYYY-MM-DD (default today).")
    ] = None,
    consignee: Annotated[str, typer.Option(help="Consignee name or id.")] = "Consignee",
    located: Annotated[
        str | None, typer.Option("--located", help="Consignee's country if not the destination.")
    ] = None,
    hq: Annotated[
        str | None, typer.Option(help="Headquarters (or ultimate parent) country.")
    ] = None,
    end_use: Annotated[
        str,
        typer.Option(
            help="datacenter, training, inference, development, production, storage, research, resale, unknown."
        ),
    ] = "unknown",
    authorization: Annotated[
        str | None,
        typer.Option(help="LPP, AIA, ACM, ACA, NAC, LICENSE:<id>, UVEU:<id>, NVEU:<id>."),
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="ic, computer or model_weights.")
    ] = None,
    chips_per_unit: Annotated[int | None, typer.Option(help="ICs per unit.")] = None,
    tpp: Annotated[
        float | None, typer.Option("--tpp", help="TPP of one IC (overrides the catalog).")
    ] = None,
    die_area: Annotated[
        float | None, typer.Option(help="Applicable die area of one IC, mm².")
    ] = None,
    datacenter: Annotated[
        bool | None,
        typer.Option("--datacenter/--not-datacenter", help="Designed or marketed for datacenters."),
    ] = None,
    training_ops: Annotated[
        float | None, typer.Option(help="Training operations (model weights).")
    ] = None,
    open_weights: Annotated[bool, typer.Option(help="The weights are published.")] = False,
    government: Annotated[
        bool, typer.Option(help="Consignee owned or controlled by a non-U.S. government.")
    ] = False,
    used_lpp: Annotated[
        float, typer.Option(help="TPP the consignee already received under LPP this year.")
    ] = 0,
    used_allocation: Annotated[
        float, typer.Option(help="TPP already licensed to the destination's allocation.")
    ] = 0,
    db: DbOpt = None,
    rules: RulesOpt = DEFAULT_RULE_SET,
    as_json: Annotated[bool, typer.Option("--json", help="Print the contract §2 record.")] = False,
) -> None:
    """Decide one order and explain it step by step, with citations."""
    raw: dict[str, Any] = {
        "order_id": "cli-1",
        "order_date": date or dt.date.today().isoformat(),
        "exporter": "cli",
        "item": item,
        "item_kind": kind,
        "quantity": quantity,
        "chips_per_unit": chips_per_unit,
        "tpp_per_unit": tpp,
        "die_area_mm2": die_area,
        "datacenter": datacenter,
        "training_ops": training_ops,
        "open_weights": open_weights,
        "destination": to,
        "consignee_name": consignee,
        "consignee_country": located,
        "consignee_hq_country": hq,
        "consignee_government": government,
        "end_use": end_use,
        "authorization": authorization,
    }
    order = RowParser("command line").parse(raw, 1, 0)
    rule_set = load_rule_set(rules)
    quota = MemoryQuota()
    if used_lpp:
        quota.balances[f"lpp/{order.consignee}/{order.order_date.year}"] = Decimal(str(used_lpp))
    if used_allocation:
        quota.balances[f"allocation/{order.destination}"] = Decimal(str(used_allocation))
    det = Engine(rule_set).decide(order, quota)
    if as_json:
        print(json.dumps(det.to_record(), indent=2, ensure_ascii=False))
        return
    explain(det)


def explain(det: Determination) -> None:
    """Print a determination as a readable explanation."""
    colour = {
        "no_license_required": "green",
        "license_exception": "cyan",
        "license_required": "red",
    }[det.status]
    console.print(
        f"[bold {colour}]{det.status.replace('_', ' ').upper()}[/] — authority [bold]{det.authority}[/]"
        + (
            f", review policy [bold]{det.review_policy.replace('_', ' ')}[/]"
            if det.review_policy
            else ""
        )
    )
    console.print(
        f"{det.eccn} · {det.tpp_total:,} TPP ({det.h100_equivalents:,.1f} H100-eq.) · Tier {det.destination_tier} · rule set {det.rule_set}"
    )
    table = Table("#", "step", "finding", "citation", show_lines=False, expand=True)
    for n, r in enumerate(det.reasons, start=1):
        table.add_row(str(n), r.rule, r.text, r.citation)
    console.print(table)
    if det.obligations:
        console.print("[bold]Obligations:[/] " + ", ".join(det.obligations))
    for q in det.quota:
        limit = "uncapped" if q.limit_tpp is None else f"{q.limit_tpp:,}"
        console.print(
            f"[bold]Quota:[/] {q.account}: {q.used_tpp:,} of {limit} TPP"
            + (" (drawn)" if q.draws else "")
        )


@app.command("classify")
def classify_cmd(
    item: Annotated[str | None, typer.Argument(help="Catalog identifier.")] = None,
    date: Annotated[str | None, typer.Option(help="Date YYYY-MM-DD (default today).")] = None,
    rules: RulesOpt = DEFAULT_RULE_SET,
    list_items: Annotated[
        bool, typer.Option("--list", help="List every catalog item with its ECCN.")
    ] = False,
) -> None:
    """Classify a catalog item: TPP, performance density, ECCN."""
    rule_set = load_rule_set(rules)
    day = dt.date.fromisoformat(date) if date else dt.date.today()
    cat = default_catalog()
    engine = Engine(rule_set)
    regime = str(rule_set.value("controls.regime", day))
    ids = cat.identifiers() if list_items or item is None else [item]
    table = Table("item", "kind", "TPP/IC", "PD", "ICs/unit", "datacenter", "ECCN")
    for ident in ids:
        entry = cat.lookup(ident)
        spec = engine.item_spec(_order_for(entry.item_id, day))
        c = classify(spec, rule_set, day, regime)
        pd = "—" if c.performance_density is None else f"{c.performance_density:.2f}"
        table.add_row(
            entry.item_id,
            entry.kind,
            f"{c.tpp_per_ic:,}",
            pd,
            str(spec.chips_per_unit),
            "yes" if spec.datacenter else "no",
            c.eccn,
        )
        if len(ids) == 1:
            console.print(table)
            for r in c.reasons:
                console.print(f"  • {r.text} [dim]({r.citation})[/]")
            return
    console.print(table)


def _order_for(item_id: str, day: dt.date) -> Any:
    from aiexport.rules.orders import Order

    return Order(
        order_id="c",
        order_date=day,
        exporter="",
        quantity=1,
        destination="US",
        consignee_name="",
        item=item_id,
    )


@app.command()
def tiers(
    on: Annotated[str | None, typer.Option("--on", help="Date YYYY-MM-DD (default today).")] = None,
    rules: RulesOpt = DEFAULT_RULE_SET,
    all_countries: Annotated[
        bool, typer.Option("--all", help="List Tier 2 countries too.")
    ] = False,
) -> None:
    """Country tiers and the country groups behind them on a date."""
    rule_set = load_rule_set(rules)
    day = dt.date.fromisoformat(on) if on else dt.date.today()
    countries = Countries(rule_set)
    table = Table(
        "code",
        "country",
        "tier",
        "groups",
        "Supp. 5 (b)",
        "§ 740.2(a)(9)(ii)",
        title=f"Tiers on {day} ({rule_set.name})",
    )
    for st in countries.table(day):
        if st.tier == 2 and not st.groups and not all_countries:
            continue
        table.add_row(
            st.code,
            country_name(st.code),
            str(st.tier),
            " ".join(g.upper().replace("A", "A:").replace("D", "D:") for g in sorted(st.groups)),
            "yes" if st.supp5b else "",
            "restricted" if st.restricted_740_2 else "",
        )
    console.print(table)
    console.print("Tier 2 also covers every country not listed here." if not all_countries else "")


@app.command("rules")
def rules_cmd(
    rules: RulesOpt = DEFAULT_RULE_SET,
    on: Annotated[str | None, typer.Option("--on", help="Date YYYY-MM-DD (default today).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The parameters of a rule set in force on a date, with values and citations."""
    rule_set = load_rule_set(rules)
    day = dt.date.fromisoformat(on) if on else dt.date.today()
    rows = rule_set.in_force(day)
    if as_json:
        print(
            json.dumps(
                [
                    {"name": p.name, "value": _jsonable(v), "unit": p.unit, "citation": c}
                    for p, v, c in rows
                ],
                indent=2,
            )
        )
        return
    table = Table(
        "parameter", "value", "citation", title=f"{rule_set.name} on {day}: {rule_set.description}"
    )
    for p, v, c in rows:
        table.add_row(p.name, _show(v), c)
    console.print(table)


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, frozenset):
        return sorted(v)
    return v


def _show(v: Any) -> str:
    if isinstance(v, Decimal):
        return f"{v:,}" if v == v.to_integral_value() else str(v)
    if isinstance(v, frozenset):
        return ", ".join(sorted(v)) or "(none)"
    if isinstance(v, dict):
        return ", ".join(f"{k}→{x}" for k, x in v.items())
    return str(v)
