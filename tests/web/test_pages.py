"""Dashboard pages over HTTP: sign-in, roles, the order check, and nothing from the network."""

from __future__ import annotations

import re

from tests.web.conftest import Dashboard

PAGES = ["/", "/check", "/decisions", "/quotas", "/cases", "/cases/CASE-TEST01", "/scenarios"]


def _login(d: Dashboard, key: str) -> None:
    d.client.cookies.clear()
    r = d.client.post("/login", data={"key": key}, follow_redirects=False)
    assert r.status_code == 303


def test_pages_need_a_signed_in_browser(dashboard: Dashboard) -> None:
    dashboard.client.cookies.clear()
    for page in PAGES:
        r = dashboard.client.get(page, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", page
    assert dashboard.client.post("/login", data={"key": "aix_nope"}).status_code == 401


def test_every_page_renders_for_an_analyst_and_loads_nothing_from_the_network(
    dashboard: Dashboard,
) -> None:
    _login(dashboard, dashboard.analyst)
    for page in PAGES:
        r = dashboard.client.get(page)
        assert r.status_code == 200, page
        external = re.findall(r'(?:src|href)="(https?://[^"]+)"', r.text)
        assert external == [], (page, external)
        assert '<script src="/static/plotly.min.js">' in r.text
    js = dashboard.client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000


def test_an_exporter_gets_the_order_check_and_its_own_decisions_only(dashboard: Dashboard) -> None:
    _login(dashboard, dashboard.exporter)
    assert dashboard.client.get("/", follow_redirects=False).headers["location"] == "/check"
    for page in ("/quotas", "/cases", "/scenarios", "/cases/CASE-TEST01"):
        assert dashboard.client.get(page).status_code == 403, page
    mine = dashboard.client.get("/decisions").text
    assert "R1" in mine and "Globex" not in mine


def test_checking_an_order_shows_the_determination_with_citations(dashboard: Dashboard) -> None:
    _login(dashboard, dashboard.analyst)
    q = {
        "order_date": "2025-06-02",
        "exporter": "Acme Chips",
        "item": "H100-SXM5",
        "quantity": "10",
        "destination": "CN",
        "consignee_name": "X",
    }
    r = dashboard.client.get("/check", params=q)
    assert r.status_code == 200
    assert "LICENSE REQUIRED" in r.text and "CFR" in r.text
    bad = dashboard.client.get("/check", params={**q, "destination": "QQ"})
    assert bad.status_code == 422 and "destination" in bad.text
