"""Page weight and chart speed, measured in Chromium on the running app (issue 18).

Budgets: the leaderboard's first load transfers at most 1.5 MB and its charts are drawn
at most 1.5 s after the page's load event; the battle page transfers at most 300 KB.
Bytes are counted from the browser's own network events (on the wire: headers and
compressed bodies, the cache off). Time is read from the page's performance timeline
(load event to each chart's first plotly_afterplot), not from the test's wall clock.
"""

import re

from playwright.sync_api import expect

from tests.e2e.browsing import (
    CHART_MARKS,
    charts_drawn_after_load_ms,
    record_transfer,
    wait_for_charts,
    watch_errors,
)

LEADERBOARD_CHARTS = ["chart-ci", "chart-history", "chart-winrate", "chart-battles"]
LEADERBOARD_BUDGET = 1_500_000
CHARTS_BUDGET_MS = 1500
BATTLE_BUDGET = 300_000
HASHED = re.compile(r"/static/.+\.[0-9a-f]{12}\.(js|css)$")


def test_the_leaderboard_loads_within_its_byte_and_time_budgets(arena_server, page):
    page.add_init_script(CHART_MARKS)
    errors = watch_errors(page)
    transfer = record_transfer(page)
    page.goto(arena_server + "/?set=e2e-arena&by=humans")
    wait_for_charts(page, LEADERBOARD_CHARTS)
    page.wait_for_load_state("networkidle")

    assert transfer.total <= LEADERBOARD_BUDGET, transfer.summary()
    assert transfer.failed == []
    drawn_ms = charts_drawn_after_load_ms(page, LEADERBOARD_CHARTS)
    assert drawn_ms <= CHARTS_BUDGET_MS, f"charts drawn {drawn_ms:.0f} ms after load"

    # The partial bundle, compressed and cache-busted, draws every chart.
    [bundle] = [url for url in transfer.bytes_by_url if "/static/vendor/plotly/" in url]
    assert "plotly-cartesian.min." in bundle and HASHED.search(bundle)
    headers = transfer.headers_by_url[bundle]
    assert headers.get("content-encoding") in ("gzip", "br")
    assert "immutable" in headers.get("cache-control", "")
    assert transfer.bytes_by_url[bundle] < 600_000  # 1.5 MB of JavaScript, gzipped
    _assert_leaderboard_charts_drawn(page)
    assert errors == []


def _assert_leaderboard_charts_drawn(page):
    rows = page.locator("#board tbody tr[data-model]").count()
    assert rows >= 2
    # Rating with CI: one point per model, with error bars.
    expect(page.locator("#chart-ci .scatterlayer .point")).to_have_count(rows)
    assert page.locator("#chart-ci .errorbar").count() == rows
    # Rating over time: one line per model (top 15).
    assert page.locator("#chart-history .scatterlayer .trace").count() == min(rows, 15)
    # The two heatmaps are drawn as images.
    for chart in ("chart-winrate", "chart-battles"):
        assert page.locator(f"#{chart} .heatmaplayer image").count() == 1, chart


def test_every_static_file_of_the_pages_is_hashed_and_compressed(arena_server, page):
    transfer = record_transfer(page)
    page.goto(arena_server + "/?set=e2e-arena&by=humans")
    page.wait_for_load_state("networkidle")
    page.goto(arena_server + "/battle/")
    page.wait_for_load_state("networkidle")
    static = [url for url in transfer.headers_by_url if "/static/" in url]
    assert len(static) >= 6, static  # css, plotly, theme, leaderboard, filters, battle ...
    for url in static:
        assert HASHED.search(url), url
        headers = transfer.headers_by_url[url]
        assert headers.get("content-encoding") in ("gzip", "br"), url
        assert "max-age=315360000" in headers.get("cache-control", ""), url


def test_the_battle_page_loads_within_its_byte_budget(arena_server, page):
    errors = watch_errors(page)
    transfer = record_transfer(page)
    page.goto(arena_server + "/battle/")
    expect(page.locator(".answer")).to_have_count(2)
    expect(page.locator("#prompt-text")).not_to_be_empty()
    page.wait_for_load_state("networkidle")
    assert transfer.total <= BATTLE_BUDGET, transfer.summary()
    assert transfer.failed == []
    assert errors == []
