"""Every dashboard page in a real browser: Debian's Chromium, driven by Playwright.

The app runs under uvicorn on a loopback port; the browser signs in, checks an order, opens a
case and waits for each chart to be drawn. Any request leaving 127.0.0.1 is blocked and fails
the test (the pages must work offline). Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.web.conftest import Dashboard

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"
    ),
]


@pytest.fixture(scope="module")
def base_url(dashboard: Dashboard) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(dashboard.client.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    ctx = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    blocked: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        if route.request.url.startswith(base_url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    pg.route("**/*", guard)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert blocked == [], f"pages asked the network for {blocked}"
    assert errors == [], f"JavaScript errors: {errors}"


def _sign_in(page: Any, key: str) -> None:
    page.goto("/login")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def _chart(page: Any, div_id: str) -> None:
    page.wait_for_selector(f"#{div_id} .main-svg", state="attached")


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_analyst_walks_through_every_page(page: Any, dashboard: Dashboard) -> None:
    _sign_in(page, dashboard.analyst)
    assert page.url.endswith("/")
    for chart in ("chart-tiers", "chart-gauges", "chart-tpp"):
        _chart(page, chart)
    _shot(page, "01-overview")

    page.click("text=Check an order")
    page.fill("#order_date", "2025-06-02")
    page.fill("input[name=exporter]", "Acme Chips")
    page.fill("#item", "H100-SXM5")
    page.fill("#quantity", "200")
    page.fill("#destination", "IN")
    page.fill("#consignee_name", "Bharat Compute Pvt Ltd")
    page.fill("input[name=authorization]", "LPP")
    page.click("#decide")
    page.wait_for_selector("#determination")
    assert "LICENSE EXCEPTION" in page.inner_text(".status")
    assert page.locator("#reasons tr").count() >= 4
    assert "CFR" in page.inner_text("#reasons")
    _shot(page, "02-check-an-order")

    page.click("text=Quotas")
    _chart(page, "chart-lpp")
    assert page.locator("#lpp tr").count() >= 2
    _shot(page, "03-quotas")

    page.click("nav >> text=Cases")
    page.wait_for_selector("#cases")
    _shot(page, "04-cases")
    page.click("#cases a >> nth=0")
    page.wait_for_selector("#summary")
    _chart(page, "chart-network")
    _chart(page, "chart-timeline")
    assert page.locator("#case-orders tr").count() == 4
    _shot(page, "05-case")

    page.click("text=Scenarios")
    _chart(page, "chart-scenario-0")
    assert page.locator("#scenario-charts .js-plotly-plot").count() >= 5
    _shot(page, "06-scenarios")

    page.click("text=Decisions")
    page.wait_for_url("**/decisions")
    assert page.locator("#decisions tr").count() == 8
    _shot(page, "07-decisions")


def test_an_exporter_sees_its_own_decisions_and_an_error_for_a_bad_order(
    page: Any, dashboard: Dashboard
) -> None:
    _sign_in(page, dashboard.exporter)
    assert page.url.endswith("/check")
    assert page.locator("nav >> text=Cases").count() == 0
    page.fill("#item", "NO-SUCH-CHIP")
    page.fill("#destination", "IN")
    page.fill("#consignee_name", "X")
    page.click("#decide")
    page.wait_for_selector("#error")
    assert "not in the catalog" in page.inner_text("#error")
    _shot(page, "08-exporter-error")
    page.click("text=Decisions")
    page.wait_for_url("**/decisions")
    text = page.inner_text("#decisions")
    assert "R1" in text and "Globex" not in text
