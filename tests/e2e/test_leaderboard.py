"""The leaderboard page in a real browser: a board never fitted appears by itself."""

import json
import urllib.request

from playwright.sync_api import expect


def test_a_board_never_fitted_is_fitted_by_the_worker_and_shown_without_reload(arena_server, page):
    # The seed fitted the human board only: "all" was never fitted, and the read does not
    # fit it; it asks the worker, whose board is pushed to the open page.
    page.goto(arena_server + "/?set=e2e-arena&by=all&style=0")
    expect(page.locator("#board tbody tr[data-model]").first).to_be_visible(timeout=15000)
    expect(page.locator("#board-pending")).to_have_count(0)
    # The page shows the board the worker stored (other browser tests may have voted).
    board = json.loads(
        urllib.request.urlopen(arena_server + "/api/leaderboard?set=e2e-arena&by=all").read()
    )
    assert not board.get("pending")
    expect(page.locator("#board tbody tr[data-model]")).to_have_count(len(board["rows"]))
    expect(page.locator("#n-votes")).to_have_text(str(board["n_votes"]))
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload


def test_the_swiss_standings_show_expected_scores_and_the_chance_to_win(arena_server, page):
    from arena.rendering import format_fixed

    page.goto(arena_server + "/?set=e2e-arena&by=humans&style=0&method=swiss")
    rows = page.locator("#board tbody tr[data-model]")  # drawn by the script from the API
    expect(rows.first).to_be_visible(timeout=15000)
    expect(page.locator("#value-head")).to_have_text("Expected score")
    expect(page.locator("select[name=method]")).to_have_value("swiss")
    board = json.loads(
        urllib.request.urlopen(
            arena_server + "/api/leaderboard?set=e2e-arena&by=humans&method=swiss"
        ).read()
    )
    assert board["value"] == "score"
    first = board["rows"][0]
    cells = rows.first.locator("td")
    expect(cells.nth(0)).to_have_text(format_fixed(first["mean_rank"], 1))
    expect(cells.nth(1)).to_have_text(first["model"])
    expect(cells.nth(2)).to_have_text(format_fixed(first["rating"], 2))
    expect(cells.nth(5)).to_have_text(format_fixed(first["p_first"], 3))
