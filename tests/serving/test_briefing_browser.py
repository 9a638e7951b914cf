"""The planner's briefing in a real Chromium (Debian's) against a real ``bentoml serve``.

Screenshots of each page are saved under the test's tmp folder; with
``HARMCAST_SCREENSHOTS=<dir>`` they are also copied there (``docs/``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import shutil
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import start_server, wait_ready

from serving.briefing.view import NOTICE
from serving.briefing.web import MSG_WRONG_CREDENTIAL
from tests.governance.governed import DEMO

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PLANNER = secrets.token_urlsafe(16)

if not CHROMIUM.is_file():  # pragma: no cover - .ci/run installs it
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def server(city, tmp_path_factory):
    env = {"HARMCAST_TRACKING_URI": city.uri, "HARMCAST_PLANNER_TOKENS": PLANNER}
    log = tmp_path_factory.mktemp("briefing-server") / "server.log"
    running = start_server(city, city.bento_tags[2], env, log)
    try:
        assert wait_ready(running), running.output()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


def save(page, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("HARMCAST_SCREENSHOTS")
    if target:
        shutil.copy2(path, Path(target) / f"{name}.png")


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    outside: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server.url) else outside.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert outside == [], f"the page asked another host: {outside}"
    assert [e for e in errors if "401" not in e] == [], errors


def sign_in(page, server, credential=PLANNER):
    page.goto(server.url + "/")
    assert page.url.endswith("/signin"), "an unsigned visitor is sent to the sign-in form"
    page.fill("#credential", credential)
    with page.expect_navigation():
        page.click("button[type=submit]")


def shapes(page):
    return page.locator("#map .area")


def test_wrong_credential_is_refused(page, server, shots):
    sign_in(page, server, credential="not-the-credential")
    assert page.locator(".refusal").inner_text() == MSG_WRONG_CREDENTIAL
    assert page.locator("#map").count() == 0
    assert not [c for c in page.context.cookies() if c["name"] == "harmcast_session"]
    assert page.locator("#credential").get_attribute("type") == "password"
    assert NOTICE in page.inner_text("body")
    save(page, shots, "briefing-signin-refused")


def test_sign_in_map_list_and_provenance(page, server, city, shots):
    sign_in(page, server)
    assert page.url.rstrip("/") == server.url
    cookie = next(c for c in page.context.cookies() if c["name"] == "harmcast_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # one shape per area (v2 has boundaries: polygons), named for screen readers
    assert shapes(page).count() == len(city.areas)
    assert page.locator("#map path.area").count() == len(city.areas)
    names = set(shapes(page).evaluate_all("els => els.map(e => e.getAttribute('aria-label'))"))
    assert names == set(city.areas["area_name"])
    body = page.inner_text("body")
    assert NOTICE in body
    # the members whose signed approvals made the quorum (tests.governance.governed.DEMO)
    assert "harmcast-violence version 2" in body and ", ".join(DEMO) in body
    origin = city.features["origin_week"].max().date().isoformat()
    assert f"Data run to the week of {origin}" in body
    assert page.get_attribute("a[href='/model_card.html']", "href") == "/model_card.html"
    flagged = page.locator("#ranked tbody tr")
    assert flagged.count() == 4  # 10% of 40 areas
    save(page, shots, "briefing")


def test_district_filter_and_horizon_switch(page, server, city):
    sign_in(page, server)
    page.select_option("#district", "North")
    page.wait_for_url("**district=North**")
    north = city.areas[city.areas["district"] == "North"]
    assert shapes(page).count() == len(north)
    listed = page.locator("#ranked tbody tr th a").all_inner_texts()
    assert set(listed) <= set(north["area_name"])
    page.check("#horizon-3")
    page.wait_for_url("**horizon=3**")
    origin = city.features["origin_week"].max()
    week = (origin + pd.Timedelta(weeks=3)).date().isoformat()
    assert f"week of {week}" in page.inner_text("h1")
    assert shapes(page).count() == len(north), "the district stays chosen"


def test_click_an_area_shows_its_detail(page, server, city, shots):
    sign_in(page, server)
    target = city.areas["area_name"].iloc[7]
    page.locator(f"#map .area[aria-label='{target}']").click()
    page.wait_for_url("**area=**")
    detail = page.locator("#detail")
    assert detail.locator("h2").inner_text().startswith(target)
    assert detail.locator("svg.chart polyline.observed").count() == 1
    assert detail.locator("svg.chart polyline.forecast").count() == 1
    assert detail.locator("ul.drivers li").count() == 3
    assert "the forecast" in detail.locator("ul.drivers li").first.inner_text()
    save(page, shots, "briefing-area-detail")


def test_csv_download_matches_the_api(page, server):
    sign_in(page, server)
    with page.expect_download() as info:
        page.click("text=Download the list (CSV)")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    api = httpx.post(
        server.url + "/forecast",
        json={"horizon": 1},
        headers={"Authorization": f"Bearer {PLANNER}"},
    ).json()
    flagged = {f["area_code"]: f for f in api["forecasts"] if f["hotspot"]}
    assert [r["area_code"] for r in rows] == list(flagged)
    for row in rows:
        f = flagged[row["area_code"]]
        assert float(row["expected_count"]) == f["expected_count"]
        assert float(row["interval_lower"]) == f["interval"]["lower"]
        assert float(row["interval_upper"]) == f["interval"]["upper"]
        assert float(row["p_any"]) == f["p_any"]
        assert int(row["rank"]) == f["rank"] and row["target_week"] == api["target_week"]


def test_geojson_download_has_polygons(page, server, city):
    sign_in(page, server)
    with page.expect_download() as info:
        page.click("text=Download the map")
    body = json.loads(Path(info.value.path()).read_text())
    assert len(body["features"]) == len(city.areas)
    assert {f["geometry"]["type"] for f in body["features"]} == {"Polygon"}
    assert body["properties"]["notice"] == NOTICE


def test_keyboard_reaches_an_area_and_its_detail(page, server):
    sign_in(page, server)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the briefing"
    seen = []
    for _ in range(60):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.closest('#ranked') !== null"))
        if seen[-1]:
            break
    assert seen[-1], "Tab reaches the ranked list"
    name = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    page.wait_for_url("**area=**")
    assert page.locator("#detail h2").inner_text().startswith(name)
    # the map's flagged areas are focusable and open with Enter too
    page.focus("#map .area.flagged")
    page.keyboard.press("Enter")
    page.wait_for_url("**area=**")


CONTRAST_JS = """
() => {
  const lum = (rgb) => {
    const c = rgb.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const bg = getComputedStyle(e).backgroundColor;
      const alpha = bg.startsWith('rgba') ? Number(bg.match(/[\\d.]+/g)[3]) : 1;
      if (alpha > 0) return bg;
    }
    return 'rgb(255, 255, 255)';
  };
  const worst = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || !el.checkVisibility()) continue;
    if (el.closest('svg.map')) continue;  // titles are tooltips, not drawn
    const fg = lum(getComputedStyle(el).color), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) worst.push([el.tagName, walker.currentNode.textContent.trim(), ratio]);
  }
  return worst;
}
"""


def test_text_contrast_meets_wcag_aa(page, server):
    page.goto(server.url + "/signin")
    assert page.evaluate(CONTRAST_JS) == []
    sign_in(page, server)
    page.goto(server.url + "/?area=SYN00008")
    assert page.evaluate(CONTRAST_JS) == []


def test_print_is_one_page(page, server, shots):
    sign_in(page, server)
    page.emulate_media(media="print")
    pdf = page.pdf(format="A4")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages == 1, f"the printed briefing has {pages} pages"
    (shots / "briefing-print.pdf").write_bytes(pdf)


def test_sign_out_ends_the_session(page, server):
    sign_in(page, server)
    page.click("text=Sign out")
    page.wait_for_url("**/signin")
    page.goto(server.url + "/")
    assert page.url.endswith("/signin")
