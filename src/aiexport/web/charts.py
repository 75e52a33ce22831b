"""Plotly figures for the dashboard, rendered as HTML fragments.

The pages load plotly.js from this server (`/static/plotly.min.js`, the copy bundled in the
`plotly` package), so fragments never include the library or anything from the network.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import networkx as nx
import plotly.graph_objects as go

TIER_COLOURS = {1: "#2b8a3e", 2: "#e67700", 3: "#c92a2a"}
_CONFIG = {"displaylogo": False, "responsive": True}
_LAYOUT: dict[str, Any] = {
    "margin": {"l": 40, "r": 20, "t": 40, "b": 40},
    "template": "plotly_white",
    "font": {"size": 12},
}


def html(fig: go.Figure, *, height: int = 380, div_id: str | None = None) -> str:
    fig.update_layout(height=height, **_LAYOUT)
    out: str = fig.to_html(full_html=False, include_plotlyjs=False, config=_CONFIG, div_id=div_id)
    return out


def tiers_treemap(countries: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Countries grouped by tier."""
    ids, labels, parents, colours = [], [], [], []
    for tier in (1, 2, 3):
        members = [c for c in countries if c["tier"] == tier]
        ids.append(f"tier{tier}")
        labels.append(f"Tier {tier} ({len(members)})")
        parents.append("")
        colours.append(TIER_COLOURS[tier])
        for c in members:
            ids.append(f"tier{tier}/{c['code']}")
            labels.append(f"{c['code']}")
            parents.append(f"tier{tier}")
            colours.append(TIER_COLOURS[tier])
    fig = go.Figure(
        go.Treemap(
            ids=ids,
            labels=labels,
            parents=parents,
            marker={"colors": colours},
            hovertext=[""] * 3
            + [c["name"] for t in (1, 2, 3) for c in countries if c["tier"] == t],
            branchvalues="remainder",
        )
    )
    fig.update_layout(title="Countries by tier")
    return fig


def allocation_gauges(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """One gauge per country allocation: TPP licensed against its cap."""
    fig = go.Figure()
    n = max(len(rows), 1)
    for i, r in enumerate(rows):
        limit = r["limit"] or max(r["used"], 1.0)
        fig.add_trace(
            go.Indicator(
                mode="gauge+number",
                value=r["used"] / 1e6,
                number={"suffix": "M TPP", "valueformat": ",.1f"},
                title={"text": r["country"]},
                gauge={
                    "axis": {"range": [0, limit / 1e6]},
                    "bar": {"color": "#1c7ed6"},
                    "threshold": {"line": {"color": "#c92a2a", "width": 3}, "value": limit / 1e6},
                },
                domain={"row": 0, "column": i},
            )
        )
    fig.update_layout(
        grid={"rows": 1, "columns": n}, title="Country allocations used (M TPP of cap)"
    )
    return fig


def tpp_by_tier(rows: Iterable[tuple[str, int, float]]) -> go.Figure:
    """Monthly TPP of recorded orders, stacked by tier."""
    series: dict[int, dict[str, float]] = defaultdict(dict)
    months: set[str] = set()
    for month, tier, tpp in rows:
        series[tier][month] = tpp
        months.add(month)
    xs = sorted(months)
    fig = go.Figure()
    for tier in sorted(series):
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[series[tier].get(m, 0.0) / 1e6 for m in xs],
                name=f"Tier {tier}",
                stackgroup="tpp",
                line={"color": TIER_COLOURS.get(tier, "#868e96")},
            )
        )
    fig.update_layout(
        title="TPP of recorded orders by tier (millions, per month)", yaxis_title="M TPP"
    )
    return fig


def quota_bars(rows: Sequence[Mapping[str, Any]], title: str) -> go.Figure:
    labels = [r["label"] for r in rows]
    fig = go.Figure(
        [
            go.Bar(
                y=labels,
                x=[r["used"] / 1e6 for r in rows],
                orientation="h",
                name="used",
                marker_color="#1c7ed6",
            ),
            go.Bar(
                y=labels,
                x=[max((r["limit"] or 0) - r["used"], 0) / 1e6 for r in rows],
                orientation="h",
                name="remaining",
                marker_color="#dee2e6",
            ),
        ]
    )
    fig.update_layout(
        barmode="stack", title=title, xaxis_title="M TPP", yaxis={"autorange": "reversed"}
    )
    return fig


def party_network(orders: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Consignees linked by the identifiers, payers and forwarders they share."""
    g = nx.Graph()
    for o in orders:
        party = o.get("consignee_id") or f"{o.get('consignee_name')}@{o.get('destination')}"
        g.add_node(party, kind="consignee", label=str(o.get("consignee_name") or party))
        for field in (
            "consignee_phone",
            "consignee_email",
            "consignee_address",
            "consignee_registration",
            "consignee_website",
        ):
            v = o.get(field)
            if v:
                node = f"{field}:{v}"
                g.add_node(node, kind=field.removeprefix("consignee_"), label=str(v))
                g.add_edge(party, node)
        for officer in str(o.get("consignee_officers") or "").split(";"):
            if officer.strip():
                node = f"officer:{officer.strip()}"
                g.add_node(node, kind="officer", label=officer.strip())
                g.add_edge(party, node)
        for field in ("payer_name", "intermediate_name"):
            v = o.get(field)
            if v:
                node = f"{field}:{v}"
                g.add_node(node, kind=field.removesuffix("_name"), label=str(v))
                g.add_edge(party, node)
    shared = [
        n
        for n, d in g.nodes(data=True)
        if d["kind"] == "consignee" or g.degree(n) > 1 or d["kind"] in ("payer", "intermediate")
    ]
    h = g.subgraph(shared)
    pos = nx.spring_layout(h, seed=7) if len(h) else {}
    ex: list[float | None] = []
    ey: list[float | None] = []
    for a, b in h.edges():
        ex += [float(pos[a][0]), float(pos[b][0]), None]
        ey += [float(pos[a][1]), float(pos[b][1]), None]
    fig = go.Figure(
        go.Scatter(
            x=ex,
            y=ey,
            mode="lines",
            line={"color": "#adb5bd", "width": 1},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    palette = {
        "consignee": "#1c7ed6",
        "officer": "#ae3ec9",
        "payer": "#e67700",
        "intermediate": "#c92a2a",
    }
    kinds = sorted({d["kind"] for _, d in h.nodes(data=True)})
    for kind in kinds:
        nodes = [n for n, d in h.nodes(data=True) if d["kind"] == kind]
        fig.add_trace(
            go.Scatter(
                x=[float(pos[n][0]) for n in nodes],
                y=[float(pos[n][1]) for n in nodes],
                mode="markers+text" if kind == "consignee" else "markers",
                text=[h.nodes[n]["label"][:28] for n in nodes],
                hovertext=[f"{kind}: {h.nodes[n]['label']}" for n in nodes],
                hoverinfo="text",
                textposition="top center",
                marker={
                    "size": 16 if kind == "consignee" else 10,
                    "color": palette.get(kind, "#2b8a3e"),
                },
                name=kind,
            )
        )
    fig.update_layout(
        title="Linked parties (consignees and what they share)",
        xaxis={"visible": False},
        yaxis={"visible": False},
    )
    return fig


def order_timeline(orders: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Each order of a case: date, consignee and size."""
    by_party: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for o in orders:
        by_party[str(o.get("consignee_name"))].append(o)
    fig = go.Figure()
    top = max((float(o.get("tpp_total") or 0) for o in orders), default=1.0) or 1.0
    for party, rows in sorted(by_party.items()):
        fig.add_trace(
            go.Scatter(
                x=[r["order_date"] for r in rows],
                y=[party] * len(rows),
                mode="markers",
                name=party[:30],
                marker={
                    "size": [8 + 30 * (float(r.get("tpp_total") or 0) / top) ** 0.5 for r in rows]
                },
                hovertext=[
                    f"{r['order_id']}: {float(r.get('tpp_total') or 0):,.0f} TPP, {r.get('authority', '')}"
                    for r in rows
                ],
                hoverinfo="text",
            )
        )
    fig.update_layout(title="Order timeline", showlegend=False)
    return fig


def side_by_side(metrics: Mapping[str, Mapping[str, float]], title: str) -> go.Figure:
    """One bar group per metric, one bar per scenario."""
    names = list(metrics)
    scenarios = sorted({s for m in metrics.values() for s in m})
    fig = go.Figure(
        [go.Bar(name=s, x=names, y=[metrics[m].get(s, 0.0) for m in names]) for s in scenarios]
    )
    fig.update_layout(barmode="group", title=title)
    return fig


def case_network(case: Mapping[str, Any], orders: Sequence[Mapping[str, Any]]) -> go.Figure:
    """The case's parties joined by the links the investigation found (what they share).

    Falls back to the identifiers in the recorded orders when the case carries no evidence.
    """
    evidence = case.get("evidence") or {}
    links = evidence.get("links") or []
    if not links:
        return party_network(orders)
    names: Mapping[str, str] = evidence.get("party_names") or {}
    g = nx.Graph()
    for p in case.get("parties", []):
        g.add_node(p)
    for lk in links:
        a, b = lk["between"]
        g.add_edge(
            a, b, kind=lk.get("kind", ""), shared=", ".join(str(x) for x in lk.get("shared", []))
        )
    pos = nx.spring_layout(g, seed=7)
    fig = go.Figure()
    palette = {"same or linked company": "#c92a2a", "payer": "#e67700", "forwarder": "#1c7ed6"}
    for kind in sorted({d["kind"] for _, _, d in g.edges(data=True)}):
        ex: list[float | None] = []
        ey: list[float | None] = []
        mx, my, mt = [], [], []
        for a, b, d in g.edges(data=True):
            if d["kind"] != kind:
                continue
            ex += [float(pos[a][0]), float(pos[b][0]), None]
            ey += [float(pos[a][1]), float(pos[b][1]), None]
            mx.append(float(pos[a][0] + pos[b][0]) / 2)
            my.append(float(pos[a][1] + pos[b][1]) / 2)
            mt.append(f"{kind}: {d['shared']}")
        colour = palette.get(kind, "#868e96")
        fig.add_trace(
            go.Scatter(
                x=ex,
                y=ey,
                mode="lines",
                line={"color": colour, "width": 2},
                name=kind,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=mx,
                y=my,
                mode="markers",
                marker={"size": 6, "color": colour},
                hovertext=mt,
                hoverinfo="text",
                showlegend=False,
            )
        )
    nodes = list(g.nodes)
    fig.add_trace(
        go.Scatter(
            x=[float(pos[n][0]) for n in nodes],
            y=[float(pos[n][1]) for n in nodes],
            mode="markers+text",
            text=[str(names.get(n, n))[:28] for n in nodes],
            hovertext=[f"{names.get(n, n)} ({n})" for n in nodes],
            hoverinfo="text",
            textposition="top center",
            marker={"size": 18, "color": "#1b2a41"},
            name="consignee",
        )
    )
    fig.update_layout(
        title="Linked parties and what links them",
        xaxis={"visible": False},
        yaxis={"visible": False},
    )
    return fig
